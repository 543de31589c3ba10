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
 * With $tls, the connection is TLS (1.2 or later) over that TCP connection: the daemon's
 * certificate must chain to a CA of $tlsCaFile (or of the system's when null) and name $host.
 * The connect timeout bounds the TCP connect and the handshake together.
 *
 * @internal
 */
final class Connection
{
    private const CHUNK = 65536;
    private const TLS_METHODS = STREAM_CRYPTO_METHOD_TLSv1_2_CLIENT | STREAM_CRYPTO_METHOD_TLSv1_3_CLIENT;

    /** @var resource|null */
    private $stream = null;
    private string $buffer = '';
    private float $deadline = 0.0;
    /** whether a line came on the current connection: one closed before that may want TLS */
    private bool $answered = false;

    public function __construct(
        private readonly string $host,
        private readonly int $port,
        private readonly float $connectTimeout,
        private readonly float $timeout,
        private readonly int $maxReplyBytes,
        private readonly bool $tls = false,
        private readonly ?string $tlsCaFile = null,
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
        $options = ['socket' => ['tcp_nodelay' => true]];
        if ($this->tls) {
            $options['ssl'] = array_filter([
                'verify_peer' => true,
                'verify_peer_name' => true,
                'peer_name' => trim($this->host, '[]'),
                'allow_self_signed' => false,
                'cafile' => $this->tlsCaFile,
                'crypto_method' => self::TLS_METHODS,
                'disable_compression' => true,
            ], static fn (mixed $value): bool => $value !== null);
        }
        $context = stream_context_create($options);
        $deadline = self::now() + $this->connectTimeout;
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
        if ($this->tls) {
            $this->shakeHands($stream, $deadline);
        }
        $this->stream = $stream;
        $this->buffer = '';
        $this->answered = false;
    }

    /**
     * The TLS handshake on the connected (non-blocking) $stream, by $deadline; closes it on failure.
     *
     * @param resource $stream
     */
    private function shakeHands($stream, float $deadline): void
    {
        $where = "{$this->host}:{$this->port}";
        $warnings = [];
        set_error_handler(static function (int $level, string $message) use (&$warnings): bool {
            $warnings[] = $message;

            return true;
        });
        try {
            while (($done = stream_socket_enable_crypto($stream, true, self::TLS_METHODS)) === 0) {
                $left = $deadline - self::now();
                if ($left <= 0) {
                    @fclose($stream);
                    throw new TimeoutException(sprintf(
                        'TLS handshake with the vcm daemon at %s failed: no answer within %s s '
                        . '(does it serve TLS? vcmd does with VCM_TLS_CERT and VCM_TLS_KEY)',
                        $where,
                        self::seconds($this->connectTimeout),
                    ));
                }
                // Wait for the daemon's answer; at most 0.1 s, should OpenSSL want to write instead.
                $read = [$stream];
                $write = null;
                $except = null;
                @stream_select($read, $write, $except, 0, (int) (min($left, 0.1) * 1e6));
            }
        } finally {
            restore_error_handler();
        }
        if ($done === true) {
            return;
        }
        @fclose($stream);
        $reason = self::tlsReason($warnings);
        if (preg_match('/certificate verify failed|did not match expected|peer certificate/i', $reason) === 1) {
            throw new ConnectionException(
                "TLS verification failed for the vcm daemon at $where: $reason (its certificate must "
                . "name {$this->host} and be signed by a CA this client trusts: give it as tlsCaFile)"
            );
        }
        throw new ConnectionException(
            "TLS handshake with the vcm daemon at $where failed: $reason "
            . '(does it serve TLS? vcmd does with VCM_TLS_CERT and VCM_TLS_KEY)'
        );
    }

    /**
     * What OpenSSL or PHP said about a failed handshake, without PHP's function prefix.
     *
     * @param list<string> $warnings
     */
    private static function tlsReason(array $warnings): string
    {
        $reasons = [];
        foreach ($warnings as $warning) {
            $warning = (string) preg_replace('/^stream_socket_enable_crypto\(\): /', '', $warning);
            if (preg_match_all('/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:(.+)$/m', $warning, $found) > 0) {
                array_push($reasons, ...$found[1]);
            } elseif (!str_starts_with($warning, 'SSL operation failed')) {
                $reasons[] = $warning;
            }
        }

        return $reasons === [] ? 'the connection was closed' : implode('; ', array_unique($reasons));
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
                $this->answered = true;

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
                    'the vcm daemon at %s:%d closed the connection before replying%s',
                    $this->host,
                    $this->port,
                    match (true) {
                        $this->buffer !== '' => ' in full (got ' . self::excerpt($this->buffer) . ')',
                        !$this->tls && !$this->answered => ' (if the daemon serves TLS, connect with tls: true)',
                        default => '',
                    },
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
                self::seconds($this->timeout),
                $doing,
            ));
        }
        $seconds = (int) floor($left);
        $ready = @stream_select($read, $write, $except, $seconds, (int) (($left - $seconds) * 1e6));

        return $ready === false ? 0 : $ready; // false: interrupted by a signal; retry until the deadline
    }

    private static function seconds(float $seconds): string
    {
        return rtrim(rtrim(sprintf('%.3f', $seconds), '0'), '.');
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
