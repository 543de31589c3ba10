<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * A VM, as returned by startVm(), startExistingVm(), getVm() and listVms().
 */
final class Vm
{
    public function __construct(
        public readonly string $vmId,
        public readonly string $boxId,
        /** The Vagrant box name, such as "debian/bookworm64". */
        public readonly string $box,
        /** The private address, or null for a box created with Network::None. */
        public readonly ?string $ip,
        /** The fully qualified hostname set inside the guest. */
        public readonly string $hostname,
        public readonly VmState $state,
        /** Why the VM is in the error state, or what its last failed command said. */
        public readonly ?string $detail = null,
    ) {
    }

    /**
     * @internal builds a Vm from a VM entry of a reply
     * @param array<mixed> $entry
     */
    public static function fromReply(array $entry): self
    {
        $state = VmState::tryFrom(Fields::string($entry, 'state'));
        if ($state === null) {
            throw Fields::bad('state', 'a VM state', $entry['state']);
        }

        return new self(
            Fields::string($entry, 'vmID'),
            Fields::string($entry, 'boxID'),
            Fields::string($entry, 'box'),
            Fields::nullableString($entry, 'IP'),
            Fields::string($entry, 'hostname'),
            $state,
            Fields::optionalString($entry, 'detail'),
        );
    }

    public function isRunning(): bool
    {
        return $this->state === VmState::Running;
    }
}
