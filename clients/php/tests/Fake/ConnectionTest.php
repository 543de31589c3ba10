<?php

declare(strict_types=1);

namespace Vcm\Tests\Fake;

use PHPUnit\Framework\TestCase;
use Vcm\Client;
use Vcm\Exception\ConnectionException;
use Vcm\Exception\ProtocolException;
use Vcm\Exception\RequestTooLargeException;
use Vcm\Exception\TimeoutException;
use Vcm\Tests\Support\FakeServer;

/**
 * The connection: reuse, framing, partial reads and writes, timeouts and broken replies.
 */
final class ConnectionTest extends TestCase
{
    private FakeServer $server;
    private Client $client;

    protected function setUp(): void
    {
        $this->server = new FakeServer();
        $this->client = $this->server->client(['timeout' => 10.0]);
    }

    protected function tearDown(): void
    {
        $this->client->close();
        $this->server->stop();
    }

    public function testNothingListeningIsAConnectionFailure(): void
    {
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($probe);
        $name = (string) stream_socket_get_name($probe, false);
        fclose($probe);
        $port = (int) substr($name, strrpos($name, ':') + 1);

        try {
            (new Client('127.0.0.1', $port, connectTimeout: 2.0))->listVms();
            self::fail('nothing listens there');
        } catch (ConnectionException $error) {
            self::assertNotInstanceOf(TimeoutException::class, $error);
            self::assertStringContainsString("127.0.0.1:$port", $error->getMessage());
        }
    }

    public function testOneConnectionCarriesEveryRequest(): void
    {
        $replies = [$this->client->call([]), $this->client->call([]), $this->client->call([])];

        self::assertSame([1, 1, 1], array_column($replies, 'connection'));
        self::assertSame([1, 2, 3], array_column($replies, 'request'));
    }

    public function testCloseStartsANewConnectionOnTheNextCall(): void
    {
        $this->client->call([]);
        $this->client->close();

        $reply = $this->client->call([]);

        self::assertSame(2, $reply['connection']);
        self::assertSame(1, $reply['request']);
    }

    public function testARequestIsOneLineWithTokenAndIncreasingIds(): void
    {
        $client = $this->server->client(['token' => 's3cret']);

        $client->call(['command' => 'info', 'subcommand' => 'VM all']);
        $client->call(['command' => 'info', 'subcommand' => 'box all']);

        self::assertSame(
            '{"command":"info","subcommand":"VM all","token":"s3cret","id":1}',
            $this->server->nextRequestLine(),
        );
        self::assertSame(
            '{"command":"info","subcommand":"box all","token":"s3cret","id":2}',
            $this->server->nextRequestLine(),
        );
    }

    public function testWithoutIdsTheRequestHasNone(): void
    {
        $reply = $this->server->client(['sendIds' => false])->call(['command' => 'info', 'subcommand' => 'VM all']);

        self::assertSame(['command' => 'info', 'subcommand' => 'VM all'], $this->server->nextRequest());
        self::assertArrayNotHasKey('id', $reply);
    }

    public function testAReplyTrickledByteByByteIsReassembled(): void
    {
        $message = "Grüße \u{2014} \u{2713} done";

        $reply = $this->client->call([
            'chunk' => 1,
            'pause' => 2,
            'reply' => ['error' => false, 'message' => $message],
        ]);

        self::assertSame($message, $reply['message']);
        self::assertSame(1, $reply['id']);
    }

    public function testAReplyInPiecesWithPausesIsReassembled(): void
    {
        $vms = array_map(static fn (int $n): string => "web_1_$n", range(1, 200));

        $reply = $this->client->call(['chunk' => 700, 'pause' => 30, 'reply' => ['error' => false, 'VMS' => $vms]]);

        self::assertSame($vms, $reply['VMS']);
    }

    public function testALargeRequestIsWrittenInFull(): void
    {
        $padding = str_repeat('0123456789', 400000);

        $this->client->call(['command' => 'create', 'shell' => [$padding]]);

        self::assertSame([$padding], $this->server->nextRequest()['shell']);
    }

    public function testSilenceOverTheTimeoutThrowsAndTheNextCallReconnects(): void
    {
        $client = $this->server->client(['timeout' => 0.3]);
        $began = microtime(true);

        try {
            $client->call(['silent' => true]);
            self::fail('no reply comes');
        } catch (TimeoutException $error) {
            self::assertStringContainsString('0.3 s', $error->getMessage());
        }

        $waited = microtime(true) - $began;
        self::assertGreaterThanOrEqual(0.3, $waited);
        self::assertLessThan(2.0, $waited);
        $reply = $client->call([]);
        self::assertSame([2, 1], [$reply['connection'], $reply['request']]);
    }

