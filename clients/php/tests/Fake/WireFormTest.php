<?php

declare(strict_types=1);

namespace Vcm\Tests\Fake;

use PHPUnit\Framework\TestCase;
use Vcm\Box;
use Vcm\BulkResult;
use Vcm\Client;
use Vcm\Exception\ProtocolException;
use Vcm\ExecResult;
use Vcm\FileProvisioner;
use Vcm\Network;
use Vcm\PuppetProvisioner;
use Vcm\ShellProvisioner;
use Vcm\SnapshotResult;
use Vcm\SshInfo;
use Vcm\Tests\Support\FakeServer;
use Vcm\Vm;
use Vcm\VmResult;
use Vcm\VmState;

/**
 * The exact request each method sends, and the value it makes of the reply.
 */
final class WireFormTest extends TestCase
{
    private const VM = [
        'vmID' => 'web_3_1',
        'boxID' => 'web_3',
        'box' => 'debian/bookworm64',
        'IP' => '192.168.33.2',
        'hostname' => 'web-3-1.example.com',
        'state' => 'running',
    ];

    private const BOX = [
        'boxID' => 'web_3',
        'box' => 'debian/bookworm64',
        'files' => [['content' => 'hi', 'destination' => '/etc/motd'], ['source' => 'a.conf', 'destination' => '/a']],
        'puppet' => [['manifest' => 'notify {}'], ['path' => 'site.pp']],
        'shell' => [['inline' => 'echo hi'], ['path' => 'setup.sh']],
        'network' => 'none',
        'hostname' => 'web',
        'vmIDs' => ['web_3_1'],
    ];

