<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * UNSUPPORTED: the daemon's provider cannot do this at all (say, snapshots with docker or lxc);
 * the message names the provider. Nothing changed.
 */
class UnsupportedException extends ServerException
{
}
