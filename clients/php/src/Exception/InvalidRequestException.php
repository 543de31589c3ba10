<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * INVALID_REQUEST: missing, unknown or mistyped fields, or values the daemon refuses (a bad box
 * name, a hostname that is not a DNS label, a daemon-side path outside its files directory).
 */
class InvalidRequestException extends ServerException
{
}
