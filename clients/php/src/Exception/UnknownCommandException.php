<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * UNKNOWN_COMMAND: the daemon does not know the command.
 */
class UnknownCommandException extends ServerException
{
}
