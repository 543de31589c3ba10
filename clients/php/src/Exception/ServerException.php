<?php

declare(strict_types=1);

namespace Vcm\Exception;

use Vcm\BulkFailure;

/**
 * The daemon replied with "error": true. Every error code has its own subclass; a code this
 * library does not know yet is thrown as a plain ServerException.
 *
 * Match on the class or on getErrorCode(); the message is for people and may change.
 */
class ServerException extends VcmException
{
    private const CLASSES = [
        'INVALID_JSON' => InvalidJsonException::class,
        'INVALID_REQUEST' => InvalidRequestException::class,
        'UNKNOWN_COMMAND' => UnknownCommandException::class,
        'REQUEST_TOO_LARGE' => RequestTooLargeException::class,
        'UNAUTHORIZED' => UnauthorizedException::class,
        'BOX_NOT_FOUND' => BoxNotFoundException::class,
        'VM_NOT_FOUND' => VmNotFoundException::class,
        'BOX_UNAVAILABLE' => BoxUnavailableException::class,
        'IP_POOL_EXHAUSTED' => IpPoolExhaustedException::class,
        'VAGRANT_ERROR' => VagrantErrorException::class,
        'UNSUPPORTED' => UnsupportedException::class,
        'INTERNAL' => InternalException::class,
        'CANCELLED' => CancelledException::class,
        'OPERATION_NOT_FOUND' => OperationNotFoundException::class,
    ];

    /** @var array<string, mixed> */
    private readonly array $reply;

    /**
     * @param array<string, mixed> $reply the reply; by default one holding the code and message
     */
    final public function __construct(
        private readonly string $errorCode,
        string $message,
        array $reply = [],
    ) {
        parent::__construct($message);
        $this->reply = $reply !== [] ? $reply : ['error' => true, 'code' => $errorCode, 'message' => $message];
    }

    /**
     * The exception for an error reply: the subclass registered for its code.
     *
     * @param array<string, mixed> $reply
     */
    public static function fromReply(array $reply): self
    {
        $code = is_string($reply['code'] ?? null) ? $reply['code'] : 'INTERNAL';
        $message = is_string($reply['message'] ?? null) ? $reply['message'] : "the daemon replied $code";
        $class = self::CLASSES[$code] ?? self::class;

        return new $class($code, $message, $reply);
    }

    /**
     * The class thrown for each error code of the protocol.
     *
     * @return array<string, class-string<ServerException>>
     */
    public static function classesByCode(): array
    {
        return self::CLASSES;
    }

    /**
     * The protocol's error code, such as "VM_NOT_FOUND".
     */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    /**
     * The decoded reply as the daemon sent it.
     *
     * @return array<string, mixed>
     */
    public function getReply(): array
    {
        return $this->reply;
    }

    /**
     * For a command on several VMs (destroyAll(), destroyBox(), ...) that partly failed:
     * the vmIDs it did act on.
     *
     * @return list<string>
     */
    public function getCompletedVmIds(): array
    {
        $vms = $this->reply['VMS'] ?? [];

        return is_array($vms) ? array_values(array_filter($vms, 'is_string')) : [];
    }

    /**
     * For a command on several VMs that partly failed: the VMs it failed on, and why.
     *
     * @return list<BulkFailure>
     */
    public function getFailures(): array
    {
        $failed = $this->reply['failed'] ?? [];
        if (!is_array($failed)) {
            return [];
        }
        $failures = [];
        foreach ($failed as $entry) {
            if (is_array($entry) && is_string($entry['vmID'] ?? null)) {
                $failures[] = new BulkFailure(
                    $entry['vmID'],
                    is_string($entry['code'] ?? null) ? $entry['code'] : 'INTERNAL',
                    is_string($entry['message'] ?? null) ? $entry['message'] : '',
                );
            }
        }

        return $failures;
    }
}
