"""(c) SIGKILLs in the middle of turns, the database checked after each restart (issue 15 items 13-15):
`PRAGMA integrity_check` is ok, every message `message_created` announced is stored, every prompt whose
`run_started` was sent is stored, nothing is left streaming (assistant messages finished, tool calls
with a result), and no bash command outlives the server. CRUSH_LS_RELIABILITY_SCALE multiplies the kills."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import scripted
from tests.processes import pid_ended
from tests.raw import RawServer
from tests.reliability.hostile import SEED, scale

KILLS = scale(20)
SLEEP = "sleep 41.25"  # the bash command a turn is killed in; its command line marks it in /proc
MODEL = {"model": scripted(
    {"when": "stream", "events": [{"text": "words " * 400, "chunkSize": 6, "delayMs": 1}]},
    {"when": "tools", "step": 0, "events": [
        {"toolCall": {"name": "write", "input": {"file_path": "a.txt", "content": "x\n"}}},
        {"toolCall": {"name": "bash", "input": {"command": SLEEP}}},
    ]},
    {"when": "tools", "events": [{"text": "done"}]},
), "permissions": {"mode": "allow"}, "streamIntervalMs": 0}


def notes(server: RawServer, kind: str) -> list[dict[str, Any]]:
    return [m["params"] for m in server.received
            if m.get("method") == "agent/notification" and m["params"]["type"] == kind]


def turns_then_kill(server: RawServer, sessions: list[str], tag: str, after: int) -> dict[Any, str]:
    """Prompts in each session, then SIGKILL once `after` notifications have been read; {request id: prompt}."""
    prompts = {}
    for n, session in enumerate(sessions):
        prompt = f"{('stream', 'tools')[n % 2]} {tag}-{n}"
        prompts[server.send_request("agent/sendMessage", {"sessionId": session, "prompt": prompt})] = prompt
    seen = 0
    while seen < after:
        message = server.read_message(20)
        assert message is not None, "the server ended by itself"
        seen += message.get("method") == "agent/notification"
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    return prompts


def started_prompts(server: RawServer, prompts: dict[Any, str]) -> set[str]:
    """The prompts whose run_started the client read before the kill."""
    runs = {n["runId"] for n in notes(server, "run_started")}
    acks = {m["id"]: m["result"]["runId"] for m in server.received
            if m.get("id") in prompts and "method" not in m and "result" in m}
    return {prompts[i] for i, run in acks.items() if run in runs}


def restart(folder: Path, log_path: Path) -> RawServer:
    """A server on the folder, initialized; the wait is long: on a loaded machine a start can take seconds."""
    with log_path.open("wb") as log:  # a pipe nobody reads could fill and block it
        server = RawServer(folder, initialize=False, stderr=log)
    answer = server.request("initialize", {"processId": os.getpid(), "capabilities": {},
                                           "workspaceFolders": [{"uri": server.uri, "name": folder.name}],
                                           "initializationOptions": MODEL}, timeout=60)
    assert "result" in answer, answer
    server.notify("initialized", {})
    return server


def sleepers() -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").strip() == SLEEP.encode():
                found.append(int(entry))
        except OSError:
            pass
    return found


def check_after_restart(folder: Path, server: RawServer, announced: set[str], started: set[str]) -> tuple[int, int]:
    """What the previous server told is there and finished; (messages stored, of them finished as interrupted)."""
    listed = server.request("session/list", {})["result"]["sessions"]
    messages = [m for s in listed for m in server.request("session/messages", {"sessionId": s["id"]})["result"]["messages"]]
    ids = {m["id"] for m in messages}
    assert announced <= ids, f"announced but lost: {announced - ids}"
    prompts = {p["text"] for m in messages if m["role"] == "user" for p in m["parts"] if p["type"] == "text"}
    assert started <= prompts, f"started but lost: {started - prompts}"
    results = {m["parts"][0]["toolCallId"] for m in messages if m["role"] == "tool"}
    for message in messages:
        if message["role"] == "assistant":
            assert any(p["type"] == "finish" for p in message["parts"]), f"left streaming: {message}"
            for call in (p for p in message["parts"] if p["type"] == "tool_call"):
                assert call["status"] not in ("pending", "running") and call["id"] in results, call
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()
    interrupted = sum(1 for m in messages if any("nterrupted" in str(p.get("message", "")) for p in m["parts"]))
    return len(messages), interrupted


def test_sigkills_during_turns_lose_nothing_announced_and_leave_nothing_running(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    rng = random.Random(SEED)
    announced: set[str] = set()
    started: set[str] = set()
    stored = interrupted = outlived = 0
    for kill in range(KILLS + 1):
        server = restart(folder, tmp_path / f"stderr-{kill}.log")
        try:
            stored, interrupted = check_after_restart(folder, server, announced, started)
            if kill == KILLS:
                break
            sessions = [server.request("session/create", {})["result"]["id"] for _ in range(rng.randrange(1, 4))]
            prompts = turns_then_kill(server, sessions, f"k{kill}", rng.randrange(0, 60))
            announced |= {n["message"]["id"] for n in notes(server, "message_created")}
            started |= started_prompts(server, prompts)
        finally:
            server.close()
        for pid in sleepers():
            outlived += 1
            assert pid_ended(pid, timeout=10), f"bash command {pid} outlived the killed server"
    assert interrupted, "no kill landed in the middle of a turn: the seed tests nothing"
    with capsys.disabled():
        print(f"\nkills: {KILLS}, messages announced {len(announced)}, prompts started {len(started)}, "
              f"stored at the end {stored}, finished as interrupted {interrupted}, "
              f"bash commands running at a kill (all ended) {outlived}, lost 0")
