<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;
use Vcm\Internal\LocalFile;

/**
 * A file copied into each VM of a box. Exactly one of $content and $source is set.
 */
final class FileProvisioner
{
    private function __construct(
        /** The path in the guest. */
        public readonly string $destination,
        /** The file's text, sent with the request. */
        public readonly ?string $content,
        /** A path on the daemon's host, relative to its files directory (VCM_FILES_ROOT). */
        public readonly ?string $source,
    ) {
    }

    /**
     * Read a file on this machine now and send its text: works with a daemon on another host.
     *
     * @throws Exception\LocalFileException if the file cannot be read or is not UTF-8 text
     */
    public static function fromLocalFile(string $localPath, string $destination): self
    {
        return new self($destination, LocalFile::read($localPath), null);
    }

    public static function withContent(string $content, string $destination): self
    {
        return new self($destination, $content, null);
    }

    /**
     * A file on the daemon's host, relative to its files directory; the daemon refuses paths
     * outside it, and every path when it has no files directory.
     */
    public static function fromDaemonPath(string $source, string $destination): self
    {
        return new self($destination, null, $source);
    }

    /**
     * @internal
     * @param array<mixed> $entry
     */
    public static function fromReply(array $entry): self
    {
        return new self(
            Fields::string($entry, 'destination'),
            Fields::optionalString($entry, 'content'),
            Fields::optionalString($entry, 'source'),
        );
    }

    /**
     * The request form.
     *
     * @return array<string, string>
     */
    public function toArray(): array
    {
        return $this->source !== null
            ? ['source' => $this->source, 'destination' => $this->destination]
            : ['content' => (string) $this->content, 'destination' => $this->destination];
    }
}
