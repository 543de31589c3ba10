<?php

declare(strict_types=1);

namespace Vcm;

/**
 * The state of a background operation. Interrupted: the daemon stopped while it ran.
 */
enum OperationState: string
{
    case Running = 'running';
    case Succeeded = 'succeeded';
    case Failed = 'failed';
    case Cancelled = 'cancelled';
    case Interrupted = 'interrupted';
}
