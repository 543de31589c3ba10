<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\InvalidRequestException;
use Vcm\Exception\UnsupportedException;
use Vcm\Exception\VagrantErrorException;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\VmState;

/**
 * suspend, resume, reload, provision, snapshots, exec, ssh-info and resources against the real
 * daemon with its simulated backend (which has no guests to run commands in).
 */
final class LifecycleCommandsTest extends DaemonTestCase
{
    private function started(): string
    {
        return $this->client->startVm($this->client->createBox('debian/bookworm64'))->vmId;
    }

    public function testSuspendResumeReloadProvision(): void
    {
        $vmId = $this->started();

        self::assertSame(VmState::Suspended, $this->client->suspendVm($vmId)->state);
        self::assertSame(VmState::Suspended, $this->client->getVm($vmId)->state);
        self::assertSame(VmState::Running, $this->client->resumeVm($vmId)->state);
        self::assertSame(VmState::Running, $this->client->reloadVm($vmId)->state);
        $provisioned = $this->client->provisionVm($vmId);
        self::assertSame(VmState::Running, $provisioned->state);
        self::assertSame($this->client->getVm($vmId)->ip, $provisioned->ip);
    }

    public function testACommandInTheWrongStateIsRefusedAndChangesNothing(): void
    {
        $vmId = $this->started();
        $this->client->stopVm($vmId);

        try {
            $this->client->provisionVm($vmId);
            self::fail('provisioning a stopped VM must be refused');
        } catch (InvalidRequestException $error) {
            self::assertStringContainsString('is stopped', $error->getMessage());
        }
        self::assertSame(VmState::Stopped, $this->client->getVm($vmId)->state);
    }

    public function testSnapshots(): void
    {
        $vmId = $this->started();

        $saved = $this->client->saveSnapshot($vmId, 'clean');
        self::assertSame(['clean', VmState::Running], [$saved->name, $saved->state]);
        $this->client->saveSnapshot($vmId, 'later');
        self::assertSame(['clean', 'later'], $this->client->listSnapshots($vmId));
        $this->client->stopVm($vmId);
        self::assertSame(VmState::Running, $this->client->restoreSnapshot($vmId, 'clean')->state);
        $this->client->deleteSnapshot($vmId, 'later');
        self::assertSame(['clean'], $this->client->listSnapshots($vmId));
        $this->expectException(VagrantErrorException::class);
        $this->client->restoreSnapshot($vmId, 'later');
    }

    public function testABadSnapshotNameIsRefused(): void
    {
        $this->expectException(InvalidRequestException::class);
        $this->expectExceptionMessage('snapshot name');
        $this->client->saveSnapshot($this->started(), '../etc');
    }

    public function testExecAndSshInfoAreUnsupportedWithoutGuests(): void
    {
        $vmId = $this->started();

        try {
            $this->client->exec($vmId, ['uname', '-a']);
            self::fail('the simulated backend cannot run commands');
        } catch (UnsupportedException $error) {
            self::assertSame('UNSUPPORTED', $error->getErrorCode());
        }
        $this->expectException(UnsupportedException::class);
        $this->client->sshInfo($vmId);
    }

    public function testResourcesAreKeptWithTheBoxAndCheckedAgainstTheHost(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64', cpus: 1, memory: 128);
        $box = $this->client->getBox($boxId);
        self::assertSame([1, 128], [$box->cpus, $box->memory]);

        $this->expectException(InvalidRequestException::class);
        $this->expectExceptionMessage('more than this host has');
        $this->client->createBox('debian/bookworm64', memory: 1 << 40);
    }
}
