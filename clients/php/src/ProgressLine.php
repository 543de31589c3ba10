<?php

declare(strict_types=1);

namespace Vcm;

/**
 * One interim line the daemon sent before a reply, when asked for progress: a line of
 * Vagrant's output, the VM it is about and the phase of the start (importing, booting,
 * configuring, provisioning).
 */
final class ProgressLine implements \Stringable
{
    public function __construct(
        public readonly string $line,
        public readonly ?string $vmId = null,
        public readonly ?string $phase = null,
    ) {
    }

    /**
     * @internal
     * @param array<string, mixed> $interim
     */
    public static function fromInterim(array $interim): self
    {
        $text = static fn (string $key): ?string => is_scalar($interim[$key] ?? null) ? (string) $interim[$key] : null;

        return new self(
            $text('line') ?? $text('progress') ?? $text('message') ?? '',
            $text('vmID'),
            $text('phase'),
        );
    }

    public function __toString(): string
    {
        return $this->line;
    }
}
