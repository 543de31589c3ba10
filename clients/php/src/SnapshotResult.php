<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * The reply to saveSnapshot(), restoreSnapshot() and deleteSnapshot().
 */
final class SnapshotResult
{
    public function __construct(
        public readonly string $vmId,
        public readonly string $boxId,
        public readonly string $name,
        /** The VM's state afterwards: a restore may start or stop it. */
        public readonly VmState $state,
        public readonly string $message,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        $state = Fields::string($reply, 'state');

        return new self(
            Fields::string($reply, 'vmID'),
            Fields::string($reply, 'boxID'),
            Fields::string($reply, 'name'),
            VmState::tryFrom($state) ?? throw Fields::bad('state', 'a VM state', $state),
            Fields::optionalString($reply, 'message') ?? '',
        );
    }
}
