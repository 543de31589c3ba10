<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Exception\ServerException;
use Vcm\Exception\TimeoutException;

/**
 * A command the daemon runs in the background (Client::startVmAsync(), ...). info() is what was
 * last heard of it; wait() blocks until it ends, cancel() asks the daemon to stop it (a start
 * only: InvalidRequestException otherwise), result() returns what the command would have
 * returned, or throws its error (CancelledException if it was cancelled).
 *
 * @template T
 */
final class Operation
{
    private const MAX_WAIT = 3600.0;

    /**
     * @param \Closure(array<string, mixed>): OperationInfo $ask sends an "operation" request
     * @param \Closure(array<string, mixed>): T $parse reads the final reply into the result
     */
    public function __construct(
        private readonly \Closure $ask,
        private readonly float $callTimeout,
        private OperationInfo $info,
        private readonly \Closure $parse,
    ) {
    }

    public function id(): string
    {
        return $this->info->operationId;
    }

    public function info(): OperationInfo
    {
        return $this->info;
    }

    public function refresh(): OperationInfo
    {
        return $this->info = ($this->ask)([]);
    }

    /**
     * Wait until the operation has ended, or $timeout seconds (null: as long as it takes).
     */
    public function wait(?float $timeout = null): OperationInfo
    {
        $deadline = $timeout === null ? null : microtime(true) + $timeout;
        while (!$this->info->isDone()) {
            $left = $deadline === null ? self::MAX_WAIT : $deadline - microtime(true);
            if ($left <= 0) {
                break;
            }
            $step = min($left, self::MAX_WAIT, max($this->callTimeout * 0.8, 0.1));
            $this->info = ($this->ask)(['wait' => round($step, 3)]);
        }

        return $this->info;
    }

    public function cancel(): OperationInfo
    {
        return $this->info = ($this->ask)(['cancel' => true]);
    }

    /**
     * @return T
     * @throws ServerException the error the command ended with
     * @throws TimeoutException if it has not ended within $timeout seconds
     */
    public function result(?float $timeout = null): mixed
    {
        $info = $this->wait($timeout);
        if (!$info->isDone() || $info->reply === null) {
            throw new TimeoutException(sprintf(
                'operation %s (%s) is still %s',
                $info->operationId,
                $info->command,
                $info->state->value,
            ));
        }
        if ($info->reply['error'] ?? false) {
            throw ServerException::fromReply($info->reply);
        }

        return ($this->parse)($info->reply);
    }
}
