<?php

declare(strict_types=1);

namespace Vcm\Exception;

/**
 * The daemon sent something that is not a valid reply: not JSON, too long, missing fields,
 * or an "id" that does not match the request. The client drops the connection.
 */
class ProtocolException extends VcmException
{
}
