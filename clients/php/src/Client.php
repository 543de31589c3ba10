<?php

declare(strict_types=1);

namespace Vcm;

use Vcm\Exception\BoxNotFoundException;
use Vcm\Exception\LocalFileException;
use Vcm\Exception\ProtocolException;
use Vcm\Exception\ServerException;
use Vcm\Exception\VmNotFoundException;
use Vcm\Internal\Connection;
use Vcm\Internal\Fields;

/**
 * A client of the vcm daemon (docs/protocol.md). It keeps one TCP connection, opened on the
 * first call and reused by the following ones; calls are synchronous, one reply at a time.
 * With tls: true, that connection is TLS, for a daemon started with VCM_TLS_CERT.
 *
 * Every method throws:
 * - a subclass of ServerException for an error reply, one per error code;
 * - ConnectionException (TimeoutException when a timeout ran out) when the daemon cannot be
 *   reached or the connection breaks;
 * - ProtocolException when the reply is not a valid reply.
 * All of them extend Vcm\Exception\VcmException.
 */
final class Client
{
    public const DEFAULT_HOST = '127.0.0.1';
    public const DEFAULT_PORT = 12121;

    private readonly Connection $connection;
    private int $nextId = 1;
    private readonly float $timeout;
    /** @var (\Closure(ProgressLine): void)|null where the progress lines of the current call go */
    private ?\Closure $callProgress = null;

    /**
     * @param string|null $token sent in every request, for a daemon started with VCM_AUTH_TOKEN
     * @param float $connectTimeout seconds to wait for the TCP connection and any TLS handshake
     * @param float $timeout seconds to wait for each reply; starting a VM can take many minutes
     * @param bool $sendIds send a request "id" and check that the reply echoes it
     * @param int $maxReplyBytes the longest reply line accepted
     * @param (\Closure(string): void)|null $onProgress called with the text of each interim line (one
     *        without "error") that the daemon sends before a final reply; it sends them only to
     *        requests that ask (see the $progress parameter of startVm())
     * @param bool $tls speak TLS; the daemon's certificate must name $host and chain to a trusted
     *        CA, else calls throw ConnectionException ("TLS verification failed ...")
     * @param string|null $tlsCaFile a PEM file of the CAs to trust instead of the system's (for a
     *        self-signed daemon certificate, the certificate itself); needs $tls
     * @throws LocalFileException if $tlsCaFile cannot be read or holds no certificate
     */
    public function __construct(
        string $host = self::DEFAULT_HOST,
        int $port = self::DEFAULT_PORT,
        private readonly ?string $token = null,
        float $connectTimeout = 10.0,
        float $timeout = 1800.0,
        private readonly bool $sendIds = true,
        int $maxReplyBytes = 64 * 1024 * 1024,
        private readonly ?\Closure $onProgress = null,
        bool $tls = false,
        ?string $tlsCaFile = null,
    ) {
        if ($port < 1 || $port > 65535) {
            throw new \InvalidArgumentException("port must be 1 to 65535, not $port");
        }
        if ($connectTimeout <= 0 || $timeout <= 0) {
            throw new \InvalidArgumentException('timeouts must be positive');
        }
        if ($tls && !extension_loaded('openssl')) {
            throw new \InvalidArgumentException('tls needs PHP\'s openssl extension');
        }
        if ($tlsCaFile !== null) {
            self::checkCaFile($tls, $tlsCaFile);
        }
        $this->timeout = $timeout;
        $this->connection = new Connection(
            $host,
            $port,
            $connectTimeout,
            $timeout,
            $maxReplyBytes,
            $tls,
            $tlsCaFile,
        );
    }

