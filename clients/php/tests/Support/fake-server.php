<?php

declare(strict_types=1);

/*
 * A scripted stand-in for the daemon, on loopback, for what the real one never does (INTERNAL
 * on demand, split or broken replies, silence). It prints "listening PORT" and serves one
 * connection at a time. Each request is one JSON line; fields in it script the reply:
 *   "reply": object     the reply, with the request's "id" added unless "noId" is true
 *   "rawReply": string  bytes sent as they are, instead of a JSON reply
 *   "chunk": int        send in pieces this long, "pause" milliseconds apart (default 20)
 *   "silent": true      send nothing
 *   "close": true       close the connection after sending
 *   "echo": true        the default reply also holds the request as received, in "received"
 * With none of these the reply is {"error": false, "connection": N, "request": M}: the
 * number of the connection and of the request on it, counted from 1; or, if the server was
 * started with a JSON object as its argument, that object (with the request's "id").
 * Each request line is appended to the file named by $FAKE_SERVER_LOG before the reply is sent.
 * It exits after 120 s at the latest.
 */

$server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
if ($server === false) {
    fwrite(STDERR, "cannot listen: $errstr\n");
    exit(1);
}
$name = stream_socket_get_name($server, false);
fwrite(STDOUT, 'listening ' . substr($name, strrpos($name, ':') + 1) . "\n");
fflush(STDOUT);

$scripted = isset($argv[1]) ? json_decode($argv[1], true, 512, JSON_THROW_ON_ERROR) : null;
$deadline = microtime(true) + 120;
$connections = 0;
while (microtime(true) < $deadline) {
    $connection = @stream_socket_accept($server, 1.0);
    if ($connection === false) {
        continue;
    }
    stream_set_timeout($connection, 1);
    $connections++;
    $requests = 0;
    $buffer = '';
    while (microtime(true) < $deadline) {
        $chunk = fread($connection, 65536);
        if ($chunk === false || $chunk === '') {
            if (feof($connection)) {
                break;
            }
            continue;
        }
        $buffer .= $chunk;
        while (($end = strpos($buffer, "\n")) !== false) {
            $line = substr($buffer, 0, $end);
            $buffer = substr($buffer, $end + 1);
            $requests++;
            file_put_contents((string) getenv('FAKE_SERVER_LOG'), "$line\n", FILE_APPEND);
            $request = json_decode($line, true);
            if (!is_array($request)) {
                $request = [];
            }
            if (isset($request['rawReply'])) {
                $bytes = (string) $request['rawReply'];
            } else {
                $reply = $request['reply']
                    ?? $scripted
                    ?? ['error' => false, 'connection' => $connections, 'request' => $requests];
                if (!isset($request['reply']) && !empty($request['echo'])) {
                    $reply['received'] = $request;
                    $reply['receivedLine'] = $line;
                }
                if (array_key_exists('id', $request) && empty($request['noId'])) {
                    $reply = ['error' => $reply['error'] ?? false, 'id' => $request['id']] + $reply;
                }
                $bytes = json_encode($reply, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
            }
            if (empty($request['silent'])) {
                $size = max(1, (int) ($request['chunk'] ?? strlen($bytes)));
                foreach (str_split($bytes, $size) as $piece) {
                    fwrite($connection, $piece);
                    fflush($connection);
                    if ($size < strlen($bytes)) {
                        usleep(1000 * (int) ($request['pause'] ?? 20));
                    }
                }
            }
            if (!empty($request['close'])) {
                fclose($connection);
                continue 3;
            }
        }
    }
    if (is_resource($connection)) {
        fclose($connection);
    }
}
