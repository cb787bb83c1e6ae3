"""What review and rewind cost through the protocol (issue 14's target: under 200 ms each).

A scripted turn rewrites FILES files (of LINES lines, two lines changed in each), through
the `write` tool, in one step. Then, timed from the request's write to its answer read:
  1. `agent/changes` for that run (every file with before, after, diff and hunks): the first
     call (the hunks computed), then p50 and max over REPEAT calls;
  2. `agent/rewind` to the run's prompt (FILES files restored on disk, its messages hidden) and
     `agent/unrewind` (all put back), p50 and max over REPEAT pairs.
Usage: python bench/changes_rewind.py [--files 200] [--lines 60] [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from accept_latency import Client


def script(files: int, lines: int) -> dict[str, Any]:
    calls = [{"toolCall": {"name": "write", "input": {"file_path": f"src/f{n}.txt", "content": changed(n, lines)}}}
             for n in range(files)]
    return {"responses": [{"when": "rewrite", "step": 0, "events": calls},
                          {"when": "rewrite", "step": 1, "events": [{"text": "done"}]},
                          {"events": [{"echo": True}]}]}


def original(n: int, lines: int) -> str:
    return "".join(f"file {n} line {i}: some text of the file\n" for i in range(lines))


def changed(n: int, lines: int) -> str:
    text = original(n, lines).splitlines(keepends=True)
    text[2], text[lines - 3] = "changed near the top\n", "changed near the end\n"
    return "".join(text)


def wait_complete(client: Client, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.completed < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not complete")
        time.sleep(0.01)


def figures(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{label}: p50 {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).resolve()
        (folder / "src").mkdir()
        for n in range(args.files):
            (folder / "src" / f"f{n}.txt").write_text(original(n, args.lines))
        client = Client([sys.executable, "-m", "crush_ls"], cwd=folder)
        try:
            client.initialize(folder, {"model": {"provider": "scripted", "script": script(args.files, args.lines)},
                                       "permissions": {"mode": "allow"}})
            ws = folder.as_uri()
            _took, session = client.request("session/create", {"workspace": ws})
            _took, sent = client.request("agent/sendMessage", {"workspace": ws, "sessionId": session["id"],
                                                               "prompt": "rewrite every file"})
            wait_complete(client, 1)
            _took, messages = client.request("session/messages", {"workspace": ws, "sessionId": session["id"]})
            prompt = next(m["id"] for m in messages["messages"] if m["role"] == "user")
            params = {"workspace": ws, "sessionId": session["id"]}
            listing: list[float] = []
            for _ in range(args.repeat):
                took, result = client.request("agent/changes", {**params, "runId": sent["runId"]})
                assert len(result["files"]) == args.files and len(result["files"][0]["hunks"]) == 2
                listing.append(took)
            rewinds: list[float] = []
            unrewinds: list[float] = []
            for _ in range(args.repeat):
                took, result = client.request("agent/rewind", {**params, "messageId": prompt})
                assert len(result["restored"]) == args.files and not result["conflicts"], result["conflicts"][:3]
                assert (folder / "src" / "f0.txt").read_text() == original(0, args.lines)
                rewinds.append(took)
                took, result = client.request("agent/unrewind", params)
                assert len(result["restored"]) == args.files
                unrewinds.append(took)
        finally:
            client.close()
    print(f"a turn that rewrote {args.files} files of {args.lines} lines (2 hunks each):")
    print(f"  agent/changes, first call (hunks computed): {listing[0] * 1000:.1f} ms")
    print(figures("  agent/changes (the run; the hunks of the same texts are kept)", listing))
    print(figures(f"  agent/rewind ({args.files} files restored)", rewinds))
    print(figures(f"  agent/unrewind ({args.files} files put back)", unrewinds))


if __name__ == "__main__":
    main()
