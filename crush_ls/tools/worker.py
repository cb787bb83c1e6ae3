"""Running a search (search.py) in a worker process that a deadline or a cancel can kill.

The server writes one job (JSON) to the worker's stdin; the worker writes
each line of the result as it is found, then how it ended:

    {"line": "src/a.py:3: import os"}   ...
    {"end": {"truncated": false}}      or   {"error": "directory not found: x"}

The server reads lines until the end, the deadline (then the worker is killed
and the lines so far are the result, marked truncated) or a cancel (killed at
once). Nothing the worker does can hold the server's event loop: a
catastrophic regex or glob only burns the worker's own time.

`CRUSH_LS_SEARCH` picks how glob and grep walk the tree and how grep reads
files: `auto` (default: ripgrep when installed), `ripgrep` or `python`. The
tests run both.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .paths import ToolInputError

# The worker gets this much longer than the search's own deadline before it is killed.
GRACE_S = 2.0


def engine() -> str:
    return os.environ.get("CRUSH_LS_SEARCH", "auto")


async def run_search(job: dict[str, Any], timeout_s: float) -> tuple[list[str], bool]:
    """Run `job` in a worker: (the result's lines, whether it was cut short)."""
    import asyncio

    from ..settings.secrets import child_environment
    from .procs import REAPER, kill_group, spawn

    proc = await spawn(
        sys.executable, "-I", "-m", "crush_ls.tools.worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        limit=2**24, env=child_environment(),  # no keys: a command can read a sibling's /proc/PID/environ
    )
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
    if "error" in ending:
        raise ToolInputError(ending["error"])
    return lines, bool(ending.get("end", {}).get("truncated"))


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
    job = json.loads(sys.stdin.readline())
    try:
        ending: dict[str, Any] = {"end": {"truncated": _run(job)}}
    except ToolInputError as exc:
        ending = {"error": str(exc)}
    sys.stdout.write(json.dumps(ending) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