    /**
     * @return iterable<string, array{callable(Client): mixed, array<string, mixed>, array<string, mixed>, mixed}>
     */
    public static function methods(): iterable
    {
        $vm = new Vm('web_3_1', 'web_3', 'debian/bookworm64', '192.168.33.2', 'web-3-1.example.com', VmState::Running);
        $stopped = ['vmID' => 'web_3_1', 'boxID' => 'web_3', 'state' => 'stopped', 'message' => 'shutdown VM web_3_1'];
        $all = ['VMS' => ['web_3_1', 'web_3_2'], 'message' => 'destroyed 2 VMs'];

        yield 'createBox with defaults' => [
            static fn (Client $c) => $c->createBox('debian/bookworm64'),
            ['boxID' => 'debian_bookworm64_1'],
            [
                'command' => 'create',
                'box' => 'debian/bookworm64',
                'files' => [],
                'puppet' => [],
                'shell' => [],
                'network' => 'private',
                'hostname' => 'dynamic',
            ],
            'debian_bookworm64_1',
        ];
        yield 'createBox with everything' => [
            static fn (Client $c) => $c->createBox(
                'debian/bookworm64',
                files: [
                    FileProvisioner::withContent('hi', '/etc/motd'),
                    FileProvisioner::fromDaemonPath('a.conf', '/a'),
                ],
                shell: ['echo one', ShellProvisioner::inline('echo two'), ShellProvisioner::fromDaemonPath('setup.sh')],
                puppet: [PuppetProvisioner::manifest('notify {}'), PuppetProvisioner::fromDaemonPath('site.pp')],
                network: Network::None,
                hostname: 'web',
            ),
            ['boxID' => 'debian_bookworm64_2'],
            [
                'command' => 'create',
                'box' => 'debian/bookworm64',
                'files' => [
                    ['content' => 'hi', 'destination' => '/etc/motd'],
                    ['source' => 'a.conf', 'destination' => '/a'],
                ],
                'puppet' => [['manifest' => 'notify {}'], ['path' => 'site.pp']],
                'shell' => [['inline' => 'echo one'], ['inline' => 'echo two'], ['path' => 'setup.sh']],
                'network' => 'none',
                'hostname' => 'web',
            ],
            'debian_bookworm64_2',
        ];
        yield 'startVm' => [
            static fn (Client $c) => $c->startVm('web_3'),
            self::VM + ['message' => 'started'],
            ['command' => 'start', 'boxID' => 'web_3'],
            $vm,
        ];
        yield 'startExistingVm' => [
            static fn (Client $c) => $c->startExistingVm('web_3_1'),
            self::VM + ['message' => 'started'],
            ['command' => 'start', 'vmID' => 'web_3_1'],
            $vm,
        ];
        foreach (['stop', 'halt', 'shutdown'] as $verb) {
            yield "{$verb}Vm" => [
                static fn (Client $c) => $c->{"{$verb}Vm"}('web_3_1'),
                $stopped,
                ['command' => $verb, 'vmID' => 'web_3_1'],
                new VmResult('web_3_1', 'web_3', VmState::Stopped, 'shutdown VM web_3_1'),
            ];
        }
        yield 'destroyVm' => [
            static fn (Client $c) => $c->destroyVm('web_3_1'),
            ['vmID' => 'web_3_1', 'boxID' => 'web_3', 'message' => 'destroyed VM web_3_1 successfully'],
            ['command' => 'destroy', 'vmID' => 'web_3_1'],
            new VmResult('web_3_1', 'web_3', null, 'destroyed VM web_3_1 successfully'),
        ];
        yield 'destroyBox' => [
            static fn (Client $c) => $c->destroyBox('web_3'),
            ['boxID' => 'web_3'] + $all,
            ['command' => 'destroy', 'boxID' => 'web_3'],
            new BulkResult(['web_3_1', 'web_3_2'], 'destroyed 2 VMs', 'web_3'),
        ];
        foreach (['destroy', 'stop', 'halt', 'shutdown'] as $verb) {
            yield "{$verb}All" => [
                static fn (Client $c) => $c->{"{$verb}All"}(),
                $all,
                ['command' => $verb, 'subcommand' => 'all'],
                new BulkResult(['web_3_1', 'web_3_2'], 'destroyed 2 VMs'),
            ];
        }
        yield 'listVms' => [
            static fn (Client $c) => $c->listVms(),
            ['VMS' => [self::VM, ['IP' => null, 'state' => 'error', 'detail' => 'vagrant up failed'] + self::VM]],
            ['command' => 'info', 'subcommand' => 'VM all'],
            [
                $vm,
                new Vm(
                    'web_3_1',
                    'web_3',
                    'debian/bookworm64',
                    null,
                    'web-3-1.example.com',
                    VmState::Error,
                    'vagrant up failed',
                ),
            ],
        ];
        yield 'getVm' => [
            static fn (Client $c) => $c->getVm('web_3_1'),
            ['VMS' => [self::VM]],
            ['command' => 'info', 'subcommand' => 'VM web_3_1'],
            $vm,
        ];
        $box = new Box(
            'web_3',
            'debian/bookworm64',
            [FileProvisioner::withContent('hi', '/etc/motd'), FileProvisioner::fromDaemonPath('a.conf', '/a')],
            [PuppetProvisioner::manifest('notify {}'), PuppetProvisioner::fromDaemonPath('site.pp')],
            [ShellProvisioner::inline('echo hi'), ShellProvisioner::fromDaemonPath('setup.sh')],
            Network::None,
            'web',
            ['web_3_1'],
        );
        $after = [
            'suspend' => VmState::Suspended,
            'resume' => VmState::Running,
            'reload' => VmState::Running,
            'provision' => VmState::Running,
        ];
        foreach ($after as $verb => $state) {
            yield "{$verb}Vm" => [
                static fn (Client $c) => $c->{"{$verb}Vm"}('web_3_1'),
                ['state' => $state->value] + self::VM,
                ['command' => $verb, 'vmID' => 'web_3_1'],
                new Vm('web_3_1', 'web_3', 'debian/bookworm64', '192.168.33.2', 'web-3-1.example.com', $state),
            ];
        }
        yield 'createBox with resources' => [
            static fn (Client $c) => $c->createBox('debian/bookworm64', cpus: 2, memory: 512),
            ['boxID' => 'debian_bookworm64_1'],
            [
                'command' => 'create',
                'box' => 'debian/bookworm64',
                'files' => [],
                'puppet' => [],
                'shell' => [],
                'network' => 'private',
                'hostname' => 'dynamic',
                'cpus' => 2,
                'memory' => 512,
            ],
            'debian_bookworm64_1',
        ];
        yield 'saveSnapshot' => [
            static fn (Client $c) => $c->saveSnapshot('web_3_1', 'clean'),
            ['vmID' => 'web_3_1', 'boxID' => 'web_3', 'name' => 'clean', 'state' => 'running', 'message' => 'saved'],
            ['command' => 'snapshot', 'subcommand' => 'save', 'vmID' => 'web_3_1', 'name' => 'clean'],
            new SnapshotResult('web_3_1', 'web_3', 'clean', VmState::Running, 'saved'),
        ];
        yield 'restoreSnapshot' => [
            static fn (Client $c) => $c->restoreSnapshot('web_3_1', 'clean'),
            ['vmID' => 'web_3_1', 'boxID' => 'web_3', 'name' => 'clean', 'state' => 'stopped'],
            ['command' => 'snapshot', 'subcommand' => 'restore', 'vmID' => 'web_3_1', 'name' => 'clean'],
            new SnapshotResult('web_3_1', 'web_3', 'clean', VmState::Stopped, ''),
        ];
        yield 'deleteSnapshot' => [
            static fn (Client $c) => $c->deleteSnapshot('web_3_1', 'clean'),
            ['vmID' => 'web_3_1', 'boxID' => 'web_3', 'name' => 'clean', 'state' => 'running'],
            ['command' => 'snapshot', 'subcommand' => 'delete', 'vmID' => 'web_3_1', 'name' => 'clean'],
            new SnapshotResult('web_3_1', 'web_3', 'clean', VmState::Running, ''),
        ];
        yield 'listSnapshots' => [
            static fn (Client $c) => $c->listSnapshots('web_3_1'),
            ['vmID' => 'web_3_1', 'snapshots' => ['a', 'b']],
            ['command' => 'snapshot', 'subcommand' => 'list', 'vmID' => 'web_3_1'],
            ['a', 'b'],
        ];
        $ran = [
            'vmID' => 'web_3_1', 'exitStatus' => 3, 'stdout' => "out\n", 'stderr' => '', 'stdoutTruncated' => false,
            'stderrTruncated' => false, 'timedOut' => false, 'message' => 'sh exited 3',
        ];
        yield 'exec' => [
            static fn (Client $c) => $c->exec('web_3_1', ['sh', '-c', 'exit 3'], 5),
            $ran,
            ['command' => 'exec', 'vmID' => 'web_3_1', 'argv' => ['sh', '-c', 'exit 3'], 'timeout' => 5],
            new ExecResult('web_3_1', 3, "out\n", '', false, false, false, 'sh exited 3'),
        ];
        yield 'exec with the default timeout' => [
            static fn (Client $c) => $c->exec('web_3_1', ['true']),
            ['exitStatus' => 0] + $ran,
            ['command' => 'exec', 'vmID' => 'web_3_1', 'argv' => ['true']],
            new ExecResult('web_3_1', 0, "out\n", '', false, false, false, 'sh exited 3'),
        ];
        yield 'sshInfo' => [
            static fn (Client $c) => $c->sshInfo('web_3_1'),
            ['vmID' => 'web_3_1', 'host' => '127.0.0.1', 'port' => 2222, 'user' => 'vagrant', 'keyPath' => '/k/key'],
            ['command' => 'ssh-info', 'vmID' => 'web_3_1'],
            new SshInfo('web_3_1', '127.0.0.1', 2222, 'vagrant', '/k/key'),
        ];
        yield 'a box with resources' => [
            static fn (Client $c) => $c->getBox('web_3'),
            ['boxes' => [['cpus' => 2, 'memory' => 512] + self::BOX]],
            ['command' => 'info', 'subcommand' => 'box web_3'],
            new Box(
                'web_3',
                'debian/bookworm64',
                [FileProvisioner::withContent('hi', '/etc/motd'), FileProvisioner::fromDaemonPath('a.conf', '/a')],
                [PuppetProvisioner::manifest('notify {}'), PuppetProvisioner::fromDaemonPath('site.pp')],
                [ShellProvisioner::inline('echo hi'), ShellProvisioner::fromDaemonPath('setup.sh')],
                Network::None,
                'web',
                ['web_3_1'],
                2,
                512,
            ),
        ];
        yield 'listBoxes' => [
            static fn (Client $c) => $c->listBoxes(),
            ['boxes' => [self::BOX]],
            ['command' => 'info', 'subcommand' => 'box all'],
            [$box],
        ];
        yield 'getBox' => [
            static fn (Client $c) => $c->getBox('web_3'),
            ['boxes' => [self::BOX]],
            ['command' => 'info', 'subcommand' => 'box web_3'],
            $box,
        ];
    }

