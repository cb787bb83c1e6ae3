"""grep / glob / ls over a generated tree: the tools (in their worker) against ripgrep alone.

    python bench/search_tree.py [FILES] [--keep DIR]

Prints the median of 5 runs of each. The tree has FILES files (default
10,900, issue 14's figure) of ~40 lines in directories of 50, a .gitignore
and an ignored directory; one line in 1,000 files holds the needle.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crush_ls.tools.search import ripgrep
from crush_ls.tools.worker import run_search


def make_tree(root: Path, files: int) -> None:
    (root / ".gitignore").write_text("build/\n*.log\n")
    body = "".join(f"line {n} of some source text = value_{n}\n" for n in range(40))
    for i in range(files):
        folder = root / f"pkg{i // 2500}" / f"mod{(i // 50) % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        text = body + ("the needle is here\n" if i % 1000 == 0 else "")
        (folder / f"file{i}.py").write_text(text)
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("the needle is here\n")


def median_ms(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def tool(op: str, root: Path, **job) -> None:
    lines, _ = asyncio.run(run_search({"op": op, "root": str(root), "start": str(root), **job}, 60))
    assert lines


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_900
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, files)
        rg = ripgrep()
        print(f"tree: {files} files; ripgrep: {rg or 'not installed'}; cpus: {os.cpu_count()}")
        rows = []
        if rg:
            rows.append(("ripgrep alone: rg -n needle", median_ms(
                lambda: subprocess.run([rg, "--no-config", "-n", "needle", str(root)], capture_output=True))))
            rows.append(("ripgrep alone, sorted by time", median_ms(
                lambda: subprocess.run([rg, "--no-config", "-n", "--sortr=modified", "needle", str(root)],
                                       capture_output=True))))
            rows.append(("grep tool, ripgrep engine", median_ms(
                lambda: tool("grep", root, pattern="needle", include=None, engine="ripgrep"))))
        rows.append(("grep tool, Python engine", median_ms(
            lambda: tool("grep", root, pattern="needle", include=None, engine="python"))))
        rows.append(("glob tool: **/*.py", median_ms(lambda: tool("glob", root, pattern="**/*.py"))))
        rows.append(("ls tool (depth 3)", median_ms(lambda: tool("ls", root, ignore=[], depth=3))))
        for label, ms in rows:
            print(f"{label:34} {ms:9.1f} ms")


if __name__ == "__main__":
    main()
