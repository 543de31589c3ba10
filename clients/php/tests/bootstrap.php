<?php

declare(strict_types=1);

// PSR-4 autoloading for the library and the tests, so the suite needs no `composer install`.
spl_autoload_register(static function (string $class): void {
    $roots = ['Vcm\\Tests\\' => __DIR__ . '/', 'Vcm\\' => dirname(__DIR__) . '/src/'];
    foreach ($roots as $prefix => $directory) {
        if (str_starts_with($class, $prefix)) {
            $file = $directory . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }

            return;
        }
    }
});

register_shutdown_function([Vcm\Tests\Support\DaemonProcess::class, 'killAll']);
