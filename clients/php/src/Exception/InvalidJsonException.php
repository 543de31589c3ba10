<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * INVALID_JSON: the bytes sent were not a JSON object (see Client::rawRequest()).
 */
class InvalidJsonException extends ServerException
{
}
