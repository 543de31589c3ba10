<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * VM_NOT_FOUND: no VM with that vmID.
 */
class VmNotFoundException extends ServerException
{
}
