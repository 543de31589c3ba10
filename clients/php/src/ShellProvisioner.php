<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;
use Vcm\Internal\LocalFile;

/**
 * A shell script run in each VM of a box. Exactly one of $inline and $path is set.
 * Client::createBox() also takes a plain string as an inline script.
 */
final class ShellProvisioner
{
    private function __construct(
        /** The script's text, sent with the request. */
        public readonly ?string $inline,
        /** A script on the daemon's host, relative to its files directory. */
        public readonly ?string $path,
    ) {
    }

    public static function inline(string $script): self
    {
        return new self($script, null);
    }

    /**
     * Read a script on this machine now and send its text.
     *
     * @throws Exception\LocalFileException if the file cannot be read or is not UTF-8 text
     */
    public static function fromLocalFile(string $localPath): self
    {
        return new self(LocalFile::read($localPath), null);
    }

    /**
     * A script on the daemon's host, relative to its files directory.
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
        return new self(Fields::optionalString($entry, 'inline'), Fields::optionalString($entry, 'path'));
    }

    /**
     * The request form.
     *
     * @return array<string, string>
     */
    public function toArray(): array
    {
        return $this->path !== null ? ['path' => $this->path] : ['inline' => (string) $this->inline];
    }
}
