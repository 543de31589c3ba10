<?php

declare(strict_types=1);

namespace Vcm\Tests\Support;

use PHPUnit\Framework\TestCase;
use Vcm\Client;

/**
 * Tests against one real daemon per test class, started with daemonSettings() (and serving TLS
 * for daemonTlsNames(), when that is not null).
 */
abstract class DaemonTestCase extends TestCase
{
    protected static ?DaemonProcess $daemon = null;
    protected Client $client;

    /**
     * @return array<string, string>
     */
    protected static function daemonSettings(): array
    {
        return ['VCM_DRIVER' => 'simulated'];
    }

    /**
     * The subjectAltName of the certificate the daemon serves TLS with; null: plain TCP.
     */
    protected static function daemonTlsNames(): ?string
    {
        return null;
    }

    public static function setUpBeforeClass(): void
    {
        static::$daemon = (new DaemonProcess(static::daemonSettings(), static::daemonTlsNames()))->start();
    }

    public static function tearDownAfterClass(): void
    {
        if (static::$daemon !== null) {
            $code = static::$daemon->stop();
            $log = static::$daemon->log();
            static::$daemon->removeStateDir();
            static::$daemon = null;
            self::assertSame(0, $code, "the daemon did not exit cleanly on SIGTERM:\n$log");
        }
    }

    protected function setUp(): void
    {
        $this->client = $this->daemon()->client($this->clientOptions());
    }

    protected function tearDown(): void
    {
        $this->client->close();
    }

    /**
     * @return array<string, mixed>
     */
    protected function clientOptions(): array
    {
        return ['timeout' => 60.0];
    }

    protected function daemon(): DaemonProcess
    {
        self::assertNotNull(static::$daemon, 'the daemon is not running');

        return static::$daemon;
    }
}
