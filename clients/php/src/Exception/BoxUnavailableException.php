<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * BOX_UNAVAILABLE: Vagrant does not have the box and cannot add it; the message quotes Vagrant.
 */
class BoxUnavailableException extends ServerException
{
}
