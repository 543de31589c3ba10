<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * REQUEST_TOO_LARGE: the request is over the daemon's size limit (VCM_MAX_REQUEST_BYTES).
 */
class RequestTooLargeException extends ServerException
{
}
