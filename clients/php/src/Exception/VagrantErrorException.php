<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * VAGRANT_ERROR: Vagrant failed; the message quotes what it said.
 */
class VagrantErrorException extends ServerException
{
}
