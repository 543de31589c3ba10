<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * BOX_NOT_FOUND: no box with that boxID (or it is being removed).
 */
class BoxNotFoundException extends ServerException
{
}
