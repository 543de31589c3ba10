<?php

declare(strict_types=1);

namespace Vcm\Tests\Support;

use Vcm\Client;

/**
 * Runs fake-server.php in its own PHP process and stops it again.
 */
final class FakeServer
{
    public readonly int $port;

    /** @var resource */
    private $process;
    /** @var array<int, resource> */
    private array $pipes = [];
    private readonly string $log;
    private int $logOffset = 0;

    /**
     * @param array<string, mixed>|null $reply the reply to every request that scripts none
     */
    public function __construct(?array $reply = null)
    {
        $command = [PHP_BINARY, __DIR__ . '/fake-server.php'];
        if ($reply !== null) {
            $command[] = json_encode($reply, JSON_THROW_ON_ERROR);
        }
        $this->log = (string) tempnam(sys_get_temp_dir(), 'vcm-php-fake-');
        $environment = getenv();
        $environment['FAKE_SERVER_LOG'] = $this->log;
        $process = proc_open(
            $command,
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']],
            $this->pipes,
            null,
            $environment,
        );
        if ($process === false) {
            throw new \RuntimeException('cannot start the fake server');
        }
        $this->process = $process;
        stream_set_timeout($this->pipes[1], 10);
        $line = (string) fgets($this->pipes[1]);
        if (preg_match('/^listening (\d+)$/', trim($line), $match) !== 1) {
            $this->stop();
            throw new \RuntimeException("the fake server did not start: '$line'");
        }
        $this->port = (int) $match[1];
    }

    /**
     * @param array<string, mixed> $options named arguments for Client, after host and port
     */
    public function client(array $options = []): Client
    {
        return new Client('127.0.0.1', $this->port, ...$options);
    }

    /**
     * The next request line the server received, as sent.
     */
    public function nextRequestLine(): string
    {
        $log = (string) file_get_contents($this->log);
        $end = strpos($log, "\n", $this->logOffset);
        if ($end === false) {
            throw new \RuntimeException('the fake server received no further request');
        }
        $line = substr($log, $this->logOffset, $end - $this->logOffset);
        $this->logOffset = $end + 1;

        return $line;
    }

    /**
     * @return array<string, mixed>
     */
    public function nextRequest(): array
    {
        return json_decode($this->nextRequestLine(), true, 512, JSON_THROW_ON_ERROR);
    }

    public function stop(): void
    {
        if (is_resource($this->process)) {
            proc_terminate($this->process, 9);
            foreach ($this->pipes as $pipe) {
                @fclose($pipe);
            }
            proc_close($this->process);
            @unlink($this->log);
        }
    }
}
