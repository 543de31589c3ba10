<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * The daemon could not be reached, or the connection broke before a reply arrived.
 *
 * When this is thrown after a request was sent, the daemon may still carry it out: check with
 * getVm() or listVms() before repeating a start. The client drops the broken connection and
 * opens a new one on its next call.
 */
class ConnectionException extends VcmException
{
}
