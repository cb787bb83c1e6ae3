"""Child processes that never outlive the server.

Every process a tool starts (a bash command, a search worker) runs in a
process group of its own, and
- gets SIGKILL from the kernel when the server dies (PR_SET_PDEATHSIG, set
  between fork and exec), and
- has its group registered with the reaper: one small process per server
  that holds the read end of a pipe only the server writes to. When the
  server dies, however it dies (SIGKILL included), the pipe reaches end of
  file and the reaper kills every group still registered, so background jobs
  of a command (`sleep 60 &`), which the death signal does not reach, go too.

Spawn children from the event loop thread: the death signal is sent when the
*thread* that forked the child ends, and the loop thread lives as long as the
server.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TypedDict

from ..settings.secrets import child_environment

PR_SET_PDEATHSIG = 1

_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the reaper alone ties the groups to the server
    _prctl = None

# The reaper's program: read "+pgid" / "-pgid" lines; at end of input kill what is left.
_REAPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[:1], int(line[1:])
    (groups.add if sign == "+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """The server's reaper process (started before the first child)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.fd: int | None = None  # the write end of its pipe

    def start(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                    env=child_environment(),  # no keys: a command can read a sibling's /proc/PID/environ
                )
            except OSError:
                self._proc = self.fd = None
                return
            assert self._proc.stdin is not None
            self.fd = self._proc.stdin.fileno()

    def send(self, line: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, line.encode())  # a few bytes: never blocks in practice
        except OSError:
            pass

    def forget(self, pgid: int) -> None:
        self.send(f"-{pgid}\n")


REAPER = Reaper()


class TiedToServer(TypedDict):
    start_new_session: bool
    preexec_fn: Callable[[], None]


def tied_to_server() -> TiedToServer:
    """Keyword arguments of a subprocess call for a child tied to the server (call from the loop thread)."""
    REAPER.start()
    return {"start_new_session": True, "preexec_fn": _in_child}


def _in_child() -> None:
    """Between fork and exec: die with the server, and have the reaper watch this new group.

    Registered here, before the command runs a single instruction, so no
    background job can start before the reaper knows its group.
    """
    parent = os.getppid()
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died between fork and prctl
        os._exit(1)
    REAPER.send(f"+{os.getpid()}\n")


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def spawn(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """`create_subprocess_exec` for a child tied to the server, whose cancellation kills what it started.

    The child runs before the call returns (asyncio still connects its pipes):
    a cancel arriving then used to leave the command's background jobs running
    (asyncio kills the shell alone). Here the start completes, the whole group
    is killed, and the cancellation goes on.
    """
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(*args, **kwargs, **tied_to_server()))
    cancelled = False
    while True:
        try:
            proc = await asyncio.shield(starting)
            break
        except asyncio.CancelledError:
            if starting.done() and not starting.cancelled() and starting.exception() is not None:
                raise
            cancelled = True
    if cancelled:
        kill_group(proc.pid)
        await proc.wait()
        REAPER.forget(proc.pid)
        raise asyncio.CancelledError
    return proc
