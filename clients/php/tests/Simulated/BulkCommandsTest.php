<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\BulkResult;
use Vcm\Client;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\Vm;
use Vcm\VmState;

/**
 * destroyAll(), stopAll(), haltAll() and shutdownAll().
 */
final class BulkCommandsTest extends DaemonTestCase
{
    /** @var list<Vm> */
    private array $vms = [];

    protected function setUp(): void
    {
        parent::setUp();
        $this->client->destroyAll();
        $first = $this->client->createBox('debian/bookworm64');
        $second = $this->client->createBox('debian/bookworm64', network: 'none');
        $this->vms = [
            $this->client->startVm($first),
            $this->client->startVm($first),
            $this->client->startVm($second),
        ];
    }

    /**
     * @return iterable<string, array{callable(Client): BulkResult}>
     */
    public static function stopCommands(): iterable
    {
        yield 'stopAll' => [static fn (Client $client) => $client->stopAll()];
        yield 'haltAll' => [static fn (Client $client) => $client->haltAll()];
        yield 'shutdownAll' => [static fn (Client $client) => $client->shutdownAll()];
    }

    /**
     * @dataProvider stopCommands
     * @param callable(Client): BulkResult $command
     */
    public function testStoppingAllStopsEveryVmAndKeepsIt(callable $command): void
    {
        $result = $command($this->client);

        self::assertEqualsCanonicalizing($this->ids($this->vms), $result->vmIds);
        self::assertNull($result->boxId);
        self::assertStringContainsString('3 VMs', $result->message);
        $after = $this->client->listVms();
        self::assertEqualsCanonicalizing($this->ids($this->vms), $this->ids($after));
        foreach ($after as $vm) {
            self::assertSame(VmState::Stopped, $vm->state);
        }
        $this->client->startExistingVm($this->vms[0]->vmId);
        self::assertSame(VmState::Running, $this->client->getVm($this->vms[0]->vmId)->state);
    }

    public function testDestroyingAllRemovesEveryVmButKeepsTheBoxes(): void
    {
        $boxes = array_unique(array_map(static fn (Vm $vm): string => $vm->boxId, $this->vms));

        $result = $this->client->destroyAll();

        self::assertEqualsCanonicalizing($this->ids($this->vms), $result->vmIds);
        self::assertSame([], $this->client->listVms());
        foreach ($boxes as $boxId) {
            self::assertSame([], $this->client->getBox($boxId)->vmIds);
        }
        self::assertSame([], $this->client->destroyAll()->vmIds, 'nothing left to destroy');
    }

    /**
     * @param list<Vm> $vms
     * @return list<string>
     */
    private function ids(array $vms): array
    {
        return array_map(static fn (Vm $vm): string => $vm->vmId, $vms);
    }
}
