<?php

declare(strict_types=1);

namespace Vcm;

/**
 * The network of a box's VMs.
 */
enum Network: string
{
    /** A static address from the daemon's pool on a host-only network. */
    case Private = 'private';
    /** No private network: the VM's IP is null. */
    case None = 'none';
}
