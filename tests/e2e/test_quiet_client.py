"""A client that stops reading does not stall or end its runs (PROTOCOL: the run belongs to the workspace)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.raw import RawServer, run_complete_of


def finished_assistant_messages(folder: Path) -> list[str]:
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db")
    try:
        rows = db.execute("SELECT parts FROM messages WHERE role='assistant'").fetchall()
    finally:
        db.close()
    return [parts for (parts,) in rows if '"type": "finish"' in parts]


def test_run_finishes_while_the_client_reads_nothing(workspace: Path):
    # About 4 MB of notifications, streamed over a second or two: far more than a pipe
    # holds, so a writer that blocked on the full pipe would stall the whole server.
    text = "quiet client words " * 200_000
    script = {"responses": [{"events": [{"text": text, "chunkSize": 4000, "delayMs": 1}]}]}
    server = RawServer(workspace, {"model": {"provider": "scripted", "script": script}, "streamIntervalMs": 0})
    try:
        session = server.request("session/create", {})["result"]["id"]
        server.send_request("agent/sendMessage", {"sessionId": session, "prompt": "quiet client words", "runId": "q"})
        deadline = time.monotonic() + 30
        while not finished_assistant_messages(workspace):  # polling the disk: the client reads nothing meanwhile
            assert time.monotonic() < deadline, "the run stalled while its client was not reading"
            time.sleep(0.05)
        done = server.read_until(run_complete_of("q"), timeout=30)
        assert done["params"]["finishReason"] == "end_turn"
        assert done["params"]["text"] == text
    finally:
        server.close()
