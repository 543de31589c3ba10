<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * CANCELLED: a background start was cancelled on request (the result of its operation).
 */
class CancelledException extends ServerException
{
}
