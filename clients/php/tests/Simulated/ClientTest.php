<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Box;
use Vcm\Exception\BoxNotFoundException;
use Vcm\Exception\LocalFileException;
use Vcm\Exception\VmNotFoundException;
use Vcm\FileProvisioner;
use Vcm\Network;
use Vcm\PuppetProvisioner;
use Vcm\ShellProvisioner;
use Vcm\Tests\Support\DaemonProcess;
use Vcm\Tests\Support\DaemonTestCase;
use Vcm\Vm;
use Vcm\VmState;

/**
 * The whole surface of the client against the real daemon with its simulated backend.
 */
final class ClientTest extends DaemonTestCase
{
    private ?string $scratch = null;

    protected function tearDown(): void
    {
        if ($this->scratch !== null) {
            DaemonProcess::removeTree($this->scratch);
        }
        parent::tearDown();
    }

    public function testCreateBoxReturnsABoxIdFromTheNameAndANewCounter(): void
    {
        $first = $this->client->createBox('debian/bookworm64');
        $second = $this->client->createBox('debian/bookworm64');

        self::assertMatchesRegularExpression('/^debian_bookworm64_(\d+)$/', $first);
        self::assertMatchesRegularExpression('/^debian_bookworm64_(\d+)$/', $second);
        self::assertGreaterThan($this->counter($first), $this->counter($second));
        $third = $this->client->createBox('ubuntu/trusty64');
        self::assertSame('ubuntu_trusty64_' . ($this->counter($second) + 1), $third);
    }

    public function testGetBoxReturnsTheDefinitionWithDefaults(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');

        $box = $this->client->getBox($boxId);

        self::assertEquals(
            new Box($boxId, 'debian/bookworm64', [], [], [], Network::Private, 'dynamic', []),
            $box,
        );
    }

    public function testLocalFilesAreSentAsTheirContent(): void
    {
        $this->scratch = DaemonProcess::temporaryDirectory('vcm-php-files-');
        file_put_contents("$this->scratch/motd", "Welcome to the lab \u{2014} have fun\n");
        file_put_contents("$this->scratch/setup.sh", "#!/bin/sh\necho set up > /tmp/done\n");
        file_put_contents("$this->scratch/site.pp", "file { '/tmp/puppet': content => 'yes' }\n");

        $boxId = $this->client->createBox(
            'debian/bookworm64',
            files: [
                FileProvisioner::fromLocalFile("$this->scratch/motd", '/etc/motd'),
                FileProvisioner::withContent('key=value', '/etc/app.conf'),
            ],
            shell: [
                'echo first',
                ShellProvisioner::fromLocalFile("$this->scratch/setup.sh"),
                ShellProvisioner::inline('echo last'),
            ],
            puppet: [
                PuppetProvisioner::fromLocalFile("$this->scratch/site.pp"),
                PuppetProvisioner::manifest("notify { 'hi': }"),
            ],
            network: Network::None,
            hostname: 'lab',
        );
        $box = $this->client->getBox($boxId);

        self::assertSame('debian/bookworm64', $box->box);
        self::assertSame(Network::None, $box->network);
        self::assertSame('lab', $box->hostname);
        self::assertSame(
            [
                ['content' => "Welcome to the lab \u{2014} have fun\n", 'destination' => '/etc/motd'],
                ['content' => 'key=value', 'destination' => '/etc/app.conf'],
            ],
            array_map(static fn (FileProvisioner $file): array => $file->toArray(), $box->files),
        );
        self::assertNull($box->files[0]->source);
        self::assertSame(
            ['echo first', "#!/bin/sh\necho set up > /tmp/done\n", 'echo last'],
            array_map(static fn (ShellProvisioner $shell): ?string => $shell->inline, $box->shell),
        );
        self::assertSame(
            ["file { '/tmp/puppet': content => 'yes' }\n", "notify { 'hi': }"],
            array_map(static fn (PuppetProvisioner $puppet): ?string => $puppet->manifest, $box->puppet),
        );
    }

    public function testALocalFileThatCannotBeReadIsRefusedBeforeSending(): void
    {
        $this->expectException(LocalFileException::class);
        $this->expectExceptionMessage('/nonexistent/motd');

        FileProvisioner::fromLocalFile('/nonexistent/motd', '/etc/motd');
    }

