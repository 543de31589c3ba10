<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\UnauthorizedException;
use Vcm\Tests\Support\DaemonTestCase;

/**
 * A daemon started with VCM_AUTH_TOKEN.
 */
final class AuthTest extends DaemonTestCase
{
    private const TOKEN = 'correct horse battery staple';

    protected static function daemonSettings(): array
    {
        return ['VCM_DRIVER' => 'simulated', 'VCM_AUTH_TOKEN' => self::TOKEN];
    }

    protected function clientOptions(): array
    {
        return ['token' => self::TOKEN, 'timeout' => 60.0];
    }

    public function testTheRightTokenIsAccepted(): void
    {
        $boxId = $this->client->createBox('debian/bookworm64');
        $vm = $this->client->startVm($boxId);

        self::assertSame($boxId, $this->client->getBox($boxId)->boxId);
        self::assertEquals($vm, $this->client->getVm($vm->vmId));
    }

    /**
     * @return iterable<string, array{string|null}>
     */
    public static function badTokens(): iterable
    {
        yield 'no token' => [null];
        yield 'a wrong token' => ['incorrect horse'];
        yield 'an empty token' => [''];
    }

    /**
     * @dataProvider badTokens
     */
    public function testWithoutTheRightTokenNothingHappens(?string $token): void
    {
        $boxes = $this->client->listBoxes();
        $intruder = $this->daemon()->client(['token' => $token]);

        foreach ([fn () => $intruder->createBox('debian/bookworm64'), fn () => $intruder->listVms()] as $request) {
            try {
                $request();
                self::fail('the request has no valid token');
            } catch (UnauthorizedException $error) {
                self::assertSame('UNAUTHORIZED', $error->getErrorCode());
                self::assertStringContainsString('token', $error->getMessage());
            }
        }
        self::assertEquals($boxes, $this->client->listBoxes());
    }

    public function testARawRequestMustCarryTheTokenItself(): void
    {
        try {
            $this->client->rawRequest('{"command": "info", "subcommand": "box all"}');
            self::fail('the raw request has no token');
        } catch (UnauthorizedException $error) {
            self::assertSame('UNAUTHORIZED', $error->getErrorCode());
        }

        $reply = $this->client->rawRequest(
            json_encode(['command' => 'info', 'subcommand' => 'box all', 'token' => self::TOKEN], JSON_THROW_ON_ERROR)
        );
        self::assertFalse($reply['error']);
    }
}
