<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Client;
use Vcm\Exception\ConnectionException;
use Vcm\Exception\LocalFileException;
use Vcm\Exception\TimeoutException;
use Vcm\Tests\Support\DaemonProcess;
use Vcm\Tests\Support\DaemonTestCase;

/**
 * A daemon serving TLS (VCM_TLS_CERT, VCM_TLS_KEY) with a self-signed certificate for 127.0.0.1
 * and localhost; $this->client trusts it (tls: true, tlsCaFile: that certificate).
 */
final class TlsTest extends DaemonTestCase
{
    /** the failures must come well within these timeouts */
    private const QUICK = ['connectTimeout' => 2.0, 'timeout' => 5.0];

    /** @var list<DaemonProcess> daemons a test started besides the class's one */
    private array $others = [];

    protected static function daemonTlsNames(): ?string
    {
        return DaemonProcess::LOOPBACK_NAMES;
    }

    protected function tearDown(): void
    {
        parent::tearDown();
        foreach ($this->others as $daemon) {
            $daemon->kill();
            $daemon->removeStateDir();
        }
    }

    public function testWithTheCaFileEveryCallWorksOnOneConnection(): void
    {
        $client = $this->daemon()->client(['timeout' => 60.0]);
        $logged = strlen($this->daemon()->log());

        $boxId = $client->createBox('debian/bookworm64', shell: ['echo over TLS']);
        $first = $client->startVm($boxId);
        $second = $client->startVm($boxId);
        $vmIds = array_map(static fn ($vm): string => $vm->vmId, $client->listVms());
        $client->destroyBox($boxId);

        self::assertContains($first->vmId, $vmIds);
        self::assertContains($second->vmId, $vmIds);
        preg_match_all('/peer=(\S+) command=/', substr($this->daemon()->log(), $logged), $peers);
        self::assertGreaterThanOrEqual(4, count($peers[1]), 'the daemon logs every change');
        self::assertCount(1, array_unique($peers[1]), 'every request went over the first connection');
    }

    public function testLargeRequestsAndRepliesCrossManyTlsRecords(): void
    {
        $script = str_repeat("echo 'a line of a long provisioning script'\n", 20000);

        $boxId = $this->client->createBox('debian/bookworm64', shell: [$script]);

        self::assertGreaterThan(800_000, strlen($script));
        self::assertSame($script, $this->client->getBox($boxId)->shell[0]->inline);
        $this->client->destroyBox($boxId);
    }

    public function testTheCertificateMustNameTheHostConnectedTo(): void
    {
        $byName = new Client('localhost', $this->daemon()->port, tls: true, tlsCaFile: $this->daemon()->tlsCaFile);
        self::assertIsArray($byName->listBoxes());

        $daemon = $this->startAnother(['VCM_DRIVER' => 'simulated'], 'DNS:vcm.example.org');
        $this->assertVerificationFails($daemon->client(self::QUICK), $daemon);
    }

    public function testWithoutTheCaFileItIsATlsVerificationFailure(): void
    {
        $daemon = $this->daemon();

        $this->assertVerificationFails($daemon->client(['tlsCaFile' => null] + self::QUICK), $daemon);
    }

    public function testAnotherCaIsATlsVerificationFailure(): void
    {
        $other = DaemonProcess::temporaryDirectory('vcm-php-ca-');
        try {
            DaemonProcess::makeCertificate(DaemonProcess::LOOPBACK_NAMES, "$other/cert.pem", "$other/key.pem");
            $client = $this->daemon()->client(['tlsCaFile' => "$other/cert.pem"] + self::QUICK);

            $this->assertVerificationFails($client, $this->daemon());
        } finally {
            DaemonProcess::removeTree($other);
        }
    }

    public function testPlainTextToATlsDaemonFailsAtOnceAndSuggestsTls(): void
    {
        $plain = new Client($this->daemon()->host, $this->daemon()->port, ...self::QUICK);

        $error = $this->failure(static fn () => $plain->listVms());

        self::assertNotInstanceOf(TimeoutException::class, $error);
        self::assertStringContainsString('closed the connection before replying', $error->getMessage());
        self::assertStringContainsString('tls: true', $error->getMessage());
        self::assertStringContainsString($this->where($this->daemon()), $error->getMessage());
    }

