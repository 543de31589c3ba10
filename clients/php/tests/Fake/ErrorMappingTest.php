<?php

declare(strict_types=1);

namespace Vcm\Tests\Fake;

use PHPUnit\Framework\TestCase;
use Vcm\BulkFailure;
use Vcm\Exception;
use Vcm\Exception\ServerException;
use Vcm\Exception\VcmException;
use Vcm\Tests\Support\DaemonProcess;
use Vcm\Tests\Support\FakeServer;

/**
 * Every error code of the protocol maps to its own exception, whatever the command.
 */
final class ErrorMappingTest extends TestCase
{
    private const EXPECTED = [
        'INVALID_JSON' => Exception\InvalidJsonException::class,
        'INVALID_REQUEST' => Exception\InvalidRequestException::class,
        'UNKNOWN_COMMAND' => Exception\UnknownCommandException::class,
        'REQUEST_TOO_LARGE' => Exception\RequestTooLargeException::class,
        'UNAUTHORIZED' => Exception\UnauthorizedException::class,
        'BOX_NOT_FOUND' => Exception\BoxNotFoundException::class,
        'VM_NOT_FOUND' => Exception\VmNotFoundException::class,
        'BOX_UNAVAILABLE' => Exception\BoxUnavailableException::class,
        'IP_POOL_EXHAUSTED' => Exception\IpPoolExhaustedException::class,
        'VAGRANT_ERROR' => Exception\VagrantErrorException::class,
        'UNSUPPORTED' => Exception\UnsupportedException::class,
        'INTERNAL' => Exception\InternalException::class,
        'CANCELLED' => Exception\CancelledException::class,
        'OPERATION_NOT_FOUND' => Exception\OperationNotFoundException::class,
    ];

    private static FakeServer $server;

    public static function setUpBeforeClass(): void
    {
        self::$server = new FakeServer();
    }

    public static function tearDownAfterClass(): void
    {
        self::$server->stop();
    }

    public function testEveryCodeOfTheProtocolDocumentHasAnException(): void
    {
        $document = (string) file_get_contents(DaemonProcess::repoRoot() . '/docs/protocol.md');
        preg_match_all('/^\| `([A-Z_]+)` \|/m', $document, $matches);

        self::assertCount(14, $matches[1], 'the table of error codes in docs/protocol.md');
        self::assertEqualsCanonicalizing($matches[1], array_keys(ServerException::classesByCode()));
        self::assertSame(self::EXPECTED, ServerException::classesByCode());
    }

    /**
     * @return iterable<string, array{string, class-string<ServerException>}>
     */
    public static function codes(): iterable
    {
        foreach (self::EXPECTED as $code => $class) {
            yield $code => [$code, $class];
        }
    }

    /**
     * @dataProvider codes
     * @param class-string<ServerException> $class
     */
    public function testAnErrorReplyThrowsTheExceptionOfItsCode(string $code, string $class): void
    {
        $client = self::$server->client();
        $reply = ['error' => true, 'code' => $code, 'message' => "it went wrong: $code"];

        try {
            $client->call(['command' => 'info', 'subcommand' => 'VM all', 'reply' => $reply]);
            self::fail('an error reply must throw');
        } catch (ServerException $error) {
            self::assertSame($class, get_class($error));
            self::assertInstanceOf(VcmException::class, $error);
            self::assertSame($code, $error->getErrorCode());
            self::assertSame("it went wrong: $code", $error->getMessage());
            self::assertSame($code, $error->getReply()['code']);
        }
        self::assertSame(2, $client->call([])['request'], 'the connection goes on after an error reply');
    }

    public function testEveryMethodThrowsTheExceptionOfTheReply(): void
    {
        $server = new FakeServer(['error' => true, 'code' => 'INTERNAL', 'message' => 'internal error: OSError']);
        $client = $server->client();
        $methods = [
            'createBox' => fn () => $client->createBox('debian/bookworm64'),
            'startVm' => fn () => $client->startVm('b_1'),
            'startExistingVm' => fn () => $client->startExistingVm('b_1_1'),
            'stopVm' => fn () => $client->stopVm('b_1_1'),
            'haltVm' => fn () => $client->haltVm('b_1_1'),
            'shutdownVm' => fn () => $client->shutdownVm('b_1_1'),
            'destroyVm' => fn () => $client->destroyVm('b_1_1'),
            'destroyBox' => fn () => $client->destroyBox('b_1'),
            'destroyAll' => fn () => $client->destroyAll(),
            'stopAll' => fn () => $client->stopAll(),
            'haltAll' => fn () => $client->haltAll(),
            'shutdownAll' => fn () => $client->shutdownAll(),
            'listVms' => fn () => $client->listVms(),
            'getVm' => fn () => $client->getVm('b_1_1'),
            'listBoxes' => fn () => $client->listBoxes(),
            'getBox' => fn () => $client->getBox('b_1'),
        ];
        try {
            foreach ($methods as $name => $method) {
                try {
                    $method();
                    self::fail("$name did not throw");
                } catch (Exception\InternalException $error) {
                    self::assertSame('internal error: OSError', $error->getMessage(), $name);
                }
            }
        } finally {
            $server->stop();
        }
    }

    public function testAnUnknownCodeIsAPlainServerException(): void
    {
        $client = self::$server->client();

        try {
            $client->call(['command' => 'x', 'reply' => ['error' => true, 'code' => 'DISK_FULL', 'message' => 'full']]);
            self::fail('an error reply must throw');
        } catch (ServerException $error) {
            self::assertSame(ServerException::class, get_class($error));
            self::assertSame('DISK_FULL', $error->getErrorCode());
            self::assertSame('full', $error->getMessage());
        }
    }

    public function testAPartlyFailedBulkCommandTellsWhatWasDone(): void
    {
        $client = self::$server->client();
        $reply = [
            'error' => true,
            'VMS' => ['web_1_1'],
            'failed' => [
                ['vmID' => 'web_1_2', 'code' => 'VAGRANT_ERROR', 'message' => 'vagrant destroy failed (exit 1)'],
                ['vmID' => 'web_1_3', 'code' => 'INTERNAL', 'message' => 'internal error: OSError'],
            ],
            'code' => 'VAGRANT_ERROR',
            'message' => 'destroyed 1 VM; 2 failed: vagrant destroy failed (exit 1)',
        ];

        try {
            $client->call(['command' => 'destroy', 'subcommand' => 'all', 'reply' => $reply]);
            self::fail('a partly failed bulk command must throw');
        } catch (Exception\VagrantErrorException $error) {
            self::assertSame(['web_1_1'], $error->getCompletedVmIds());
            self::assertEquals(
                [
                    new BulkFailure('web_1_2', 'VAGRANT_ERROR', 'vagrant destroy failed (exit 1)'),
                    new BulkFailure('web_1_3', 'INTERNAL', 'internal error: OSError'),
                ],
                $error->getFailures(),
            );
        }
    }

    public function testAnErrorOfASingleVmHasNoBulkDetails(): void
    {
        $error = ServerException::fromReply(['error' => true, 'code' => 'VM_NOT_FOUND', 'message' => 'no VM']);

        self::assertInstanceOf(Exception\VmNotFoundException::class, $error);
        self::assertSame([], $error->getCompletedVmIds());
        self::assertSame([], $error->getFailures());
    }
}
