"""crush-ls at scale: many sessions streaming at once in one workspace, and many workspaces in one server.

  A. One workspace, SESSIONS sessions (default 1000). A prompt is sent to each,
     one after another, each as soon as the previous one is acknowledged, so
     that the later acks are taken while all the earlier runs stream (the
     scripted model streams CHUNKS pieces, DELAY ms apart). Prints the ack
     latency (p50, p99, max), whether any notification was lost or reordered
     (`seq` gapless and increasing over the connection; per run: nothing
     before its ack, one `run_complete` and it last, the streamed text equal
     to the script), the wall time until every run completed and the
     server's RSS (peak and at the end).
  B. WORKSPACES folders (default 20) in one server: a few sessions each, one
     prompt per session at once; the same checks, acks and RSS.

One client thread reads and times everything (floor_bench's Peer), so no
reader thread competes with the timing. Issue 14's targets: ack p99 < 5 ms,
nothing lost or reordered, RSS < 200 MB. The machine may be shared: compare
with bench/floor_bench.py's peers of the same moment.

    .venv/bin/python bench/scale.py                     # A with 1000 sessions, B with 20 workspaces
    .venv/bin/python bench/scale.py --sessions 200 --workspaces 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor_bench import BenchError, LspFraming, Peer, make_text, pct, proc_cpu_s


@dataclass
class RunLog:
    session: str
    workspace: str
    sent_ns: int
    acked_ns: int | None = None
    parts: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    early: int = 0  # notifications before the ack
    after_complete: int = 0  # notifications after run_complete


class Checker:
    """Reads the server's output, times the acks and checks every notification."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.runs: dict[str, RunLog] = {}
        self.by_id: dict[int, str] = {}
        self.last_seq = 0
        self.seq_faults = 0
        self.rss_peak_kb = 0
        self._reads = 0

    def prompt(self, workspace: str, session: str, run_id: str) -> None:
        params = {"workspace": workspace, "sessionId": session, "prompt": "scale", "runId": run_id}
        req_id, sent = self.peer.request("agent/sendMessage", params)
        self.runs[run_id] = RunLog(session, workspace, sent)
        self.by_id[req_id] = run_id

    def pump(self, until: Any, timeout_s: float = 120.0) -> None:
        """Handle messages until `until()` holds."""
        deadline = time.monotonic() + timeout_s
        while not until():
            if time.monotonic() > deadline:
                raise BenchError("timed out")
            t, msg = self.peer.recv(timeout_s)
            self._reads += 1
            if self._reads % 2000 == 0:
                self.rss_peak_kb = max(self.rss_peak_kb, rss_kb(self.peer.proc.pid))
            if "method" not in msg:
                run_id = self.by_id.pop(msg.get("id"), None)
                if run_id is not None:
                    if "error" in msg or not (msg.get("result") or {}).get("accepted"):
                        raise BenchError(f"prompt {run_id} refused: {msg}")
                    self.runs[run_id].acked_ns = t
                continue
            if msg["method"] != "agent/notification":
                continue
            note = msg["params"]
            if note["seq"] != self.last_seq + 1:
                self.seq_faults += 1
            self.last_seq = note["seq"]
            run = self.runs.get(note.get("runId", ""))
            if run is None:
                continue
            if run.acked_ns is None:
                run.early += 1
            if run.types and run.types[-1] == "run_complete":
                run.after_complete += 1
            run.types.append(note["type"])
            if note["type"] == "text_delta":
                run.parts.append(note["text"])

    def completed(self) -> int:
        return sum(1 for r in self.runs.values() if "run_complete" in r.types)

    def report(self, text: str) -> dict[str, Any]:
        acks = [(r.acked_ns - r.sent_ns) / 1e6 for r in self.runs.values() if r.acked_ns is not None]
        bad_text = sum(1 for r in self.runs.values() if "".join(r.parts) != text)
        bad_order = sum(1 for r in self.runs.values()
                        if r.early or r.after_complete or r.types.count("run_complete") != 1)
        return {"runs": len(self.runs), "ack_p50_ms": pct(acks, 50), "ack_p99_ms": pct(acks, 99),
                "ack_max_ms": max(acks), "notifications": self.last_seq, "seq_faults": self.seq_faults,
                "runs_with_other_text": bad_text, "runs_out_of_order": bad_order,
                "rss_peak_mb": max(self.rss_peak_kb, rss_kb(self.peer.proc.pid)) / 1024,
                "rss_end_mb": rss_kb(self.peer.proc.pid) / 1024}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start(cmd: list[str], folders: list[Path], text: str, args: argparse.Namespace) -> Peer:
    env = {**os.environ, "CRUSH_GLOBAL_CONFIG": "/nonexistent", "CRUSH_GLOBAL_DATA": "/nonexistent"}
    peer = Peer(cmd, LspFraming(), env, str(folders[0]), "crush-ls")
    script = {"responses": [{"events": [{"text": text, "chunkSize": args.chunk_size, "delayMs": args.delay_ms}]}]}
    options: dict[str, Any] = {"model": {"provider": "scripted", "script": script}}
    if args.stream_interval_ms >= 0:
        options["streamIntervalMs"] = args.stream_interval_ms
    peer.call("initialize", {"processId": os.getpid(), "capabilities": {}, "initializationOptions": options,
                             "workspaceFolders": [{"uri": f.as_uri(), "name": f.name} for f in folders]}, 60)
    peer.notify("initialized", {})
    return peer


