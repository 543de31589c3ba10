<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Internal\Fields;

/**
 * What the daemon reports on a background operation ("operation").
 */
final class OperationInfo
{
    /**
     * @param list<string> $output the last lines of Vagrant's output
     * @param array<string, mixed>|null $reply the reply the request would have had, once ended
     */
    public function __construct(
        public readonly string $operationId,
        public readonly string $command,
        public readonly string $target,
        public readonly OperationState $state,
        public readonly string $created,
        public readonly ?string $finished,
        public readonly bool $cancellable,
        public readonly ?string $vmId,
        public readonly ?string $boxId,
        public readonly ?string $phase,
        public readonly array $output,
        public readonly ?array $reply,
    ) {
    }

    public function isDone(): bool
    {
        return $this->state !== OperationState::Running;
    }

    /**
     * @internal
     * @param array<mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        $state = Fields::string($reply, 'state');
        $final = $reply['reply'] ?? null;

        /** @var array<string, mixed>|null $final */
        $final = is_array($final) ? $final : null;

        return new self(
            Fields::string($reply, 'operationID'),
            Fields::string($reply, 'command'),
            Fields::optionalString($reply, 'target') ?? '',
            OperationState::tryFrom($state) ?? throw Fields::bad('state', 'an operation state', $state),
            Fields::string($reply, 'created'),
            Fields::optionalString($reply, 'finished'),
            ($reply['cancellable'] ?? false) === true,
            Fields::optionalString($reply, 'vmID'),
            Fields::optionalString($reply, 'boxID'),
            Fields::optionalString($reply, 'phase'),
            array_key_exists('output', $reply) ? Fields::strings($reply, 'output') : [],
            $final,
        );
    }
}
