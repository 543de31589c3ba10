<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * Connecting took longer than the connect timeout, or a reply took longer than the operation
 * timeout. The daemon keeps working on a request that timed out.
 */
class TimeoutException extends ConnectionException
{
}
