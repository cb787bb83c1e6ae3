"""grep / glob / ls over a generated tree: the tools (in their worker), with each engine, against ripgrep alone.

    python bench/search_tree.py [FILES] [--keep DIR] [--runs N] [--only WORD]

Prints the median of N runs (default 5) of each, and each tool's time over
ripgrep's for the same question. The tree has FILES files (default 100,000,
issue 14's target) of ~40 lines in directories of 50, a .gitignore and an
ignored directory; one file in 1,000 holds the needle. `--keep DIR` builds
the tree in DIR once and reuses it (a 100,000-file tree takes a minute or
two to write). `--only glob` (or grep, ls, worker) takes those rows alone.

ripgrep alone is timed twice where the tool's answer needs more than
ripgrep's default: `glob` and `grep` order files newest first, which ripgrep
does only with `--sortr=modified` (single-threaded); `ls` is a tree of at
most 1,000 entries, which ripgrep cannot print: its row is
`rg --files --max-depth 3`.

The tool's `glob` is ripgrep sorting by time (two of them, each walking part
of the tree) and its own check for a deeper .crushignore: for `**/*.py` every
file's modification time is read, which plain `rg --files` never does (on a
2-core VM that alone costs more than its whole walk), so the row to compare
it with is `--sortr=modified`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crush_ls.tools.walk import ripgrep
from crush_ls.tools.worker import keep_spare, run_search

BUILT = ".search_tree_built"  # in a --keep tree: how many files it has


def make_tree(root: Path, files: int) -> None:
    if (root / BUILT).exists() and (root / BUILT).read_text() == str(files):
        return
    (root / ".gitignore").write_text("build/\n*.log\n")
    body = "".join(f"line {n} of some source text = value_{n}\n" for n in range(40))
    for i in range(files):
        folder = root / f"pkg{i // 2500}" / f"mod{(i // 50) % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        text = body + ("the needle is here\n" if i % 1000 == 0 else "")
        (folder / f"file{i}.py").write_text(text)
    (root / "build").mkdir(exist_ok=True)
    (root / "build" / "out.py").write_text("the needle is here\n")
    (root / BUILT).write_text(str(files))


def median_ms(fn: Callable[[], object], runs: int, pause: float = 0.2) -> float:
    """The median time of `fn`; between runs (untimed) `pause` s, as a model's turn between two tool calls:
    the worker the previous search left starting is ready."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
        LOOP.run_until_complete(asyncio.sleep(pause))
    return statistics.median(times)


# One event loop for every call, as in the server: a search takes the worker the previous one left started.
LOOP = asyncio.new_event_loop()
keep_spare()


def tool(op: str, root: Path, **job: Any) -> None:
    lines, _ = LOOP.run_until_complete(run_search({"op": op, "root": str(root), "start": str(root), **job}, 60))
    assert lines


def rg_alone(rg: str, root: Path, *args: str) -> Callable[[], object]:
    return lambda: subprocess.run([rg, "--no-config", *args, str(root)], capture_output=True, check=False)


def rows(root: Path, rg: str | None, runs: int, only: str = "") -> list[tuple[str, float, list[float]]]:
    """(label, ms, ms of the ripgrep rows it is compared with); `only` the questions whose label starts so."""
    out: list[tuple[str, float, list[float]]] = []

    def row(label: str, fn: Callable[[], object], against: list[float] | None = None, pause: float = 0.2) -> float:
        ms = median_ms(fn, runs, pause)
        out.append((label, ms, against or []))
        return ms

    engines = ["ripgrep", "python"] if rg else ["python"]
    if "worker floor".startswith(only[:12]):
        row("worker floor: ls of an empty folder", lambda: tool("ls", root / "build", ignore=[], depth=1))
        row("  the same, back to back", lambda: tool("ls", root / "build", ignore=[], depth=1), pause=0)
    cases: list[tuple[str, list[list[str]], dict[str, Any]]] = [
        ("grep needle", [["-n", "needle"], ["-n", "--sortr=modified", "needle"]],
         {"op": "grep", "pattern": "needle", "include": None}),
        ("grep needle, include file1*.py", [["-n", "-g", "file1*.py", "needle"]],
         {"op": "grep", "pattern": "needle", "include": "file1*.py"}),
        ("grep 'value_3\\b' (every file)", [["-n", "--max-count=1", r"value_3\b"]],
         {"op": "grep", "pattern": r"value_3\b", "include": None}),
        ("glob **/*.py", [["--files"], ["--files", "--sortr=modified"]], {"op": "glob", "pattern": "**/*.py"}),
        ("glob file1?.py", [["--files", "-g", "file1?.py"]], {"op": "glob", "pattern": "file1?.py"}),
    ]
    for label, rg_args, job in [case for case in cases if case[0].startswith(only)]:
        against = [row(f"  rg {' '.join(args)}", rg_alone(rg, root, *args)) for args in rg_args] if rg else []
        for engine in engines:
            row(f"{label}: tool, {engine}", lambda job=job, engine=engine: tool(root=root, engine=engine, **job),
                against)
    if "ls (depth 3".startswith(only[:11]):
        ls_rg = rg_alone(rg, root, "--files", "--max-depth", "3") if rg else None
        ls_against = [row("  rg --files --max-depth 3", ls_rg)] if ls_rg else []
        row("ls (depth 3, 1000 entries): tool", lambda: tool("ls", root, ignore=[], depth=3), ls_against)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="?", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the tree here once and reuse it")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="only the rows of this tool: glob, grep, ls or worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        make_tree(root, args.files)
        rg = ripgrep()
        print(f"tree: {args.files} files; ripgrep: {rg or 'not installed'}; cpus: {os.cpu_count()}; "
              f"load: {os.getloadavg()[0]:.1f}")
        print("(a tool's ratios are over each ripgrep row just above it, in order)")
        for label, ms, against in rows(root, rg, args.runs, args.only):
            ratio = ("  " + " / ".join(f"{ms / a:.2f}x" for a in against)) if against else ""
            print(f"{label:48} {ms:9.1f} ms{ratio}")


if __name__ == "__main__":
    main()