    /**
     * create: define a box, the template of VMs. Returns its boxID, such as "debian_bookworm64_3".
     *
     * @param string $box a Vagrant box name, such as "debian/bookworm64"; the daemon adds it to
     *                    Vagrant if needed (BoxUnavailableException if it cannot)
     * @param list<FileProvisioner> $files files copied into each VM
     * @param list<ShellProvisioner|string> $shell shell provisioners; a string is an inline script
     * @param list<PuppetProvisioner> $puppet Puppet manifests applied in each VM
     * @param Network|string $network Network::Private (an IP from the daemon's pool) or Network::None
     * @param string $hostname "dynamic" (derived from the vmID) or a DNS label, the hostname prefix
     * @param int|null $cpus CPUs each VM may use (null: the provider's default); the daemon refuses
     *                       more than its host has
     * @param int|null $memory memory each VM may use, in MiB (null: the provider's default)
     */
    public function createBox(
        string $box,
        array $files = [],
        array $shell = [],
        array $puppet = [],
        Network|string $network = Network::Private,
        string $hostname = 'dynamic',
        ?int $cpus = null,
        ?int $memory = null,
    ): string {
        $sizes = array_filter(['cpus' => $cpus, 'memory' => $memory], static fn (?int $v): bool => $v !== null);
        $reply = $this->call([
            'command' => 'create',
            'box' => $box,
            'files' => array_map(
                static fn (mixed $file): array => self::expect($file, FileProvisioner::class, 'files')->toArray(),
                array_values($files),
            ),
            'puppet' => array_map(
                static fn (mixed $item): array => self::expect($item, PuppetProvisioner::class, 'puppet')->toArray(),
                array_values($puppet),
            ),
            'shell' => array_map(
                static fn (mixed $item): array => is_string($item)
                    ? ['inline' => $item]
                    : self::expect($item, ShellProvisioner::class, 'shell')->toArray(),
                array_values($shell),
            ),
            'network' => $network instanceof Network ? $network->value : $network,
            'hostname' => $hostname,
        ] + $sizes);

        return Fields::string($reply, 'boxID');
    }

    /**
     * start: boot a new VM from a box. Returns once it is up and provisioned, which can take
     * minutes.
     *
     * @param (\Closure(ProgressLine): void)|null $progress called with each line of Vagrant's
     *        output as it comes (the request then asks the daemon for progress)
     */
    public function startVm(string $boxId, ?\Closure $progress = null): Vm
    {
        return Vm::fromReply($this->callWithProgress(['command' => 'start', 'boxID' => $boxId], $progress));
    }

    /**
     * start with a vmID: boot an existing stopped VM again. It keeps its IP and hostname; its
     * provisioners do not run again. A running VM is left as it is.
     *
     * @param (\Closure(ProgressLine): void)|null $progress as for startVm()
     */
    public function startExistingVm(string $vmId, ?\Closure $progress = null): Vm
    {
        return Vm::fromReply($this->callWithProgress(['command' => 'start', 'vmID' => $vmId], $progress));
    }

    /**
     * start in the background: returns at once; the operation's result() is the Vm.
     *
     * @return Operation<Vm>
     */
    public function startVmAsync(string $boxId): Operation
    {
        return $this->submit(['command' => 'start', 'boxID' => $boxId], Vm::fromReply(...));
    }

    /**
     * @return Operation<Vm>
     */
    public function startExistingVmAsync(string $vmId): Operation
    {
        return $this->submit(['command' => 'start', 'vmID' => $vmId], Vm::fromReply(...));
    }

    /**
     * @return Operation<VmResult>
     */
    public function stopVmAsync(string $vmId): Operation
    {
        return $this->submit(['command' => 'stop', 'vmID' => $vmId], VmResult::fromReply(...));
    }

    /**
     * @return Operation<VmResult>
     */
    public function destroyVmAsync(string $vmId): Operation
    {
        return $this->submit(['command' => 'destroy', 'vmID' => $vmId], VmResult::fromReply(...));
    }

    /**
     * @return Operation<BulkResult>
     */
    public function destroyBoxAsync(string $boxId): Operation
    {
        return $this->submit(['command' => 'destroy', 'boxID' => $boxId], BulkResult::fromReply(...));
    }

    /**
     * A handle on a background operation by its operationID (OperationNotFoundException if the
     * daemon has none); its result() is the reply as an array.
     *
     * @return Operation<array<string, mixed>>
     */
    public function operation(string $operationId): Operation
    {
        $ask = $this->asker($operationId);

        return new Operation($ask, $this->timeout, $ask([]), static fn (array $reply): array => $reply);
    }

    /**
     * stop: shut a VM down. It keeps its vmID, IP and hostname until destroyed.
     */
    public function stopVm(string $vmId): VmResult
    {
        return VmResult::fromReply($this->call(['command' => 'stop', 'vmID' => $vmId]));
    }

