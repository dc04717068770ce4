"""`serve --workers 2`: killed with SIGKILL, the parent takes its workers with it and the port
is free again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from test_serve import CLI, free_port, request


def port_is_free(port):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pids_listening(port):
    """Processes holding a listening socket on the port (from /proc, Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    holders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    holders.add(int(pid))
        except OSError:
            continue
    return holders


def test_workers_exit_when_the_parent_is_killed(db_url):
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"],
                              env={**os.environ, "DATABASE_URL": db_url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = set()
    try:
        for _ in range(300):
            try:
                if request(port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        workers = pids_listening(port) - {server.pid}
        assert len(workers) == 2, workers
        server.send_signal(signal.SIGKILL)
        server.wait()
        for _ in range(200):  # bounded: 20 s
            if port_is_free(port) and not pids_listening(port):
                break
            time.sleep(0.1)
        assert port_is_free(port), f"still held by {pids_listening(port)}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