    public function testAConnectionClosedMidReplyFailsAndTheNextCallReconnects(): void
    {
        try {
            $this->client->call(['rawReply' => '{"error": false, "mess', 'close' => true]);
            self::fail('the reply is cut off');
        } catch (ConnectionException $error) {
            self::assertStringContainsString('closed the connection', $error->getMessage());
            self::assertStringContainsString('"mess', $error->getMessage());
        }

        self::assertSame(2, $this->client->call([])['connection']);
    }

    public function testAConnectionClosedWithoutAReplyFails(): void
    {
        $this->expectException(ConnectionException::class);
        $this->expectExceptionMessage('closed the connection before replying');

        $this->client->call(['silent' => true, 'close' => true]);
    }

    public function testAnIdleConnectionTheDaemonClosedIsReplacedQuietly(): void
    {
        self::assertSame(1, $this->client->call(['close' => true])['connection']);
        usleep(100000);

        self::assertSame(2, $this->client->call([])['connection']);
    }

    /**
     * @return iterable<string, array{string, string}>
     */
    public static function brokenReplies(): iterable
    {
        yield 'not JSON' => ["hello\n", 'not JSON'];
        yield 'a JSON array' => ["[1, 2]\n", 'not a JSON object'];
        yield 'error as a string, like the seed typo' => ["{\"error\": \"false\", \"id\": 1}\n", '"error"'];
        yield 'another id' => ["{\"error\": false, \"id\": 7}\n", 'id 7'];
        yield 'another id on an interim line' => ["{\"progress\": \"booting\", \"id\": 7}\n", 'id 7'];
        yield 'no id on a success' => ["{\"error\": false}\n", 'no id'];
        yield 'a string id' => ["{\"error\": false, \"id\": \"1\"}\n", 'id "1"'];
    }

    /**
     * @dataProvider brokenReplies
     */
    public function testABrokenReplyIsAProtocolErrorAndDropsTheConnection(string $raw, string $mentions): void
    {
        try {
            $this->client->call(['rawReply' => $raw]);
            self::fail('the reply is broken');
        } catch (ProtocolException $error) {
            self::assertStringContainsString($mentions, $error->getMessage());
        }

        self::assertSame(2, $this->client->call([])['connection']);
    }

    public function testInterimLinesBeforeTheFinalReplyGoToTheProgressCallback(): void
    {
        $seen = [];
        $client = $this->server->client(['onProgress' => function (string $text) use (&$seen): void {
            $seen[] = $text;
        }]);

        $reply = $client->call([
            'rawReply' => "{\"id\": 1, \"progress\": \"importing\"}\n{\"message\": \"booting\"}\n"
                . "{\"error\": false, \"id\": 1, \"message\": \"done\"}\n",
        ]);

        self::assertSame(['importing', 'booting'], $seen);
        self::assertSame('done', $reply['message']);
        self::assertSame(2, $client->call([])['request'], 'nothing was left over');
    }

    public function testAnErrorOnARequestTooLargeToReadNeedsNoId(): void
    {
        $this->expectException(RequestTooLargeException::class);

        $this->client->call([
            'noId' => true,
            'reply' => ['error' => true, 'code' => 'REQUEST_TOO_LARGE', 'message' => 'at most 1024 bytes'],
        ]);
    }

    public function testAReplyNobodyAskedForIsAProtocolError(): void
    {
        $this->client->call(['rawReply' => "{\"error\": false, \"id\": 1}\n{\"error\": false, \"id\": 1}\n"]);

        try {
            $this->client->call([]);
            self::fail('a second reply came for the first request');
        } catch (ProtocolException $error) {
            self::assertStringContainsString('no request was waiting for', $error->getMessage());
        }
        self::assertSame(2, $this->client->call([])['connection']);
    }

    public function testAReplyOverTheLimitIsRefused(): void
    {
        $client = $this->server->client(['maxReplyBytes' => 1000]);

        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('longer than 1000 bytes');

        $client->call(['reply' => ['error' => false, 'message' => str_repeat('x', 5000)]]);
    }

    public function testBadSettingsAreRefused(): void
    {
        $this->expectException(\InvalidArgumentException::class);

        new Client(port: 0);
    }
}
