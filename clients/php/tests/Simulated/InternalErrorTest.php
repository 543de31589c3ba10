<?php

declare(strict_types=1);

namespace Vcm\Tests\Simulated;

use Vcm\Exception\InternalException;
use Vcm\Tests\Support\DaemonTestCase;

/**
 * INTERNAL from the real daemon: its state file cannot be written.
 */
final class InternalErrorTest extends DaemonTestCase
{
    public function testAStateFileThatCannotBeWrittenIsInternalAndRecordsNothing(): void
    {
        $kept = $this->client->createBox('debian/bookworm64');
        $stateFile = $this->daemon()->stateDir . '/state.json';
        $saved = file_get_contents($stateFile);
        self::assertIsString($saved);
        // Even root cannot replace a directory with a file.
        unlink($stateFile);
        mkdir($stateFile);

        try {
            $this->client->createBox('debian/bookworm64');
            self::fail('the state cannot be saved');
        } catch (InternalException $error) {
            self::assertSame('INTERNAL', $error->getErrorCode());
            self::assertStringContainsString('state', $error->getMessage());
        } finally {
            rmdir($stateFile);
            file_put_contents($stateFile, $saved);
        }

        self::assertSame([$kept], array_map(static fn ($box) => $box->boxId, $this->client->listBoxes()));
    }
}
