"""A server worker ends when the process that started it dies.

`serve --workers N` runs a parent that spawns the workers; the workers share the listening
socket. Killed with SIGKILL, the parent cannot stop them, and they would go on serving and
holding the port. So each worker asks Linux to send it SIGTERM when its parent dies
(`prctl(PR_SET_PDEATHSIG)`), and a watchdog thread also compares `os.getppid()` with the parent
it was started by (elsewhere, and for a parent that died before the prctl). SIGTERM is uvicorn's
graceful stop: in-flight requests finish, the pool closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_PID_ENV", "exit_with_parent"]

PARENT_PID_ENV = "LEDGER_SERVE_PARENT_PID"
_PR_SET_PDEATHSIG = 1
parent_poll_s = 0.5


def exit_with_parent() -> None:
    """In a worker: SIGTERM to itself once the parent named by `PARENT_PID_ENV` is gone."""
    expected = os.environ.get(PARENT_PID_ENV, "")
    if not expected.isdigit():
        return
    parent_pid = int(expected)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    threading.Thread(target=_watch, args=(parent_pid,), name="exit-with-parent", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(parent_poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
