<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\CancelledException;
use Vcm\Exception\InvalidRequestException;
use Vcm\Exception\OperationNotFoundException;
use Vcm\Exception\VmNotFoundException;
use Vcm\OperationState;
use Vcm\ProgressLine;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\Vm;
use Vcm\VmState;

/**
 * Progress callbacks and background operations against the daemon with a slow simulated backend.
 */
final class OperationsTest extends DaemonTestCase
{
    protected static function daemonSettings(): array
    {
        return ['VCM_DRIVER' => 'simulated', 'VCM_SIMULATED_DELAY' => '0.8'];
    }

    public function testAProgressCallbackGetsEachLineWithItsVmAndPhase(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $lines = [];
        $vm = $this->client->startVm($boxId, function (ProgressLine $line) use (&$lines): void {
            $lines[] = [$line->vmId, $line->phase, (string) $line];
        });

        self::assertSame([
            [$vm->vmId, 'importing', 'importing base box'],
            [$vm->vmId, 'booting', 'booting'],
            [$vm->vmId, 'configuring', 'setting hostname'],
            [$vm->vmId, 'provisioning', 'provisioning'],
        ], $lines);
        $quiet = $this->client->startVm($boxId);
        self::assertSame(VmState::Running, $quiet->state);
    }

    public function testAnAsyncStartIsAnsweredAtOnceAndWaitedOn(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $began = microtime(true);
        $operation = $this->client->startVmAsync($boxId);
        self::assertLessThan(0.8, microtime(true) - $began, 'the start itself takes 0.8 s');
        self::assertSame(OperationState::Running, $operation->info()->state);
        self::assertSame(OperationState::Running, $operation->wait(0.1)->state);

        $vm = $operation->result(20.0);

        self::assertInstanceOf(Vm::class, $vm);
        self::assertSame("{$boxId}_1", $vm->vmId);
        self::assertSame(OperationState::Succeeded, $operation->info()->state);
        self::assertSame('provisioning', $operation->info()->output[3]);
        $again = $this->client->operation($operation->id());
        self::assertSame($vm->vmId, $again->info()->reply['vmID'] ?? null);
    }

    public function testACancelledStartThrowsAndLeavesNoVm(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $operation = $this->client->startVmAsync($boxId);
        usleep(300000);
        $operation->cancel();
        try {
            $operation->result(20.0);
            self::fail('a cancelled start has no result');
        } catch (CancelledException $error) {
            self::assertSame('CANCELLED', $error->getErrorCode());
        }
        self::assertSame(OperationState::Cancelled, $operation->info()->state);
        $left = array_filter($this->client->listVms(), static fn (Vm $vm): bool => $vm->boxId === $boxId);
        self::assertSame([], $left);
    }

    public function testErrorsOfOperations(): void
    {
        $stop = $this->client->stopVmAsync('nope_1_1');
        $stop->wait(10.0);
        self::assertSame(OperationState::Failed, $stop->info()->state);
        try {
            $stop->result();
            self::fail('the stop failed');
        } catch (VmNotFoundException) {
        }
        $this->expectException(InvalidRequestException::class);
        $stop->cancel();
    }

    public function testAnUnknownOperationIsNotFound(): void
    {
        $this->expectException(OperationNotFoundException::class);
        $this->client->operation('op-999');
    }
}
