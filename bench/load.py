"""The load generator: N connections, each with one request in flight, bounded by time and count.

Run as its own process (`python -m bench.load SPEC.json`), never inside the daemon's, and only
against loopback. It is written for little CPU per request, since on a small machine it shares the
cores with the daemon: non-blocking sockets on one epoll, no event-loop framework, the next request
sent as soon as the previous reply's final newline arrives (replies come in order, one per request).
Replies are not parsed; one counts as an error unless it starts with `{"error": false`.

SPEC.json: {"host", "port", "connections", "requests": [str, ...], "warmup", "duration",
"max_requests"}. Prints one JSON object: count, errors, seconds, throughput, latency percentiles.
"""

from __future__ import annotations

import ipaddress
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OK_PREFIX = b'{"error": false'
READ_SIZE = 1 << 20


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def generate(spec: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0915 (one hot loop, no calls)
    host = str(spec["host"])
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"bench.load only runs against loopback, not {host}")
    requests = [item.encode() for item in spec["requests"]]
    count = int(spec["connections"])
    left = int(spec["max_requests"])
    spread = max(1, len(requests) // count)

    sockets: dict[int, socket.socket] = {}
    for _ in range(count):
        sock = socket.create_connection((host, int(spec["port"])), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        sockets[sock.fileno()] = sock
    fds = list(sockets)
    next_request = {fd: index * spread for index, fd in enumerate(fds)}
    sent_at = dict.fromkeys(fds, 0.0)
    first_chunk: dict[int, bytes] = {}
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)

    latencies: list[float] = []
    replies = errors = 0
    first_error = ""
    measure_from = time.perf_counter() + float(spec["warmup"])
    deadline = measure_from + float(spec["duration"])
    hard_stop = deadline + float(spec.get("grace", 60))
    last_reply = measure_from
    open_fds = set(fds)

    def send(fd: int, now: float) -> None:
        if left <= 0 or now >= deadline:
            poller.unregister(fd)
            open_fds.discard(fd)
            return
        index = next_request[fd]
        next_request[fd] = index + 1
        sent_at[fd] = now
        sockets[fd].send(requests[index % len(requests)])

    began = time.perf_counter()
    startup = resource.getrusage(resource.RUSAGE_SELF)
    for fd in fds:
        send(fd, began)
    while open_fds:
        events = poller.poll(1.0)
        now = time.perf_counter()
        if now > hard_stop:
            raise SystemExit("bench.load: replies still missing long after the deadline")
        for fd, _ in events:
            data = sockets[fd].recv(READ_SIZE)
            if not data:
                raise SystemExit("bench.load: the daemon closed a connection")
            if not data.endswith(b"\n"):
                first_chunk.setdefault(fd, data)
                continue
            head = first_chunk.pop(fd, data)
            replies += 1
            if not head.startswith(OK_PREFIX):
                errors += 1
                first_error = first_error or head[:300].decode(errors="replace")
            if sent_at[fd] >= measure_from:
                latencies.append(now - sent_at[fd])
                left -= 1
                last_reply = now
            send(fd, now)
    for sock in sockets.values():
        sock.close()
    ordered = sorted(latencies)
    seconds = max(last_reply - measure_from, 1e-9)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "connections": count,
        "count": len(ordered),
        "replies": replies,
        "errors": errors,
        "first_error": first_error,
        "seconds": seconds,
        "throughput": len(ordered) / seconds,
        "p50": _percentile(ordered, 0.50),
        "p90": _percentile(ordered, 0.90),
        "p99": _percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else float("nan"),
        # CPU of the request loop only (the process start-up is not load)
        "client_cpu": usage.ru_utime + usage.ru_stime - startup.ru_utime - startup.ru_stime,
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(generate(spec)))
    return 0


def run_load(spec: dict[str, Any], timeout: float = 900.0) -> dict[str, Any]:
    """Run the load generator in a process of its own and return what it measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(spec, file)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.load", file.name],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(file.name)
    if done.returncode != 0:
        raise RuntimeError(f"bench.load failed ({done.returncode}): {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
