<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * UNAUTHORIZED: the daemon needs a token and the client has none or a wrong one.
 */
class UnauthorizedException extends ServerException
{
}
