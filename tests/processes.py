"""What the tests see of processes through Linux /proc: a group's living members, a process's end,
its open connections, and the pids a command writes to a FIFO."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest


def _processes() -> Iterator[tuple[int, list[str]]]:
    """Each process's pid and the fields of its /proc stat after its name (state, ppid, pgrp, ...)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        yield int(entry), stat.rsplit(")", 1)[1].split()


def living_members(pgid: int) -> list[int]:
    """Processes of the group that are not dead (zombies waiting for a reaper are dead)."""
    return [pid for pid, fields in _processes() if int(fields[2]) == pgid and fields[0] not in ("Z", "X")]


def children(parent: int, marker: str) -> list[int]:
    """Processes whose parent is `parent` and whose command line holds `marker`."""
    found = []
    for pid, fields in _processes():
        if int(fields[1]) != parent:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(pid)
    return found


def pid_ended(pid: int, timeout: float = 5.0) -> bool:
    """Wait for a process's end through a pidfd (readable once it has exited); False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


async def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    """`pid_ended` off the event loop."""
    return await asyncio.to_thread(pid_ended, pid, timeout)


async def read_fifo(path: Path, timeout: float = 10.0) -> str:
    reading = asyncio.ensure_future(asyncio.to_thread(path.read_text))
    done, _ = await asyncio.wait({reading}, timeout=timeout)
    if not done:
        # Nobody wrote: open the other end ourselves so the blocked reader thread returns.
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        await reading
        pytest.fail("the command never wrote its process ids")
    return reading.result()


async def assert_all_dead(pgid: int, pids: list[int]) -> None:
    for pid in pids:
        assert await wait_dead(pid), f"process {pid} is still running"
    assert living_members(pgid) == []


def open_connections(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
        count += remote_port == port and state == "01" and inode in inodes  # 01: ESTABLISHED
    return count