    /**
     * @dataProvider methods
     * @param callable(Client): mixed $method
     * @param array<string, mixed> $reply
     * @param array<string, mixed> $request
     */
    public function testTheMethodSendsItsRequestAndReadsItsReply(
        callable $method,
        array $reply,
        array $request,
        mixed $expected,
    ): void {
        $server = new FakeServer(['error' => false] + $reply);
        try {
            $result = $method($server->client(['token' => 'tok']));

            self::assertEquals($expected, $result);
            self::assertSame($request + ['token' => 'tok', 'id' => 1], $server->nextRequest());
        } finally {
            $server->stop();
        }
    }

    /**
     * @return iterable<string, array{callable(Client): mixed, array<string, mixed>, string}>
     */
    public static function malformedReplies(): iterable
    {
        yield 'a VM without an IP field' => [
            static fn (Client $c) => $c->startVm('web_3'),
            array_diff_key(self::VM, ['IP' => 0]),
            "'IP'",
        ];
        yield 'a VM in an unknown state' => [
            static fn (Client $c) => $c->startVm('web_3'),
            ['state' => 'sleeping'] + self::VM,
            'sleeping',
        ];
        yield 'a create reply without boxID' => [
            static fn (Client $c) => $c->createBox('debian/bookworm64'),
            ['message' => 'created'],
            "'boxID'",
        ];
        yield 'two VMs for one vmID' => [
            static fn (Client $c) => $c->getVm('web_3_1'),
            ['VMS' => [self::VM, self::VM]],
            'one entry',
        ];
        yield 'a box with an unknown network' => [
            static fn (Client $c) => $c->getBox('web_3'),
            ['boxes' => [['network' => 'public'] + self::BOX]],
            "'network'",
        ];
        yield 'an exit status that is not a number' => [
            static fn (Client $c) => $c->exec('web_3_1', ['true']),
            ['vmID' => 'web_3_1', 'exitStatus' => '0', 'stdout' => '', 'stderr' => '', 'stdoutTruncated' => false,
                'stderrTruncated' => false, 'timedOut' => false],
            "'exitStatus'",
        ];
        yield 'VMS that is not a list' => [
            static fn (Client $c) => $c->destroyAll(),
            ['VMS' => 'web_3_1'],
            "'VMS'",
        ];
    }

    /**
     * @dataProvider malformedReplies
     * @param callable(Client): mixed $method
     * @param array<string, mixed> $reply
     */
    public function testAMalformedReplyIsAProtocolError(callable $method, array $reply, string $mentions): void
    {
        $server = new FakeServer(['error' => false] + $reply);
        try {
            $this->expectException(ProtocolException::class);
            $this->expectExceptionMessage($mentions);

            $method($server->client());
        } finally {
            $server->stop();
        }
    }
}
