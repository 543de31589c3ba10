<?php

declare(strict_types=1);

namespace Vcm\Internal;

use Vcm\Exception\LocalFileException;

/**
 * @internal
 */
final class LocalFile
{
    /**
     * The text of a local file; the protocol carries text, so it must be UTF-8.
     */
    public static function read(string $path): string
    {
        if (!is_file($path) || !is_readable($path)) {
            throw new LocalFileException("cannot read local file '$path': not a readable file");
        }
        $text = @file_get_contents($path);
        if ($text === false) {
            $reason = error_get_last()['message'] ?? 'read failed';
            throw new LocalFileException("cannot read local file '$path': $reason");
        }
        if (preg_match('//u', $text) !== 1) {
            throw new LocalFileException(
                "local file '$path' is not UTF-8 text; the protocol can only carry text"
            );
        }

        return $text;
    }
}
