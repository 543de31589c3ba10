<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\ConnectionException;
use Vcm\Exception\TimeoutException;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\Vm;
use Vcm\VmState;

/**
 * A backend that takes its time: the operation timeout, and the daemon working on.
 */
final class SlowBackendTest extends DaemonTestCase
{
    private const DELAY = 1.5;

    protected static function daemonSettings(): array
    {
        return ['VCM_DRIVER' => 'simulated', 'VCM_SIMULATED_DELAY' => (string) self::DELAY];
    }

    public function testAStartOverTheTimeoutThrowsWhileTheDaemonGoesOn(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $impatient = $this->daemon()->client(['timeout' => 0.3]);

        $began = microtime(true);
        try {
            $impatient->startVm($boxId);
            self::fail('the start takes longer than the timeout');
        } catch (TimeoutException $error) {
            self::assertInstanceOf(ConnectionException::class, $error);
            self::assertStringContainsString('0.3 s', $error->getMessage());
        }
        $waited = microtime(true) - $began;
        self::assertGreaterThanOrEqual(0.3, $waited);
        self::assertLessThan(self::DELAY, $waited);

        // Queries are answered at once, in the VM's current state.
        $vms = array_values(array_filter($this->client->listVms(), static fn (Vm $vm): bool => $vm->boxId === $boxId));
        self::assertCount(1, $vms);
        self::assertSame(VmState::Starting, $vms[0]->state);
        self::assertSame("{$boxId}_1", $vms[0]->vmId);

        $deadline = microtime(true) + 10 * self::DELAY;
        do {
            usleep(100000);
            $vm = $impatient->getVm("{$boxId}_1");
        } while ($vm->state === VmState::Starting && microtime(true) < $deadline);
        self::assertSame(VmState::Running, $vm->state);
    }

    public function testALongEnoughTimeoutWaitsForTheVm(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');

        $began = microtime(true);
        $vm = $this->client->startVm($boxId);

        self::assertGreaterThanOrEqual(self::DELAY * 0.9, microtime(true) - $began);
        self::assertInstanceOf(Vm::class, $vm);
        self::assertSame(VmState::Running, $vm->state);
    }
}
