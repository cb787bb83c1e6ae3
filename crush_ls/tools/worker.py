"""Running a search (search.py) in a worker process that a deadline or a cancel can kill.

The server writes one job (JSON) to the worker's stdin; the worker writes
each line of the result as it is found, then how it ended:

    {"line": "src/a.py:3: import os"}   ...
    {"end": {"truncated": false}}      or   {"error": "directory not found: x"}

The server reads lines until the end, the deadline (then the worker is killed
and the lines so far are the result, marked truncated) or a cancel (killed at
once). Nothing the worker does can hold the server's event loop: a
catastrophic regex or glob only burns the worker's own time.

A worker serves one job and is killed after it (so a search's memory goes
with it). Starting one (Python and the search modules) took 76 ms of every
call, so the next worker is started in the background as each search ends:
one spare, idle on its stdin, that the next search takes (and waits for if
it is still starting). Only the event loop that started it takes it, and
only a loop that lives as long as its process keeps one (`keep_spare`: the
server's; a loop run for one call would close with the spare's pipes open).

`CRUSH_LS_SEARCH` picks how glob and grep walk the tree and how grep reads
files: `auto` (default: ripgrep when installed), `ripgrep` or `python`. The
tests run both.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paths import ToolInputError

if TYPE_CHECKING:
    import asyncio

# The worker gets this much longer than the search's own deadline before it is killed.
GRACE_S = 2.0


def engine() -> str:
    return os.environ.get("CRUSH_LS_SEARCH", "auto")


async def run_search(job: dict[str, Any], timeout_s: float) -> tuple[list[str], bool]:
    """Run `job` in a worker: (the result's lines, whether it was cut short)."""
    import asyncio

    from .procs import REAPER, kill_group

    proc = await _take_worker()
    lines: list[str] = []
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(job).encode() + b"\n")
        proc.stdin.close()
        ending = await asyncio.wait_for(_read(proc.stdout, lines), timeout_s + GRACE_S)
    except TimeoutError:
        ending = {"end": {"truncated": True}}
    finally:
        kill_group(proc.pid)
        await proc.wait()
        REAPER.forget(proc.pid)
        _start_spare()
    if "error" in ending:
        raise ToolInputError(ending["error"])
    return lines, bool(ending.get("end", {}).get("truncated"))


# The spare worker and the loop that started it (its pipes belong to that loop).
_spare: tuple[asyncio.AbstractEventLoop, asyncio.Task[asyncio.subprocess.Process]] | None = None
_keep_spare = False


def keep_spare() -> None:
    """Have each search leave the next worker starting (call once the loop that lives as long as the
    process runs searches: the server's)."""
    global _keep_spare
    _keep_spare = True


async def _start_worker() -> asyncio.subprocess.Process:
    import asyncio

    from ..settings.secrets import child_environment
    from .procs import spawn

    return await spawn(
        sys.executable, "-I", "-m", "crush_ls.tools.worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        limit=2**24, env=child_environment(),  # no keys: a command can read a sibling's /proc/PID/environ
    )


def _start_spare() -> None:
    global _spare
    import asyncio

    loop = asyncio.get_running_loop()
    if _keep_spare and (_spare is None or _spare[0] is not loop):
        _drop(_spare)
        task = loop.create_task(_start_worker())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failed start: the next one retries
        _spare = (loop, task)


async def _take_worker() -> asyncio.subprocess.Process:
    """The spare worker when it is this loop's and alive (awaited if still starting), else a new one.

    A cancel while waiting for the spare cancels its start, which kills it (procs.spawn)."""
    global _spare
    import asyncio

    spare, _spare = _spare, None
    if spare is not None and spare[0] is asyncio.get_running_loop():
        try:
            proc = await spare[1]
        except OSError:
            proc = None
        if proc is not None and proc.returncode is None:
            return proc
        spare = None if proc is None else spare
    _drop(spare)
    return await _start_worker()


def _drop(spare: tuple[asyncio.AbstractEventLoop, asyncio.Task[asyncio.subprocess.Process]] | None) -> None:
    """Kill a spare no search will take (its loop is gone, or it died)."""
    from .procs import REAPER, kill_group

    if spare is None or not spare[1].done() or spare[1].cancelled() or spare[1].exception() is not None:
        return  # still starting: its loop ended, and cancelled the start, which killed it
    pid = spare[1].result().pid
    kill_group(pid)
    REAPER.forget(pid)


async def _read(stdout: Any, lines: list[str]) -> dict[str, Any]:
    while raw := await stdout.readline():
        message: dict[str, Any] = json.loads(raw)
        if "line" not in message:
            return message
        lines.append(message["line"])
    return {"error": "the search stopped unexpectedly"}


def _run(job: dict[str, Any]) -> bool:
    from . import search

    def emit(line: str) -> None:
        sys.stdout.write(json.dumps({"line": line}) + "\n")
        sys.stdout.flush()

    root, start = Path(job["root"]), Path(job["start"])
    if job["op"] == "ls":
        return search.tree(root, start, job["ignore"], job["depth"], emit)
    if job["op"] == "glob":
        return search.glob(root, start, job["pattern"], emit, job.get("unsaved"), job.get("engine", "auto"))
    return search.grep(root, start, job["pattern"], job["include"], job["engine"], emit, job.get("texts"))


def main() -> None:
    from . import search  # noqa: F401  (loaded before the job comes: a spare worker waits ready)

    job = json.loads(sys.stdin.readline())
    try:
        ending: dict[str, Any] = {"end": {"truncated": _run(job)}}
    except ToolInputError as exc:
        ending = {"error": str(exc)}
    sys.stdout.write(json.dumps(ending) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
