<?php

declare(strict_types=1);

namespace Vcm\Tests\Vagrant;

use PHPUnit\Framework\TestCase;
use Vcm\Client;
use Vcm\Exception\UnsupportedException;
use Vcm\Exception\VmNotFoundException;
use Vcm\FileProvisioner;
use Vcm\OperationState;
use Vcm\ProgressLine;
use Vcm\Tests\Support\DaemonProcess;
use Vcm\VmState;

/**
 * One VM's whole life on real Vagrant: the daemon drives the vagrant binary with the provider
 * in $VCM_TEST_PROVIDER (docker or lxc, default docker) and the project's box
 * vcm/bookworm-test (scripts/host/build-box.sh builds it).
 *
 * @group vagrant
 */
final class LifecycleTest extends TestCase
{
    private const BOX = 'vcm/bookworm-test';
    private const POOLS = ['docker' => '192.168.34.0/24', 'lxc' => '192.168.33.0/24'];

    private ?DaemonProcess $daemon = null;
    private ?string $scratch = null;

    protected function setUp(): void
    {
        if (!self::onPath('vagrant')) {
            if (getenv('VCM_REQUIRE_VAGRANT') === '1') {
                self::fail('vagrant is not installed, and VCM_REQUIRE_VAGRANT=1 requires it');
            }
            self::markTestSkipped('vagrant is not on PATH (scripts/provision-host all installs it)');
        }
    }

    protected function tearDown(): void
    {
        if ($this->daemon !== null) {
            try {
                $this->daemon->client(['timeout' => 600.0])->destroyAll();
            } finally {
                $this->daemon->stop();
                $this->daemon->removeStateDir();
            }
        }
        if ($this->scratch !== null) {
            DaemonProcess::removeTree($this->scratch);
        }
    }

    public function testAVmIsCreatedStartedStoppedAndDestroyed(): void
    {
        $provider = getenv('VCM_TEST_PROVIDER') ?: 'docker';
        self::assertArrayHasKey($provider, self::POOLS, 'VCM_TEST_PROVIDER must be docker or lxc');
        $pool = getenv('VCM_TEST_IP_POOL') ?: self::POOLS[$provider];
        $this->daemon = (new DaemonProcess([
            'VCM_DRIVER' => 'vagrant',
            'VCM_PROVIDER' => $provider,
            'VCM_IP_POOL' => $pool,
            'VCM_GUEST' => 'debian',
            'VCM_BOX_ADD_TIMEOUT' => '120',
        ]))->start();
        $client = $this->daemon->client(['timeout' => 1800.0]);
        $this->scratch = DaemonProcess::temporaryDirectory('vcm-php-vagrant-');
        file_put_contents("$this->scratch/motd", "sent by the PHP client\n");

        $boxId = $client->createBox(
            self::BOX,
            files: [FileProvisioner::fromLocalFile("$this->scratch/motd", '/tmp/vcm-php-motd')],
            // The VM only comes up if this passes in the guest: the local file arrived as content.
            shell: ['grep -qx "sent by the PHP client" /tmp/vcm-php-motd'],
        );
        self::assertMatchesRegularExpression('/^vcm_bookworm_test_\d+$/', $boxId);

        $lines = [];
        $vm = $client->startVm($boxId, function (ProgressLine $line) use (&$lines): void {
            $lines[] = $line;
        });
        // Vagrant's output came as it ran, every line about this VM, through to provisioning.
        self::assertGreaterThan(5, count($lines));
        self::assertSame([$vm->vmId], array_values(array_unique(array_map(
            static fn (ProgressLine $line): ?string => $line->vmId,
            $lines,
        ))));
        $phases = array_map(static fn (ProgressLine $line): ?string => $line->phase, $lines);
        self::assertContains('provisioning', $phases);

        self::assertSame("{$boxId}_1", $vm->vmId);
        self::assertSame(VmState::Running, $vm->state);
        self::assertNotNull($vm->ip);
        self::assertTrue(self::inPool($vm->ip, $pool), "{$vm->ip} is not in $pool");
        self::assertSame(str_replace('_', '-', $vm->vmId) . '.example.com', $vm->hostname);
        self::assertEquals($vm, $client->getVm($vm->vmId));

        $ran = $client->exec($vm->vmId, ['sh', '-c', 'cat /tmp/vcm-php-motd; echo oops >&2; exit 4']);
        self::assertSame([4, "sent by the PHP client\n", "oops\n"], [$ran->exitStatus, $ran->stdout, $ran->stderr]);
        $ssh = $client->sshInfo($vm->vmId);
        self::assertSame('vagrant', $ssh->user);
        self::assertFileExists($ssh->keyPath);
        self::assertSame(VmState::Running, $client->provisionVm($vm->vmId)->state);
        self::assertSame(VmState::Running, $client->reloadVm($vm->vmId)->state);
        self::assertSame(0, $client->exec($vm->vmId, ['true'])->exitStatus);
        try {
            $client->listSnapshots($vm->vmId);
            self::fail("$provider has no snapshots");
        } catch (UnsupportedException $error) {
            self::assertStringContainsString("the $provider provider cannot", $error->getMessage());
        }
        try {
            $client->suspendVm($vm->vmId);
            self::fail("$provider cannot suspend");
        } catch (UnsupportedException $error) {
            self::assertStringContainsString("the $provider provider cannot suspend", $error->getMessage());
        }
        self::assertSame(VmState::Running, $client->getVm($vm->vmId)->state);

        $stopping = $client->stopVmAsync($vm->vmId);
        $stopped = $stopping->result();
        self::assertSame(OperationState::Succeeded, $stopping->info()->state);
        self::assertSame(VmState::Stopped, $stopped->state);
        $seen = $client->getVm($vm->vmId);
        self::assertSame(VmState::Stopped, $seen->state);
        self::assertSame($vm->ip, $seen->ip);
        self::assertSame($vm->hostname, $seen->hostname);

        $destroyed = $client->destroyVm($vm->vmId);
        self::assertSame($vm->vmId, $destroyed->vmId);
        self::assertSame([], $client->getBox($boxId)->vmIds);
        self::assertFalse(is_dir($this->daemon->stateDir . '/machines/' . $vm->vmId), 'its Vagrant project is gone');
        $this->expectException(VmNotFoundException::class);
        $client->getVm($vm->vmId);
    }

    private static function onPath(string $program): bool
    {
        foreach (explode(':', (string) getenv('PATH')) as $directory) {
            if ($directory !== '' && is_file("$directory/$program") && is_executable("$directory/$program")) {
                return true;
            }
        }

        return false;
    }

    private static function inPool(string $ip, string $pool): bool
    {
        [$network, $bits] = explode('/', $pool);
        $mask = -1 << (32 - (int) $bits);

        return (ip2long($ip) & $mask) === (ip2long($network) & $mask);
    }
}
