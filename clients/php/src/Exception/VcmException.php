<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * The base of every exception this library throws on purpose.
 */
abstract class VcmException extends \RuntimeException
{
}
