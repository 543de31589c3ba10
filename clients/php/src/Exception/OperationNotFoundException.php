<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * OPERATION_NOT_FOUND: no operation with that operationID (the daemon keeps a bounded history).
 */
class OperationNotFoundException extends ServerException
{
}
