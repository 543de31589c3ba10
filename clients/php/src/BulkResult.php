<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * The reply to a command on several VMs: destroyBox(), destroyAll(), stopAll(), haltAll(),
 * shutdownAll(). If it failed on any VM, a ServerException is thrown instead; its
 * getCompletedVmIds() and getFailures() tell what was done and what was not.
 */
final class BulkResult
{
    /**
     * @param list<string> $vmIds the vmIDs acted on
     */
    public function __construct(
        public readonly array $vmIds,
        public readonly string $message,
        /** The box removed by destroyBox(); null for the "all" commands. */
        public readonly ?string $boxId = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        return new self(
            Fields::strings($reply, 'VMS'),
            Fields::optionalString($reply, 'message') ?? '',
            Fields::optionalString($reply, 'boxID'),
        );
    }
}