    /**
     * halt: the same as stopVm(), sent as the seed protocol's "halt".
     */
    public function haltVm(string $vmId): VmResult
    {
        return VmResult::fromReply($this->call(['command' => 'halt', 'vmID' => $vmId]));
    }

    /**
     * shutdown: the same as stopVm(), sent as the seed protocol's "shutdown".
     */
    public function shutdownVm(string $vmId): VmResult
    {
        return VmResult::fromReply($this->call(['command' => 'shutdown', 'vmID' => $vmId]));
    }

    /**
     * suspend: pause a running VM. UnsupportedException if its provider cannot (docker, lxc).
     */
    public function suspendVm(string $vmId): Vm
    {
        return Vm::fromReply($this->call(['command' => 'suspend', 'vmID' => $vmId]));
    }

    /**
     * resume: run a suspended VM again. A running VM is left as it is.
     */
    public function resumeVm(string $vmId): Vm
    {
        return Vm::fromReply($this->call(['command' => 'resume', 'vmID' => $vmId]));
    }

    /**
     * reload: restart a VM (running, stopped or suspended), applying its definition again.
     * Provisioners do not run.
     */
    public function reloadVm(string $vmId): Vm
    {
        return Vm::fromReply($this->call(['command' => 'reload', 'vmID' => $vmId]));
    }

    /**
     * provision: run the provisioners of a running VM again.
     */
    public function provisionVm(string $vmId): Vm
    {
        return Vm::fromReply($this->call(['command' => 'provision', 'vmID' => $vmId]));
    }

    /**
     * snapshot save. UnsupportedException if the provider has no snapshots (docker, lxc).
     */
    public function saveSnapshot(string $vmId, string $name): SnapshotResult
    {
        return $this->snapshot('save', $vmId, $name);
    }

    /**
     * snapshot restore: put the VM back as it was saved; provisioners do not run.
     */
    public function restoreSnapshot(string $vmId, string $name): SnapshotResult
    {
        return $this->snapshot('restore', $vmId, $name);
    }

    /**
     * snapshot delete.
     */
    public function deleteSnapshot(string $vmId, string $name): SnapshotResult
    {
        return $this->snapshot('delete', $vmId, $name);
    }

    /**
     * snapshot list: the names of the VM's snapshots.
     *
     * @return list<string>
     */
    public function listSnapshots(string $vmId): array
    {
        $reply = $this->call(['command' => 'snapshot', 'subcommand' => 'list', 'vmID' => $vmId]);

        return Fields::strings($reply, 'snapshots');
    }

    /**
     * exec: run a program in a running VM, as its ssh user, and wait for it to end. $argv[0] is
     * a program on the guest's PATH; use ['sh', '-c', $script] for shell syntax. A non-zero exit
     * status is a result, not an exception.
     *
     * @param list<string> $argv
     * @param int|null $timeout seconds before the command is ended (null: the daemon's 60)
     */
    public function exec(string $vmId, array $argv, ?int $timeout = null): ExecResult
    {
        $request = ['command' => 'exec', 'vmID' => $vmId, 'argv' => array_values($argv)];
        if ($timeout !== null) {
            $request['timeout'] = $timeout;
        }

        return ExecResult::fromReply($this->call($request));
    }

    /**
     * ssh-info: host, port, user and key path to ssh into a running VM from the daemon's host.
     */
    public function sshInfo(string $vmId): SshInfo
    {
        return SshInfo::fromReply($this->call(['command' => 'ssh-info', 'vmID' => $vmId]));
    }

    /**
     * destroy: remove a VM for good and free its IP.
     */
    public function destroyVm(string $vmId): VmResult
    {
        return VmResult::fromReply($this->call(['command' => 'destroy', 'vmID' => $vmId]));
    }

    /**
     * destroy with a boxID: destroy every VM of the box, then remove the box.
     */
    public function destroyBox(string $boxId): BulkResult
    {
        return BulkResult::fromReply($this->call(['command' => 'destroy', 'boxID' => $boxId]));
    }

    /**
     * destroy all: destroy every VM. Boxes stay.
     */
    public function destroyAll(): BulkResult
    {
        return $this->all('destroy');
    }

    /**
     * stop all: shut every VM down.
     */
    public function stopAll(): BulkResult
    {
        return $this->all('stop');
    }

