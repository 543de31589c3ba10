<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * IP_POOL_EXHAUSTED: every address of the daemon's pool is leased to a VM.
 */
class IpPoolExhaustedException extends ServerException
{
}
