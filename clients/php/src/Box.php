<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * A box: the template VMs are started from, as returned by getBox() and listBoxes().
 */
final class Box
{
    /**
     * @param list<FileProvisioner> $files
     * @param list<PuppetProvisioner> $puppet
     * @param list<ShellProvisioner> $shell
     * @param list<string> $vmIds the VMs started from this box that still exist
     */
    public function __construct(
        public readonly string $boxId,
        /** The Vagrant box name. */
        public readonly string $box,
        public readonly array $files,
        public readonly array $puppet,
        public readonly array $shell,
        public readonly Network $network,
        /** "dynamic", or the prefix of each VM's hostname. */
        public readonly string $hostname,
        public readonly array $vmIds,
        /** CPUs each VM may use; null: the provider's default. */
        public readonly ?int $cpus = null,
        /** Memory each VM may use, in MiB; null: the provider's default. */
        public readonly ?int $memory = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $entry
     */
    public static function fromReply(array $entry): self
    {
        $network = Network::tryFrom(Fields::string($entry, 'network'));
        if ($network === null) {
            throw Fields::bad('network', "'private' or 'none'", $entry['network']);
        }
        $shell = [];
        foreach (Fields::list($entry, 'shell') as $item) {
            // The daemon replies in the long form; a bare string is an inline script.
            $shell[] = is_string($item) ? ShellProvisioner::inline($item)
                : (is_array($item) ? ShellProvisioner::fromReply($item) : throw Fields::bad('shell', 'entries', $item));
        }

        return new self(
            Fields::string($entry, 'boxID'),
            Fields::string($entry, 'box'),
            array_map(FileProvisioner::fromReply(...), Fields::objects($entry, 'files')),
            array_map(PuppetProvisioner::fromReply(...), Fields::objects($entry, 'puppet')),
            $shell,
            $network,
            Fields::string($entry, 'hostname'),
            Fields::strings($entry, 'vmIDs'),
            Fields::optionalInt($entry, 'cpus'),
            Fields::optionalInt($entry, 'memory'),
        );
    }
}