    /**
     * halt all: the same as stopAll(), sent as the seed protocol's "halt".
     */
    public function haltAll(): BulkResult
    {
        return $this->all('halt');
    }

    /**
     * shutdown all: the same as stopAll(), sent as the seed protocol's "shutdown".
     */
    public function shutdownAll(): BulkResult
    {
        return $this->all('shutdown');
    }

    /**
     * info "VM all": every VM that exists, stopped ones included.
     *
     * @return list<Vm>
     */
    public function listVms(): array
    {
        return $this->vms($this->info('VM all'));
    }

    /**
     * info "VM <vmID>": one VM, in its current state (such as VmState::Starting).
     */
    public function getVm(string $vmId): Vm
    {
        if (trim($vmId) === 'all') {
            // "VM all" would list every VM; no vmID is ever "all".
            throw new VmNotFoundException('VM_NOT_FOUND', "no VM with vmID 'all'");
        }
        return $this->single($this->vms($this->info("VM $vmId")), 'VMS');
    }

    /**
     * info "box all": every box.
     *
     * @return list<Box>
     */
    public function listBoxes(): array
    {
        return $this->boxes($this->info('box all'));
    }

    /**
     * info "box <boxID>": one box.
     */
    public function getBox(string $boxId): Box
    {
        if (trim($boxId) === 'all') {
            throw new BoxNotFoundException('BOX_NOT_FOUND', "no box with boxID 'all'");
        }
        return $this->single($this->boxes($this->info("box $boxId")), 'boxes');
    }

    /**
     * Send one request given as an array and return the decoded success reply. The client adds
     * "token" and "id" (when enabled) and checks the echoed id. For requests the methods above
     * do not cover.
     *
     * @param array<string, mixed> $request
     * @return array<string, mixed>
     * @throws ServerException for an error reply
     */
    public function call(array $request): array
    {
        if ($this->token !== null) {
            $request['token'] = $this->token;
        }
        $id = null;
        if ($this->sendIds) {
            $id = $this->nextId++;
            $request['id'] = $id;
        }
        $json = json_encode($request, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);

        return $this->exchange($json . "\n", $id);
    }

    /**
     * Send one request exactly as given, such as an example copied from the protocol's
     * documentation (it may span lines and contain tabs). It must hold exactly one JSON object;
     * nothing is added to it, not even the token. Returns the decoded success reply.
     *
     * @return array<string, mixed>
     * @throws ServerException for an error reply (InvalidJsonException if it is not JSON)
     */
    public function rawRequest(string $json): array
    {
        return $this->exchange(rtrim($json, " \t\r\n") . "\n", null);
    }

    /**
     * Close the connection now; the next call opens a new one. Also done on destruction.
     */
    public function close(): void
    {
        $this->connection->close();
    }

    /**
     * @param array<string, mixed> $request
     * @param (\Closure(ProgressLine): void)|null $progress
     * @return array<string, mixed>
     */
    private function callWithProgress(array $request, ?\Closure $progress): array
    {
        if ($progress === null) {
            return $this->call($request);
        }
        $request['progress'] = true;
        $this->callProgress = $progress;
        try {
            return $this->call($request);
        } finally {
            $this->callProgress = null;
        }
    }

    /**
     * @template T
     * @param array<string, mixed> $request
     * @param \Closure(array<string, mixed>): T $parse
     * @return Operation<T>
     */
    private function submit(array $request, \Closure $parse): Operation
    {
        $info = OperationInfo::fromReply($this->call($request + ['async' => true]));

        return new Operation($this->asker($info->operationId), $this->timeout, $info, $parse);
    }

    /**
     * @return \Closure(array<string, mixed>): OperationInfo
     */
    private function asker(string $operationId): \Closure
    {
        return fn (array $fields): OperationInfo => OperationInfo::fromReply(
            $this->call(['command' => 'operation', 'operationID' => $operationId] + $fields)
        );
    }

