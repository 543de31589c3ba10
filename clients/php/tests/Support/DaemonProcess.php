<?php

declare(strict_types=1);

namespace Vcm\Tests\Support;

use Vcm\Client;

/**
 * The real vcm daemon as a subprocess on a free loopback port, with its own state directory.
 *
 * The interpreter is $VCM_PYTHON, or the repository's .venv/bin/python. VCM_* variables of the
 * calling environment are not passed on: only the settings given here apply.
 */
final class DaemonProcess
{
    /** @var array<int, self> */
    private static array $running = [];

    public string $host = '127.0.0.1';
    public int $port = 0;
    public readonly string $stateDir;

    /** @var resource|null */
    private $process = null;
    /** @var array<string, mixed>|null the status once the process ended (PHP reports it once) */
    private ?array $ended = null;
    private readonly string $logFile;

    /**
     * @param array<string, string> $settings VCM_* variables for the daemon
     */
    public function __construct(private readonly array $settings = ['VCM_DRIVER' => 'simulated'])
    {
        $this->stateDir = self::temporaryDirectory('vcm-php-daemon-');
        $this->logFile = $this->stateDir . '/daemon.log';
    }

    public static function repoRoot(): string
    {
        return dirname(__DIR__, 4);
    }

    public static function python(): string
    {
        $python = getenv('VCM_PYTHON');

        return is_string($python) && $python !== '' ? $python : self::repoRoot() . '/.venv/bin/python';
    }

    public static function temporaryDirectory(string $prefix): string
    {
        $path = sys_get_temp_dir() . '/' . $prefix . bin2hex(random_bytes(6));
        if (!mkdir($path, 0700)) {
            throw new \RuntimeException("cannot create $path");
        }

        return $path;
    }

    public function start(float $timeout = 30.0): self
    {
        $environment = array_filter(
            getenv(),
            static fn (string $name): bool => !str_starts_with($name, 'VCM_'),
            ARRAY_FILTER_USE_KEY,
        );
        $source = self::repoRoot() . '/src';
        $inherited = isset($environment['PYTHONPATH']) ? ':' . $environment['PYTHONPATH'] : '';
        $environment['PYTHONPATH'] = $source . $inherited;
        $environment += [
            'VCM_PORT' => '0',
            'VCM_HOST' => '127.0.0.1',
            'VCM_STATE_DIR' => $this->stateDir,
            'VCM_CONFIG_FILE' => $this->stateDir . '/absent.toml',
        ];
        $environment = array_merge($environment, $this->settings);
        $descriptors = [
            0 => ['file', '/dev/null', 'r'],
            1 => ['file', '/dev/null', 'w'],
            2 => ['file', $this->logFile, 'w'],
        ];
        $pipes = [];
        $process = proc_open(
            [self::python(), '-m', 'vcm.entrypoints.daemon'],
            $descriptors,
            $pipes,
            self::repoRoot(),
            $environment,
        );
        if ($process === false) {
            throw new \RuntimeException('cannot run ' . self::python());
        }
        $this->process = $process;
        $this->ended = null;
        self::$running[spl_object_id($this)] = $this;
        $deadline = microtime(true) + $timeout;
        while (microtime(true) < $deadline) {
            if (preg_match('/vcm listening on (\S+):(\d+)/', $this->log(), $match) === 1) {
                $this->host = $match[1];
                $this->port = (int) $match[2];

                return $this;
            }
            if (!$this->isRunning()) {
                break;
            }
            usleep(20000);
        }
        $this->kill();
        throw new \RuntimeException("the daemon did not start listening:\n" . $this->log());
    }

    /**
     * @param array<string, mixed> $options named arguments for Client, after host and port
     */
    public function client(array $options = []): Client
    {
        return new Client($this->host, $this->port, ...$options);
    }

    public function log(): string
    {
        return (string) @file_get_contents($this->logFile);
    }

    /**
     * SIGTERM, as a service manager stops it; returns the exit code.
     */
    public function stop(float $timeout = 120.0): int
    {
        return $this->signal(15, $timeout);
    }

    public function kill(): int
    {
        return $this->signal(9, 30.0);
    }

    public function isRunning(): bool
    {
        return $this->process !== null && $this->status()['running'];
    }

    /**
     * @return array<string, mixed>
     */
    private function status(): array
    {
        if ($this->ended !== null) {
            return $this->ended;
        }
        \assert($this->process !== null);
        $status = proc_get_status($this->process);
        if (!$status['running']) {
            $this->ended = $status;
        }

        return $status;
    }

    public function removeStateDir(): void
    {
        self::removeTree($this->stateDir);
    }

    public static function killAll(): void
    {
        foreach (self::$running as $daemon) {
            $daemon->kill();
        }
    }

    public static function removeTree(string $path): void
    {
        if (is_link($path) || is_file($path)) {
            @unlink($path);

            return;
        }
        if (!is_dir($path)) {
            return;
        }
        foreach (scandir($path) ?: [] as $entry) {
            if ($entry !== '.' && $entry !== '..') {
                self::removeTree("$path/$entry");
            }
        }
        @rmdir($path);
    }

    private function signal(int $signal, float $timeout): int
    {
        if ($this->process === null) {
            return -1;
        }
        if ($this->isRunning()) {
            proc_terminate($this->process, $signal);
            $deadline = microtime(true) + $timeout;
            while ($this->isRunning() && microtime(true) < $deadline) {
                usleep(20000);
            }
            if ($this->isRunning()) {
                proc_terminate($this->process, 9);
                $deadline = microtime(true) + 30.0;
                while ($this->isRunning() && microtime(true) < $deadline) {
                    usleep(20000);
                }
            }
        }
        $status = $this->status();
        proc_close($this->process);
        $this->process = null;
        unset(self::$running[spl_object_id($this)]);

        return $status['signaled'] ? -$status['termsig'] : $status['exitcode'];
    }
}
