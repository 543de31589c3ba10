<?php

declare(strict_types=1);

namespace Vcm\Internal;

use Vcm\Exception\ProtocolException;

/**
 * Typed access to the fields of a decoded reply; a missing or mistyped field is a protocol error.
 *
 * @internal
 */
final class Fields
{
    /**
     * @param array<mixed> $data
     */
    public static function string(array $data, string $key): string
    {
        $value = $data[$key] ?? null;
        if (!is_string($value)) {
            throw self::bad($key, 'a string', $value);
        }

        return $value;
    }

    /**
     * @param array<mixed> $data
     */
    public static function optionalString(array $data, string $key): ?string
    {
        $value = $data[$key] ?? null;
        if ($value !== null && !is_string($value)) {
            throw self::bad($key, 'a string or null', $value);
        }

        return $value;
    }

    /**
     * @param array<mixed> $data
     */
    public static function int(array $data, string $key): int
    {
        $value = $data[$key] ?? null;
        if (!is_int($value)) {
            throw self::bad($key, 'a whole number', $value);
        }

        return $value;
    }

    /**
     * @param array<mixed> $data
     */
    public static function optionalInt(array $data, string $key): ?int
    {
        return ($data[$key] ?? null) === null ? null : self::int($data, $key);
    }

    /**
     * @param array<mixed> $data
     */
    public static function bool(array $data, string $key): bool
    {
        $value = $data[$key] ?? null;
        if (!is_bool($value)) {
            throw self::bad($key, 'true or false', $value);
        }

        return $value;
    }

    /**
     * A field that must be present, and may be null.
     *
     * @param array<mixed> $data
     */
    public static function nullableString(array $data, string $key): ?string
    {
        if (!array_key_exists($key, $data)) {
            throw new ProtocolException("malformed reply from the daemon: '$key' is missing");
        }

        return self::optionalString($data, $key);
    }

    /**
     * @param array<mixed> $data
     * @return list<string>
     */
    public static function strings(array $data, string $key): array
    {
        $values = self::list($data, $key);
        foreach ($values as $value) {
            if (!is_string($value)) {
                throw self::bad($key, 'a list of strings', $values);
            }
        }

        /** @var list<string> $values */
        return $values;
    }

    /**
     * @param array<mixed> $data
     * @return list<array<mixed>>
     */
    public static function objects(array $data, string $key): array
    {
        $values = self::list($data, $key);
        foreach ($values as $value) {
            if (!is_array($value) || (array_is_list($value) && $value !== [])) {
                throw self::bad($key, 'a list of objects', $values);
            }
        }

        /** @var list<array<mixed>> $values */
        return $values;
    }

    /**
     * @param array<mixed> $data
     * @return list<mixed>
     */
    public static function list(array $data, string $key): array
    {
        $value = $data[$key] ?? null;
        if (!is_array($value) || !array_is_list($value)) {
            throw self::bad($key, 'a list', $value);
        }

        return $value;
    }

    public static function bad(string $key, string $expected, mixed $value): ProtocolException
    {
        $got = json_encode($value, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR);

        return new ProtocolException(
            sprintf("malformed reply from the daemon: '%s' should be %s, got %s", $key, $expected, $got)
        );
    }
}
