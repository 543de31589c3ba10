<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * The reply to stopVm(), haltVm(), shutdownVm() and destroyVm().
 */
final class VmResult
{
    public function __construct(
        public readonly string $vmId,
        public readonly string $boxId,
        /** The state after a stop (VmState::Stopped); null after destroyVm(): the VM is gone. */
        public readonly ?VmState $state,
        public readonly string $message,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        $state = Fields::optionalString($reply, 'state');

        return new self(
            Fields::string($reply, 'vmID'),
            Fields::string($reply, 'boxID'),
            $state === null ? null : (VmState::tryFrom($state) ?? throw Fields::bad('state', 'a VM state', $state)),
            Fields::optionalString($reply, 'message') ?? '',
        );
    }
}
