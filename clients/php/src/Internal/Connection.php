<?php

declare(strict_types=1);

namespace Vcm\Internal;

use Vcm\Exception\ConnectionException;
use Vcm\Exception\ProtocolException;
use Vcm\Exception\TimeoutException;

/**
 * One TCP connection to the daemon, opened on first use and reused: writes a request, reads
 * "\n"-terminated reply lines, whatever the packet boundaries. Every wait is bounded by
 * the connect or the operation timeout. After any failure the connection is closed, and the
 * next exchange opens a new one.
 *
 * @internal
 */
final class Connection
{
    private const CHUNK = 65536;

    /** @var resource|null */
    private $stream = null;
    private string $buffer = '';
    private float $deadline = 0.0;

    public function __construct(
        private readonly string $host,
        private readonly int $port,
        private readonly float $connectTimeout,
        private readonly float $timeout,
        private readonly int $maxReplyBytes,
    ) {
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Send $payload; the operation timeout for it and its reply starts now.
     */
    public function send(string $payload): void
    {
        $this->open();
        $this->deadline = self::now() + $this->timeout;
        $this->guard(fn () => $this->writeAll($payload));
    }

    /**
     * The next line the daemon sends, without its "\n", before the deadline of the last send().
     */
    public function readLine(): string
    {
        if ($this->stream === null) {
            throw new ConnectionException('the connection to the vcm daemon is closed');
        }

        return $this->guard(fn (): string => $this->readUntilNewline());
    }

    /**
     * @template T
     * @param callable(): T $operation
     * @return T
     */
    private function guard(callable $operation): mixed
    {
        try {
            return $operation();
        } catch (ConnectionException | ProtocolException $failure) {
            $this->close();
            throw $failure;
        }
    }

    public function isOpen(): bool
    {
        return $this->stream !== null;
    }

    public function close(): void
    {
        if ($this->stream !== null) {
            @fclose($this->stream);
        }
        $this->stream = null;
        $this->buffer = '';
    }

    private function open(): void
    {
        if ($this->stream !== null && !$this->isIdleAndUsable()) {
            $this->close();
        }
        if ($this->stream !== null) {
            return;
        }
        $host = str_contains($this->host, ':') && !str_starts_with($this->host, '[')
            ? "[{$this->host}]"
            : $this->host;
        $address = "tcp://$host:{$this->port}";
        $context = stream_context_create(['socket' => ['tcp_nodelay' => true]]);
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client(
            $address,
            $errno,
            $errstr,
            $this->connectTimeout,
            STREAM_CLIENT_CONNECT,
            $context,
        );
        if ($stream === false) {
            $reason = $errstr !== '' ? $errstr : (error_get_last()['message'] ?? 'unknown error');
            $exception = $errno === 110 || stripos($reason, 'timed out') !== false
                ? TimeoutException::class
                : ConnectionException::class;
            throw new $exception(
                "cannot connect to the vcm daemon at {$this->host}:{$this->port}: $reason"
            );
        }
        stream_set_blocking($stream, false);
        stream_set_read_buffer($stream, 0);
        stream_set_write_buffer($stream, 0);
        $this->stream = $stream;
        $this->buffer = '';
    }

    /**
     * A kept connection is reused only if the daemon has not closed it and sent nothing
     * unasked; otherwise it is replaced before the request is sent, so nothing is lost.
     */
    private function isIdleAndUsable(): bool
    {
        if ($this->buffer !== '') {
            throw $this->desynchronized($this->buffer);
        }
        $read = [$this->stream];
        $write = null;
        $except = null;
        if (@stream_select($read, $write, $except, 0, 0) !== 1) {
            return !feof($this->stream);
        }
        $data = @fread($this->stream, self::CHUNK);
        if ($data === false || $data === '') {
            return false;
        }
        throw $this->desynchronized($data);
    }

    private function desynchronized(string $data): ProtocolException
    {
        $this->close();

        return new ProtocolException(sprintf(
            'the daemon sent data no request was waiting for (%s); the connection was dropped',
            self::excerpt($data),
        ));
    }

    private function writeAll(string $payload): void
    {
        $length = strlen($payload);
        $offset = 0;
        $stalls = 0;
        while ($offset < $length) {
            $read = null;
            $write = [$this->stream];
            $except = null;
            if ($this->select($read, $write, $except, 'sending the request') === 0) {
                continue;
            }
            $written = @fwrite($this->stream, substr($payload, $offset, self::CHUNK));
            if ($written === false) {
                $reason = error_get_last()['message'] ?? 'write failed';
                throw new ConnectionException("lost the connection to the vcm daemon while sending: $reason");
            }
            if ($written === 0) {
                if (++$stalls > 1000) {
                    throw new ConnectionException('lost the connection to the vcm daemon while sending');
                }
                usleep(1000);
                continue;
            }
            $stalls = 0;
            $offset += $written;
        }
    }

    private function readUntilNewline(): string
    {
        $scanned = 0;
        while (true) {
            $end = strpos($this->buffer, "\n", $scanned);
            $scanned = $end === false ? strlen($this->buffer) : $end;
            if ($scanned > $this->maxReplyBytes) {
                throw new ProtocolException(
                    "a reply from the vcm daemon is longer than {$this->maxReplyBytes} bytes"
                );
            }
            if ($end !== false) {
                $line = substr($this->buffer, 0, $end);
                $this->buffer = (string) substr($this->buffer, $end + 1);

                return $line;
            }
            $read = [$this->stream];
            $write = null;
            $except = null;
            if ($this->select($read, $write, $except, 'waiting for the reply') === 0) {
                continue;
            }
            $chunk = @fread($this->stream, self::CHUNK);
            if ($chunk === false || ($chunk === '' && feof($this->stream))) {
                throw new ConnectionException(sprintf(
                    'the vcm daemon closed the connection before replying%s',
                    $this->buffer === '' ? '' : ' in full (got ' . self::excerpt($this->buffer) . ')',
                ));
            }
            $this->buffer .= $chunk;
        }
    }

    /**
     * @param array<resource>|null $read
     * @param array<resource>|null $write
     * @param array<resource>|null $except
     */
    private function select(?array &$read, ?array &$write, ?array &$except, string $doing): int
    {
        $left = $this->deadline - self::now();
        if ($left <= 0) {
            throw new TimeoutException(sprintf(
                'no reply from the vcm daemon at %s:%d within %s s (%s); the daemon may still '
                . 'carry the request out',
                $this->host,
                $this->port,
                rtrim(rtrim(sprintf('%.3f', $this->timeout), '0'), '.'),
                $doing,
            ));
        }
        $seconds = (int) floor($left);
        $ready = @stream_select($read, $write, $except, $seconds, (int) (($left - $seconds) * 1e6));

        return $ready === false ? 0 : $ready; // false: interrupted by a signal; retry until the deadline
    }

    private static function now(): float
    {
        return hrtime(true) / 1e9;
    }

    private static function excerpt(string $data): string
    {
        $text = strlen($data) > 200 ? substr($data, 0, 200) . '...' : $data;

        $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;

        return json_encode($text, $flags) ?: '?';
    }
}