def sessions(peer: Peer, workspace: str, count: int) -> list[str]:
    return [peer.call("session/create", {"workspace": workspace, "title": f"s{n}"}, 60)[0]["id"]
            for n in range(count)]


def stop(peer: Peer) -> None:
    try:
        peer.call("shutdown", None, 60)
        peer.notify("exit", None)
    except (BenchError, OSError) as exc:
        print(f"shutdown: {exc}", file=sys.stderr)
    peer.close()


def one_workspace(cmd: list[str], args: argparse.Namespace, text: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="scale-a-"))
    try:
        peer = start(cmd, [root], text, args)
        ws = root.as_uri()
        ids = sessions(peer, ws, args.sessions)
        check = Checker(peer)
        t0, cpu0 = time.perf_counter(), proc_cpu_s(peer.proc.pid)
        for n, sid in enumerate(ids):
            check.prompt(ws, sid, f"a{n}")
            run = check.runs[f"a{n}"]
            check.pump(lambda run=run: run.acked_ns is not None)
        check.pump(lambda: check.completed() == len(ids), timeout_s=600)
        result = check.report(text) | {"all_done_s": time.perf_counter() - t0,
                                       "server_cpu_s": proc_cpu_s(peer.proc.pid) - cpu0}
        stop(peer)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def many_workspaces(cmd: list[str], args: argparse.Namespace, text: str) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="scale-b-"))
    folders = [base / f"w{n:02d}" for n in range(args.workspaces)]
    for folder in folders:
        folder.mkdir()
    try:
        t0 = time.perf_counter()
        peer = start(cmd, folders, text, args)
        per = {f.as_uri(): sessions(peer, f.as_uri(), args.sessions_per_workspace) for f in folders}
        opened = time.perf_counter() - t0
        check = Checker(peer)
        t0, cpu0 = time.perf_counter(), proc_cpu_s(peer.proc.pid)
        for n, (ws, sids) in enumerate(per.items()):
            for m, sid in enumerate(sids):
                check.prompt(ws, sid, f"b{n}-{m}")  # all at once: the acks queue behind each other
        total = len(folders) * args.sessions_per_workspace
        check.pump(lambda: check.completed() == total, timeout_s=600)
        result = check.report(text) | {"all_done_s": time.perf_counter() - t0, "open_and_create_s": opened,
                                       "server_cpu_s": proc_cpu_s(peer.proc.pid) - cpu0}
        stop(peer)
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def show(title: str, r: dict[str, Any]) -> None:
    lost = r["seq_faults"] + r["runs_with_other_text"] + r["runs_out_of_order"]
    print(f"{title}: {r['runs']} runs, {r['notifications']:,} notifications")
    print(f"  ack p50 {r['ack_p50_ms']:.2f} ms, p99 {r['ack_p99_ms']:.2f} ms, max {r['ack_max_ms']:.2f} ms")
    print(f"  lost or reordered: {lost or 'none'} (seq gaps {r['seq_faults']}, runs with other text "
          f"{r['runs_with_other_text']}, runs out of order {r['runs_out_of_order']})")
    print(f"  RSS peak {r['rss_peak_mb']:.0f} MB, at the end {r['rss_end_mb']:.0f} MB; "
          f"every run done after {r['all_done_s']:.1f} s, server CPU {r['server_cpu_s']:.2f} s "
          f"({r['server_cpu_s'] / r['runs'] * 1e3:.2f} ms per run); load {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crush-ls", default=f"{sys.executable} -m crush_ls", help="the command that starts crush-ls")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--workspaces", type=int, default=20)
    ap.add_argument("--sessions-per-workspace", type=int, default=5)
    ap.add_argument("--chunks", type=int, default=50, help="pieces of text each run streams")
    ap.add_argument("--chunk-size", type=int, default=20)
    ap.add_argument("--delay-ms", type=float, default=40, help="between two pieces")
    ap.add_argument("--stream-interval-ms", type=int, default=-1, help="streamIntervalMs (<0: the server's default)")
    ap.add_argument("--skip", choices=["a", "b"], action="append", default=[])
    args = ap.parse_args(argv)
    cmd = args.crush_ls.split()
    text = make_text(args.chunks, args.chunk_size)
    failures = 0
    for part, title, fn in (("a", f"A. {args.sessions} sessions streaming in one workspace", one_workspace),
                            ("b", f"B. {args.workspaces} workspaces in one server", many_workspaces)):
        if part in args.skip:
            continue
        r = fn(cmd, args, text)
        show(title, r)
        failures += r["seq_faults"] + r["runs_with_other_text"] + r["runs_out_of_order"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
