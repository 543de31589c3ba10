<?php

declare(strict_types=1);

namespace Vcm\Tests\Support;

use Vcm\Client;

/**
 * The real vcm daemon as a subprocess on a free loopback port, with its own state directory.
 *
 * The interpreter is $VCM_PYTHON, or the repository's .venv/bin/python. VCM_* variables of the
 * calling environment are not passed on: only the settings given here apply.
 *
 * Given $tlsNames (a subjectAltName such as "IP:127.0.0.1"), it serves TLS with a new self-signed
 * certificate for those names, made with the openssl command; that certificate is $tlsCaFile, and
 * client() connects with TLS trusting it.
 */
final class DaemonProcess
{
    public const LOOPBACK_NAMES = 'IP:127.0.0.1,DNS:localhost';

    /** @var array<int, self> */
    private static array $running = [];

    public string $host = '127.0.0.1';
    public int $port = 0;
    public readonly string $stateDir;
    public readonly ?string $tlsCaFile;
    /** @var array<string, string> */
    private readonly array $settings;

    /** @var resource|null */
    private $process = null;
    /** @var array<string, mixed>|null the status once the process ended (PHP reports it once) */
    private ?array $ended = null;
    private readonly string $logFile;

    /**
     * @param array<string, string> $settings VCM_* variables for the daemon
     * @param string|null $tlsNames serve TLS with a certificate for these subjectAltNames
     */
    public function __construct(array $settings = ['VCM_DRIVER' => 'simulated'], ?string $tlsNames = null)
    {
        $this->stateDir = self::temporaryDirectory('vcm-php-daemon-');
        $this->logFile = $this->stateDir . '/daemon.log';
        $this->tlsCaFile = $tlsNames === null ? null : $this->stateDir . '/tls-cert.pem';
        if ($this->tlsCaFile !== null) {
            $key = $this->stateDir . '/tls-key.pem';
            self::makeCertificate((string) $tlsNames, $this->tlsCaFile, $key);
            $settings += ['VCM_TLS_CERT' => $this->tlsCaFile, 'VCM_TLS_KEY' => $key];
        }
        $this->settings = $settings;
    }

    /**
     * A self-signed certificate (its own CA) and its key, for the subjectAltName $names.
     */
    public static function makeCertificate(string $names, string $certFile, string $keyFile): void
    {
        $command = [
            'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
            '-subj', '/CN=vcm test', '-addext', "subjectAltName=$names",
            '-keyout', $keyFile, '-out', $certFile,
        ];
        $pipes = [];
        $descriptors = [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']];
        $process = proc_open($command, $descriptors, $pipes);
        if ($process === false) {
            throw new \RuntimeException('cannot run openssl');
        }
        $errors = (string) stream_get_contents($pipes[2]);
        fclose($pipes[2]);
        if (proc_close($process) !== 0 || !is_file($certFile)) {
            throw new \RuntimeException("openssl could not make a certificate: $errors");
        }
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
     * @param array<string, mixed> $options named arguments for Client, after host and port; for a
     *        TLS daemon, tls and tlsCaFile default to trusting its certificate
     */
    public function client(array $options = []): Client
    {
        if ($this->tlsCaFile !== null) {
            $options += ['tls' => true, 'tlsCaFile' => $this->tlsCaFile];
        }

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
