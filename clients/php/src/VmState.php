<?php

declare(strict_types=1);

namespace Vcm;

/**
 * The state of a VM as the daemon reports it.
 */
enum VmState: string
{
    case Starting = 'starting';
    case Running = 'running';
    case Stopping = 'stopping';
    case Stopped = 'stopped';
    case Destroying = 'destroying';
    case Error = 'error';
    case Suspending = 'suspending';
    case Suspended = 'suspended';
    case Resuming = 'resuming';
    case Reloading = 'reloading';
    case Provisioning = 'provisioning';
}