    public function testALocalFileThatIsNotTextIsRefused(): void
    {
        $this->scratch = DaemonProcess::temporaryDirectory('vcm-php-files-');
        file_put_contents("$this->scratch/blob", "\xff\xfe\x00binary");

        $this->expectException(LocalFileException::class);
        $this->expectExceptionMessage('not UTF-8');

        ShellProvisioner::fromLocalFile("$this->scratch/blob");
    }

    public function testAWronglyTypedProvisionerSendsNothing(): void
    {
        $before = count($this->client->listBoxes());
        try {
            // @phpstan-ignore-next-line: wrong on purpose
            $this->client->createBox('debian/bookworm64', files: ['/etc/motd']);
            self::fail('a string is not a file provisioner');
        } catch (\InvalidArgumentException $error) {
            self::assertStringContainsString('FileProvisioner', $error->getMessage());
        }
        self::assertCount($before, $this->client->listBoxes());
    }

    public function testStartVmReturnsTheRunningVmWithAnAddressFromThePool(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');

        $first = $this->client->startVm($boxId);
        $second = $this->client->startVm($boxId);

        self::assertSame("{$boxId}_1", $first->vmId);
        self::assertSame("{$boxId}_2", $second->vmId);
        self::assertSame($boxId, $first->boxId);
        self::assertSame('debian/bookworm64', $first->box);
        self::assertSame(VmState::Running, $first->state);
        self::assertTrue($first->isRunning());
        self::assertNull($first->detail);
        self::assertSame(str_replace('_', '-', strtolower($first->vmId)) . '.example.com', $first->hostname);
        foreach ([$first, $second] as $vm) {
            self::assertNotNull($vm->ip);
            self::assertMatchesRegularExpression('/^192\.168\.33\.(\d+)$/', $vm->ip);
            $last = (int) substr($vm->ip, strrpos($vm->ip, '.') + 1);
            self::assertGreaterThan(1, $last, 'the network and the first host address are never leased');
            self::assertLessThan(254, $last, 'the last host and the broadcast address are never leased');
        }
        self::assertNotSame($first->ip, $second->ip);
        self::assertSame([$first->vmId, $second->vmId], $this->client->getBox($boxId)->vmIds);
    }

    public function testAHostnamePrefixAndNoNetworkShowInTheVm(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64', network: 'none', hostname: 'web');

        $vm = $this->client->startVm($boxId);

        self::assertSame('web-1.example.com', $vm->hostname);
        self::assertNull($vm->ip);
        self::assertEquals($vm, $this->client->getVm($vm->vmId));
    }

    public function testGetVmAndListVmsReportTheVm(): void
    {
        $vm = $this->client->startVm($this->client->createBox('debian/bookworm64'));

        self::assertEquals($vm, $this->client->getVm($vm->vmId));
        $listed = array_values(array_filter(
            $this->client->listVms(),
            static fn (Vm $each): bool => $each->vmId === $vm->vmId,
        ));
        self::assertEquals([$vm], $listed);
    }

    public function testAStoppedVmKeepsItsAddressAndStartsAgain(): void
    {
        $vm = $this->client->startVm($this->client->createBox('debian/bookworm64'));

        $stopped = $this->client->stopVm($vm->vmId);

        self::assertSame($vm->vmId, $stopped->vmId);
        self::assertSame($vm->boxId, $stopped->boxId);
        self::assertSame(VmState::Stopped, $stopped->state);
        self::assertStringContainsString($vm->vmId, $stopped->message);
        $seen = $this->client->getVm($vm->vmId);
        self::assertSame(VmState::Stopped, $seen->state);
        self::assertSame($vm->ip, $seen->ip);
        self::assertContains($vm->vmId, $this->vmIds());
        self::assertSame(VmState::Stopped, $this->client->stopVm($vm->vmId)->state, 'stopping a stopped VM succeeds');

        $again = $this->client->startExistingVm($vm->vmId);

        self::assertEquals($vm, $again);
        self::assertEquals($vm, $this->client->startExistingVm($vm->vmId), 'starting a running VM changes nothing');
    }

