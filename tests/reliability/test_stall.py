"""(b) A client that stops reading while sessions stream, then resumes (issue 15 item 7), on both wires:
the runs finish meanwhile (storage shows it), then every request sent during the stall gets exactly one
answer, every run exactly one run_complete (its last notification) with the whole text, and what is
stored is complete."""

from __future__ import annotations

import collections
import json
import subprocess
import time
from pathlib import Path

from tests.conftest import read_db, scripted
from tests.e2e.runs import finish_reason, text
from tests.raw import RawServer, run_complete_of
from tests.reliability.hostile import scale
from tests.reliability.wire import AcpRaw

SESSIONS = scale(10)
TEXT = "tok " * 5_000
STREAM = {"events": [{"text": TEXT, "chunkSize": 4}]}  # thousands of deltas per run, at once


def wait_finished_in_storage(folder: Path, count: int, timeout: float = 120) -> None:
    """The client reads nothing meanwhile: the runs' progress is seen on disk (another process: no event)."""
    deadline = time.monotonic() + timeout
    while sum(1 for m in read_db(folder)["messages"] if m["role"] == "assistant" and finish_reason(m)) < count:
        assert time.monotonic() < deadline, "the runs did not finish while the client was not reading"
        time.sleep(0.1)


def test_lsp_client_stops_reading_then_resumes(workspace: Path) -> None:
    server = RawServer(workspace, {"model": scripted(STREAM), "streamIntervalMs": 0}, stderr=subprocess.DEVNULL)
    try:
        sessions = [server.request("session/create", {})["result"]["id"] for _ in range(SESSIONS)]
        server.write_together(*({"jsonrpc": "2.0", "id": f"send-{i}", "method": "agent/sendMessage",
                                 "params": {"sessionId": s, "prompt": "go"}} for i, s in enumerate(sessions)))
        wait_finished_in_storage(workspace, SESSIONS)
        asked = [f"during-{i}" for i in range(50)]  # requests sent while nothing is read
        server.write_together(*({"jsonrpc": "2.0", "id": i, "method": "session/list", "params": {}} for i in asked))
        run_ids = []
        for i in range(SESSIONS):
            ack = server.read_until(lambda m, i=i: m.get("id") == f"send-{i}", 60)
            run_ids.append(ack["result"]["runId"])
        for run_id in run_ids:
            if not any(run_complete_of(run_id)(m) for m in server.received):
                server.read_until(run_complete_of(run_id), 60)
        server.request("agent/status", {}, timeout=60)  # everything written before it has been read
        answers = collections.Counter(m["id"] for m in server.received if "id" in m and "method" not in m)
        assert all(answers[i] == 1 for i in asked + [f"send-{n}" for n in range(SESSIONS)]), answers
        notes = [m["params"] for m in server.received if m.get("method") == "agent/notification"]
        for run_id in run_ids:
            of_run = [n for n in notes if n.get("runId") == run_id]
            assert [n["type"] for n in of_run].count("run_complete") == 1 and of_run[-1]["type"] == "run_complete"
            assert of_run[-1]["text"] == TEXT
        for session in sessions:
            stored = server.request("session/messages", {"sessionId": session})["result"]["messages"]
            assert [text(m) for m in stored] == ["go", TEXT]
    finally:
        server.close()


def test_acp_client_stops_reading_then_resumes(workspace: Path) -> None:
    agent = AcpRaw(workspace, {"responses": [STREAM]}, subprocess.DEVNULL)
    try:
        agent.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        sessions = [agent.request("session/new", {"cwd": str(workspace), "mcpServers": []})["result"]["sessionId"]
                    for _ in range(SESSIONS)]
        agent.write_bytes(b"".join(json.dumps({"jsonrpc": "2.0", "id": f"prompt-{i}", "method": "session/prompt",
                                               "params": {"sessionId": s, "prompt": [{"type": "text", "text": "go"}]}
                                               }).encode() + b"\n" for i, s in enumerate(sessions)))
        wait_finished_in_storage(workspace, SESSIONS)
        answers: collections.Counter = collections.Counter()
        chunks: dict[str, str] = collections.defaultdict(str)
        while sum(answers[f"prompt-{i}"] for i in range(SESSIONS)) < SESSIONS:
            message = agent.read_message(60)
            assert message is not None
            if "id" in message and "method" not in message:
                answers[message["id"]] += 1
                assert message["result"]["stopReason"] == "end_turn", message
            elif message.get("method") == "session/update":
                update = message["params"]["update"]
                if update["sessionUpdate"] == "agent_message_chunk":
                    chunks[message["params"]["sessionId"]] += update["content"]["text"]
        agent.request("session/list", {}, timeout=60)  # everything before it has been read
        answers = collections.Counter(m["id"] for m in agent.received if "id" in m and "method" not in m)
        assert all(answers[f"prompt-{i}"] == 1 for i in range(SESSIONS)), answers
        assert all(chunks[s] == TEXT for s in sessions), {s: len(chunks[s]) for s in sessions}
    finally:
        agent.close()
