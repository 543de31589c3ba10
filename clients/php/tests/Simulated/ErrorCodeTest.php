<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\BoxNotFoundException;
use Vcm\Exception\InvalidJsonException;
use Vcm\Exception\InvalidRequestException;
use Vcm\Exception\ServerException;
use Vcm\Exception\UnknownCommandException;
use Vcm\Exception\VcmException;
use Vcm\Exception\VmNotFoundException;
use Vcm\FileProvisioner;
use Vcm\ShellProvisioner;
use Vcm\Tests\Support\DaemonTestCase;

/**
 * The error codes a default daemon produces, each as its own exception, and a connection that
 * stays usable after each.
 */
final class ErrorCodeTest extends DaemonTestCase
{
    /**
     * @return iterable<string, array{string}>
     */
    public static function notJson(): iterable
    {
        yield 'not an object' => ['hello daemon'];
        yield 'an array' => ['["command", "info"]'];
        yield 'broken inside braces' => ['{"command": "info", "subcommand": }'];
    }

    /**
     * @dataProvider notJson
     */
    public function testBytesThatAreNotAJsonObjectGetInvalidJson(string $bytes): void
    {
        $error = $this->failure(fn () => $this->client->rawRequest($bytes));

        self::assertInstanceOf(InvalidJsonException::class, $error);
        self::assertSame('INVALID_JSON', $error->getErrorCode());
        self::assertNotSame('', $error->getMessage());
        $this->assertStillUsable();
    }

    /**
     * @return iterable<string, array{callable(\Vcm\Client): mixed, string}>
     */
    public static function invalidRequests(): iterable
    {
        yield 'a box name Vagrant cannot have' => [
            static fn ($client) => $client->createBox('no spaces allowed'),
            'box',
        ];
        yield 'a hostname that is not a DNS label' => [
            static fn ($client) => $client->createBox('debian/bookworm64', hostname: 'under_score'),
            'hostname',
        ];
        yield 'an unknown network' => [
            static fn ($client) => $client->createBox('debian/bookworm64', network: 'public'),
            'network',
        ];
        yield 'a daemon path when the daemon has no files directory' => [
            static fn ($client) => $client->createBox(
                'debian/bookworm64',
                files: [FileProvisioner::fromDaemonPath('motd', '/etc/motd')],
            ),
            '',
        ];
        yield 'a daemon path leaving the files directory' => [
            static fn ($client) => $client->createBox(
                'debian/bookworm64',
                shell: [ShellProvisioner::fromDaemonPath('../../etc/shadow')],
            ),
            '',
        ];
        yield 'an unknown field' => [
            static fn ($client) => $client->call(['command' => 'create', 'box' => 'vcm/a', 'colour' => 'red']),
            'colour',
        ];
        yield 'a field of the wrong type' => [
            static fn ($client) => $client->call(['command' => 'start', 'boxID' => 12]),
            'boxID',
        ];
        yield 'start with neither boxID nor vmID' => [
            static fn ($client) => $client->call(['command' => 'start']),
            '',
        ];
        yield 'an unknown info subcommand' => [
            static fn ($client) => $client->call(['command' => 'info', 'subcommand' => 'disks all']),
            'subcommand',
        ];
    }

    /**
     * @dataProvider invalidRequests
     * @param callable(\Vcm\Client): mixed $request
     */
    public function testRefusedRequestsGetInvalidRequestAndChangeNothing(callable $request, string $mentions): void
    {
        $boxes = $this->client->listBoxes();

        $error = $this->failure(fn () => $request($this->client));

        self::assertInstanceOf(InvalidRequestException::class, $error);
        self::assertSame('INVALID_REQUEST', $error->getErrorCode());
        self::assertStringContainsString($mentions, $error->getMessage());
        self::assertEquals($boxes, $this->client->listBoxes());
    }

    public function testAnUnknownCommandGetsUnknownCommand(): void
    {
        $error = $this->failure(fn () => $this->client->call(['command' => 'reboot', 'vmID' => 'x_1_1']));

        self::assertInstanceOf(UnknownCommandException::class, $error);
        self::assertSame('UNKNOWN_COMMAND', $error->getErrorCode());
        self::assertStringContainsString('reboot', $error->getMessage());
        $this->assertStillUsable();
    }

    /**
     * @return iterable<string, array{callable(\Vcm\Client): mixed, string}>
     */
    public static function unknownBoxes(): iterable
    {
        yield 'startVm' => [static fn ($client) => $client->startVm('nosuch_box_1'), 'nosuch_box_1'];
        yield 'getBox' => [static fn ($client) => $client->getBox('nosuch_box_1'), 'nosuch_box_1'];
        yield 'destroyBox' => [static fn ($client) => $client->destroyBox('nosuch_box_1'), 'nosuch_box_1'];
        yield 'getBox all' => [static fn ($client) => $client->getBox('all'), 'all'];
    }

    /**
     * @dataProvider unknownBoxes
     * @param callable(\Vcm\Client): mixed $request
     */
    public function testAnUnknownBoxIdGetsBoxNotFound(callable $request, string $boxId): void
    {
        $error = $this->failure(fn () => $request($this->client));

        self::assertInstanceOf(BoxNotFoundException::class, $error);
        self::assertSame('BOX_NOT_FOUND', $error->getErrorCode());
        self::assertStringContainsString("'$boxId'", $error->getMessage());
    }

    /**
     * @return iterable<string, array{callable(\Vcm\Client): mixed}>
     */
    public static function unknownVms(): iterable
    {
        yield 'getVm' => [static fn ($client) => $client->getVm('nosuch_box_1_1')];
        yield 'stopVm' => [static fn ($client) => $client->stopVm('nosuch_box_1_1')];
        yield 'haltVm' => [static fn ($client) => $client->haltVm('nosuch_box_1_1')];
        yield 'shutdownVm' => [static fn ($client) => $client->shutdownVm('nosuch_box_1_1')];
        yield 'destroyVm' => [static fn ($client) => $client->destroyVm('nosuch_box_1_1')];
        yield 'startExistingVm' => [static fn ($client) => $client->startExistingVm('nosuch_box_1_1')];
    }

    /**
     * @dataProvider unknownVms
     * @param callable(\Vcm\Client): mixed $request
     */
    public function testAnUnknownVmIdGetsVmNotFound(callable $request): void
    {
        $error = $this->failure(fn () => $request($this->client));

        self::assertInstanceOf(VmNotFoundException::class, $error);
        self::assertSame('VM_NOT_FOUND', $error->getErrorCode());
        self::assertStringContainsString('nosuch_box_1_1', $error->getMessage());
    }

    private function failure(callable $request): ServerException
    {
        try {
            $request();
        } catch (ServerException $error) {
            self::assertInstanceOf(VcmException::class, $error);
            self::assertTrue($error->getReply()['error']);

            return $error;
        }
        self::fail('the request should have failed');
    }

    private function assertStillUsable(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        self::assertSame($boxId, $this->client->getBox($boxId)->boxId);
    }
}