    public function testTlsToAPlainDaemonFailsAtOnce(): void
    {
        $daemon = $this->startAnother(['VCM_DRIVER' => 'simulated']);
        $client = $daemon->client(['tls' => true, 'tlsCaFile' => $this->daemon()->tlsCaFile] + self::QUICK);

        $error = $this->failure(static fn () => $client->listVms());

        self::assertNotInstanceOf(TimeoutException::class, $error);
        self::assertStringContainsString(
            "TLS handshake with the vcm daemon at {$this->where($daemon)} failed",
            $error->getMessage(),
        );
        self::assertStringContainsString('does it serve TLS', $error->getMessage());
    }

    public function testAHandshakeWithoutAnswerEndsAtTheConnectTimeout(): void
    {
        $silent = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($silent);
        $name = (string) stream_socket_get_name($silent, false);
        $client = new Client('127.0.0.1', (int) substr($name, strrpos($name, ':') + 1), connectTimeout: 0.5, tls: true);

        $began = microtime(true);
        try {
            $client->listVms();
            self::fail('nothing answers the handshake');
        } catch (TimeoutException $error) {
            self::assertStringContainsString('TLS handshake', $error->getMessage());
            self::assertStringContainsString('no answer within 0.5 s', $error->getMessage());
        } finally {
            fclose($silent);
        }
        self::assertLessThan(1.5, microtime(true) - $began);
    }

    public function testAConnectionTheDaemonClosedWhileIdleIsReplaced(): void
    {
        $daemon = $this->startAnother(
            ['VCM_DRIVER' => 'simulated', 'VCM_IDLE_TIMEOUT' => '1'],
            DaemonProcess::LOOPBACK_NAMES,
        );
        $client = $daemon->client(self::QUICK);
        self::assertSame([], $client->listVms());

        $deadline = microtime(true) + 10;
        while (!str_contains($daemon->log(), 'no complete request') && microtime(true) < $deadline) {
            usleep(50000);
        }

        self::assertStringContainsString('no complete request', $daemon->log());
        self::assertNotSame('', $client->createBox('debian/bookworm64'));
    }

    public function testACaFileNeedsTlsAndMustHoldACertificate(): void
    {
        try {
            new Client(tlsCaFile: (string) $this->daemon()->tlsCaFile);
            self::fail('tlsCaFile without tls');
        } catch (\InvalidArgumentException $error) {
            self::assertStringContainsString('tls: true', $error->getMessage());
        }

        $missing = $this->daemon()->stateDir . '/missing.pem';
        $junk = $this->daemon()->stateDir . '/junk.pem';
        file_put_contents($junk, "not a certificate\n");
        foreach ([$missing, $junk] as $file) {
            try {
                new Client(tls: true, tlsCaFile: $file);
                self::fail("$file holds no certificate");
            } catch (LocalFileException $error) {
                self::assertStringContainsString($file, $error->getMessage());
            }
        }
    }

    private function assertVerificationFails(Client $client, DaemonProcess $daemon): void
    {
        $error = $this->failure(static fn () => $client->listVms());

        self::assertNotInstanceOf(TimeoutException::class, $error);
        self::assertStringContainsString(
            "TLS verification failed for the vcm daemon at {$this->where($daemon)}",
            $error->getMessage(),
        );
        self::assertStringContainsString('tlsCaFile', $error->getMessage());
    }

    private function failure(\Closure $call): ConnectionException
    {
        $began = microtime(true);
        try {
            $call();
        } catch (ConnectionException $error) {
            self::assertLessThan(self::QUICK['connectTimeout'], microtime(true) - $began, $error->getMessage());

            return $error;
        }
        self::fail('the call succeeded');
    }

    /**
     * @param array<string, string> $settings
     */
    private function startAnother(array $settings, ?string $tlsNames = null): DaemonProcess
    {
        $daemon = new DaemonProcess($settings, $tlsNames);
        $this->others[] = $daemon;

        return $daemon->start();
    }

    private function where(DaemonProcess $daemon): string
    {
        return "{$daemon->host}:{$daemon->port}";
    }
}
