<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\BoxUnavailableException;
use Vcm\Exception\IpPoolExhaustedException;
use Vcm\Exception\RequestTooLargeException;
use Vcm\Exception\VagrantErrorException;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\Vm;

/**
 * The error codes of a daemon with few boxes, a failing box, a /29 pool and a small size limit.
 */
final class RestrictedDaemonTest extends DaemonTestCase
{
    protected static function daemonSettings(): array
    {
        return [
            'VCM_DRIVER' => 'simulated',
            'VCM_SIMULATED_BOXES' => '["vcm/works", "vcm/broken"]',
            'VCM_SIMULATED_FAILING_BOXES' => '["vcm/broken"]',
            'VCM_IP_POOL' => '10.99.0.0/29',
            'VCM_MAX_REQUEST_BYTES' => '1024',
        ];
    }

    protected function setUp(): void
    {
        parent::setUp();
        $this->client->destroyAll();
    }

    public function testABoxVagrantCannotGetIsUnavailableAndNotRecorded(): void
    {
        $boxes = $this->client->listBoxes();

        try {
            $this->client->createBox('vcm/missing');
            self::fail('the box does not exist');
        } catch (BoxUnavailableException $error) {
            self::assertSame('BOX_UNAVAILABLE', $error->getErrorCode());
            self::assertStringContainsString('vcm/missing', $error->getMessage());
        }
        self::assertEquals($boxes, $this->client->listBoxes());
    }

    public function testAFailingStartIsAVagrantErrorAndLeavesNoVm(): void
    {
        $boxId = $this->client->createBox('vcm/broken');

        try {
            $this->client->startVm($boxId);
            self::fail('the box fails to start');
        } catch (VagrantErrorException $error) {
            self::assertSame('VAGRANT_ERROR', $error->getErrorCode());
            self::assertStringContainsString('simulated failure', $error->getMessage());
        }
        self::assertSame([], $this->client->listVms());
        self::assertSame([], $this->client->getBox($boxId)->vmIds);
    }

    public function testTheFourAddressesOfA29RunOutAndComeBack(): void
    {
        $boxId = $this->client->createBox('vcm/works');
        $vms = [];
        for ($i = 0; $i < 4; $i++) {
            $vms[] = $this->client->startVm($boxId);
        }
        $addresses = array_map(static fn (Vm $vm): ?string => $vm->ip, $vms);
        self::assertEqualsCanonicalizing(['10.99.0.2', '10.99.0.3', '10.99.0.4', '10.99.0.5'], $addresses);

        try {
            $this->client->startVm($boxId);
            self::fail('the pool is exhausted');
        } catch (IpPoolExhaustedException $error) {
            self::assertSame('IP_POOL_EXHAUSTED', $error->getErrorCode());
            self::assertStringContainsString('10.99.0.0/29', $error->getMessage());
        }
        self::assertCount(4, $this->client->listVms());

        $this->client->destroyVm($vms[1]->vmId);
        $fifth = $this->client->startVm($boxId);
        self::assertSame($vms[1]->ip, $fifth->ip);
        $earlier = array_map(static fn (Vm $vm): string => $vm->vmId, $vms);
        self::assertNotContains($fifth->vmId, $earlier, 'vmIDs are never reused');
    }

    public function testVmsWithoutANetworkNeedNoAddress(): void
    {
        $private = $this->client->createBox('vcm/works');
        for ($i = 0; $i < 4; $i++) {
            $this->client->startVm($private);
        }

        $vm = $this->client->startVm($this->client->createBox('vcm/works', network: 'none'));

        self::assertNull($vm->ip);
    }

    /**
     * @return iterable<string, array{int}>
     */
    public static function oversizes(): iterable
    {
        yield 'just over' => [1100];
        yield 'megabytes, written in many pieces' => [3_000_000];
    }

    /**
     * @dataProvider oversizes
     */
    public function testARequestOverTheLimitIsTooLargeAndTheConnectionGoesOn(int $size): void
    {
        $boxes = $this->client->listBoxes();

        try {
            $this->client->createBox('vcm/works', shell: [str_repeat('x', $size)]);
            self::fail('the request is over 1024 bytes');
        } catch (RequestTooLargeException $error) {
            self::assertSame('REQUEST_TOO_LARGE', $error->getErrorCode());
            self::assertStringContainsString('1024', $error->getMessage());
        }

        self::assertEquals($boxes, $this->client->listBoxes());
        $boxId = $this->client->createBox('vcm/works', shell: ['echo small']);
        self::assertSame('echo small', $this->client->getBox($boxId)->shell[0]->inline);
    }
}
