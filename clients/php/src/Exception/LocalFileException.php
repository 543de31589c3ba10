<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * A local file given to a provisioner could not be read, or is not UTF-8 text.
 */
class LocalFileException extends VcmException
{
}
