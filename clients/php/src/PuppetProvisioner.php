<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;
use Vcm\Internal\LocalFile;

/**
 * A Puppet manifest applied with `puppet apply` in each VM of a box. Exactly one of $manifest
 * and $path is set.
 */
final class PuppetProvisioner
{
    private function __construct(
        /** The manifest's text, sent with the request. */
        public readonly ?string $manifest,
        /** A manifest on the daemon's host, relative to its files directory. */
        public readonly ?string $path,
    ) {
    }

    public static function manifest(string $manifest): self
    {
        return new self($manifest, null);
    }

    /**
     * Read a manifest on this machine now and send its text.
     *
     * @throws Exception\LocalFileException if the file cannot be read or is not UTF-8 text
     */
    public static function fromLocalFile(string $localPath): self
    {
        return new self(LocalFile::read($localPath), null);
    }

    /**
     * A manifest on the daemon's host, relative to its files directory.
     */
    public static function fromDaemonPath(string $path): self
    {
        return new self(null, $path);
    }

    /**
     * @internal
     * @param array<mixed> $entry
     */
    public static function fromReply(array $entry): self
    {
        return new self(Fields::optionalString($entry, 'manifest'), Fields::optionalString($entry, 'path'));
    }

    /**
     * The request form.
     *
     * @return array<string, string>
     */
    public function toArray(): array
    {
        return $this->path !== null ? ['path' => $this->path] : ['manifest' => (string) $this->manifest];
    }
}