    public function testHaltAndShutdownStopAVm(): void
    {
        $vm = $this->client->startVm($this->client->createBox('debian/bookworm64'));

        self::assertSame(VmState::Stopped, $this->client->haltVm($vm->vmId)->state);
        self::assertSame(VmState::Stopped, $this->client->getVm($vm->vmId)->state);
        $this->client->startExistingVm($vm->vmId);
        self::assertSame(VmState::Stopped, $this->client->shutdownVm($vm->vmId)->state);
        self::assertSame(VmState::Stopped, $this->client->getVm($vm->vmId)->state);
    }

    public function testDestroyVmRemovesItAndFreesItsAddress(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $vm = $this->client->startVm($boxId);

        $result = $this->client->destroyVm($vm->vmId);

        self::assertSame($vm->vmId, $result->vmId);
        self::assertSame($boxId, $result->boxId);
        self::assertNull($result->state);
        self::assertSame([], $this->client->getBox($boxId)->vmIds);
        self::assertNotContains($vm->vmId, $this->vmIds());
        $this->expectException(VmNotFoundException::class);
        $this->client->getVm($vm->vmId);
    }

    public function testDestroyBoxDestroysItsVmsAndRemovesIt(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $vms = [$this->client->startVm($boxId)->vmId, $this->client->startVm($boxId)->vmId];
        $other = $this->client->startVm($this->client->createBox('debian/bookworm64'));

        $result = $this->client->destroyBox($boxId);

        self::assertSame($boxId, $result->boxId);
        self::assertEqualsCanonicalizing($vms, $result->vmIds);
        $left = $this->vmIds();
        self::assertSame([], array_intersect($vms, $left));
        self::assertContains($other->vmId, $left);
        $boxIds = array_map(static fn (Box $box): string => $box->boxId, $this->client->listBoxes());
        self::assertNotContains($boxId, $boxIds);
        $this->expectException(BoxNotFoundException::class);
        $this->client->getBox($boxId);
    }

    public function testListBoxesHasEveryBox(): void
    {
        $one = $this->client->createBox('debian/bookworm64');
        $two = $this->client->createBox('ubuntu/jammy64', shell: ['true']);

        $boxes = [];
        foreach ($this->client->listBoxes() as $box) {
            $boxes[$box->boxId] = $box;
        }

        self::assertArrayHasKey($one, $boxes);
        self::assertArrayHasKey($two, $boxes);
        self::assertSame('ubuntu/jammy64', $boxes[$two]->box);
        self::assertSame('true', $boxes[$two]->shell[0]->inline);
        self::assertEquals($this->client->getBox($two), $boxes[$two]);
    }

    public function testTheSeedExampleCanBeSentVerbatim(): void
    {
        $reply = $this->client->rawRequest(
            "{\n\t\"command\": \"create\",\n\t\"box\": \"ubuntu/trusty64\",\n\t\"files\": [],\n\t\"puppet\": [],"
            . "\n\t\"shell\": [],\n\t\"network\": \"private\",\n\t\"hostname\": \"dynamic\"\n}\n"
        );

        self::assertFalse($reply['error']);
        self::assertMatchesRegularExpression('/^ubuntu_trusty64_\d+$/', $reply['boxID']);
        self::assertSame('ubuntu/trusty64', $this->client->getBox($reply['boxID'])->box);
    }

    public function testRequestsCarryAnIdThatTheReplyEchoes(): void
    {
        $first = $this->client->call(['command' => 'info', 'subcommand' => 'box all']);
        $second = $this->client->call(['command' => 'info', 'subcommand' => 'box all']);

        self::assertIsInt($first['id']);
        self::assertSame($first['id'] + 1, $second['id']);
        $plain = $this->daemon()->client(['sendIds' => false])->call(['command' => 'info', 'subcommand' => 'box all']);
        self::assertArrayNotHasKey('id', $plain);
    }

    public function testAQueryForAllIsNotAVm(): void
    {
        $this->client->startVm($this->client->createBox('debian/bookworm64'));

        $this->expectException(VmNotFoundException::class);
        $this->client->getVm('all');
    }

    /**
     * @return list<string>
     */
    private function vmIds(): array
    {
        return array_map(static fn (Vm $vm): string => $vm->vmId, $this->client->listVms());
    }

    private function counter(string $boxId): int
    {
        return (int) substr($boxId, strrpos($boxId, '_') + 1);
    }
}
