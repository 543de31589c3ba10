<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * The reply to sshInfo(): how to ssh into a running VM from the daemon's host.
 */
final class SshInfo
{
    public function __construct(
        public readonly string $vmId,
        public readonly string $host,
        public readonly int $port,
        public readonly string $user,
        /** The private key's path on the daemon's host. */
        public readonly string $keyPath,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        return new self(
            Fields::string($reply, 'vmID'),
            Fields::string($reply, 'host'),
            Fields::int($reply, 'port'),
            Fields::string($reply, 'user'),
            Fields::string($reply, 'keyPath'),
        );
    }

    /**
     * An ssh command line that logs in, each argument shell-quoted (run it on the daemon's host).
     */
    public function command(): string
    {
        return implode(' ', array_map('escapeshellarg', [
            'ssh', '-i', $this->keyPath, '-p', (string) $this->port, "{$this->user}@{$this->host}",
        ]));
    }
}