    /**
     * @return array<string, mixed>
     */
    private function exchange(string $payload, ?int $id): array
    {
        $this->connection->send($payload);
        while (true) {
            $reply = $this->decode($this->connection->readLine());
            if ($id !== null && array_key_exists('id', $reply) && $reply['id'] !== $id) {
                throw $this->protocolError(sprintf(
                    'the reply has id %s, the request had id %d; the connection was dropped',
                    json_encode($reply['id']),
                    $id,
                ));
            }
            if (!array_key_exists('error', $reply)) {
                // Not a final reply: a progress line, sent only to a request that asked for them.
                $line = ProgressLine::fromInterim($reply);
                if ($this->onProgress !== null) {
                    ($this->onProgress)($line->line);
                }
                if ($this->callProgress !== null) {
                    ($this->callProgress)($line);
                }
                continue;
            }
            if (!is_bool($reply['error'])) {
                throw $this->protocolError(
                    'the vcm daemon sent "error": ' . json_encode($reply['error']) . '; it must be a JSON boolean'
                );
            }
            if ($id !== null && !$this->echoes($reply, $id)) {
                throw $this->protocolError("the reply has no id, the request had id $id; the connection was dropped");
            }
            if ($reply['error']) {
                throw ServerException::fromReply($reply);
            }

            return $reply;
        }
    }

    /**
     * @return array<string, mixed>
     */
    private function decode(string $line): array
    {
        try {
            $reply = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $error) {
            throw $this->protocolError("the vcm daemon sent a reply that is not JSON: {$error->getMessage()}");
        }
        if (!is_array($reply) || ($reply !== [] && array_is_list($reply))) {
            throw $this->protocolError('the vcm daemon sent a reply that is not a JSON object');
        }

        /** @var array<string, mixed> $reply */
        return $reply;
    }

    private function protocolError(string $message): ProtocolException
    {
        $this->connection->close();

        return new ProtocolException($message);
    }

    /**
     * The daemon echoes the id of every request it could parse; it cannot for a request too
     * large to read or not JSON.
     *
     * @param array<mixed> $reply
     */
    private function echoes(array $reply, int $id): bool
    {
        if (array_key_exists('id', $reply)) {
            return $reply['id'] === $id;
        }

        return $reply['error'] === true
            && in_array($reply['code'] ?? null, ['REQUEST_TOO_LARGE', 'INVALID_JSON'], true);
    }

    private function snapshot(string $verb, string $vmId, string $name): SnapshotResult
    {
        return SnapshotResult::fromReply($this->call([
            'command' => 'snapshot',
            'subcommand' => $verb,
            'vmID' => $vmId,
            'name' => $name,
        ]));
    }

    private function all(string $command): BulkResult
    {
        return BulkResult::fromReply($this->call(['command' => $command, 'subcommand' => 'all']));
    }

    /**
     * @return array<string, mixed>
     */
    private function info(string $subcommand): array
    {
        return $this->call(['command' => 'info', 'subcommand' => $subcommand]);
    }

    /**
     * @param array<string, mixed> $reply
     * @return list<Vm>
     */
    private function vms(array $reply): array
    {
        return array_map(Vm::fromReply(...), Fields::objects($reply, 'VMS'));
    }

    /**
     * @param array<string, mixed> $reply
     * @return list<Box>
     */
    private function boxes(array $reply): array
    {
        return array_map(Box::fromReply(...), Fields::objects($reply, 'boxes'));
    }

    /**
     * @template T
     * @param list<T> $items
     * @return T
     */
    private function single(array $items, string $key): mixed
    {
        if (count($items) !== 1) {
            throw new ProtocolException(
                sprintf("malformed reply from the daemon: '%s' should hold one entry, not %d", $key, count($items))
            );
        }

        return $items[0];
    }

    /**
     * @template T of object
     * @param class-string<T> $class
     * @return T
     */
    private static function expect(mixed $value, string $class, string $field): object
    {
        if (!$value instanceof $class) {
            throw new \InvalidArgumentException(sprintf(
                '%s entries must be %s objects, not %s',
                $field,
                $class,
                get_debug_type($value),
            ));
        }

        return $value;
    }

    private static function checkCaFile(bool $tls, string $file): void
    {
        if (!$tls) {
            throw new \InvalidArgumentException('tlsCaFile needs tls: true');
        }
        $pem = is_file($file) && is_readable($file) ? @file_get_contents($file) : false;
        if ($pem === false) {
            throw new LocalFileException("cannot read the TLS CA file '$file'");
        }
        if (@openssl_x509_read($pem) === false) {
            throw new LocalFileException("the TLS CA file '$file' holds no PEM certificate");
        }
    }
}
