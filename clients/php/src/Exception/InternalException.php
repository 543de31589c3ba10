<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * INTERNAL: any other failure of the daemon, such as its state file not being writable.
 */
class InternalException extends ServerException
{
}
