<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * The reply to exec(): how the command ended and what it wrote (as UTF-8 text).
 */
final class ExecResult
{
    public function __construct(
        public readonly string $vmId,
        /** The command's exit status; 124 (or 137) when it ran out of its timeout. */
        public readonly int $exitStatus,
        public readonly string $stdout,
        public readonly string $stderr,
        /** The command wrote more than the daemon keeps; $stdout is its beginning. */
        public readonly bool $stdoutTruncated,
        public readonly bool $stderrTruncated,
        public readonly bool $timedOut,
        public readonly string $message,
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
            Fields::int($reply, 'exitStatus'),
            Fields::string($reply, 'stdout'),
            Fields::string($reply, 'stderr'),
            Fields::bool($reply, 'stdoutTruncated'),
            Fields::bool($reply, 'stderrTruncated'),
            Fields::bool($reply, 'timedOut'),
            Fields::optionalString($reply, 'message') ?? '',
        );
    }

    public function succeeded(): bool
    {
        return $this->exitStatus === 0;
    }
}
