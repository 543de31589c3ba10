<?php

declare(strict_types=1);

namespace Vcm;

/**
 * One VM a command on several VMs failed on (see ServerException::getFailures()).
 */
final class BulkFailure
{
    public function __construct(
        public readonly string $vmId,
        /** The protocol's error code, such as "VAGRANT_ERROR". */
        public readonly string $code,
        public readonly string $message,
    ) {
    }
}
