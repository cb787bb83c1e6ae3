"""What the client is told is what is stored (docs/protocol.md, "Durability").

- A string no database can hold (a lone surrogate) is refused, naming the field (issue 15 item 10).
- A write that fails is never silent to the client whose data it was (item 10).
- A message is committed before `message_created` (and `message_finished`) tell of it; an
  accepted prompt is on disk before its `run_started` (item 14).
- What a killed server left unfinished is finished on the next start, as a cancel would have (item 15).

Storage is held up by another connection holding the database's write lock, as a
second process would: the server's writer waits (up to its 5 s busy timeout) or fails.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import read_db
from tests.e2e.runs import finish_reason
from tests.raw import RawServer, run_complete_of

ECHO = {"model": {"provider": "echo"}}
BUSY_TIMEOUT_S = 5  # the store's PRAGMA busy_timeout


def note(kind: str, run_id: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (m.get("method") == "agent/notification" and m["params"]["type"] == kind
                      and (run_id is None or m["params"].get("runId") == run_id))


def answer_to(msg_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("id") == msg_id and "method" not in m


def wait_seen(server: RawServer, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
    """The first message received so far, or from now on, that matches (read_until skips past others)."""
    for message in server.received:
        if predicate(message):
            return message
    return server.read_until(predicate, timeout)


@contextmanager
def database_held(folder: Path) -> Iterator[None]:
    """Another connection holds the write lock of the workspace's database."""
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def sessions_after_restart(folder: Path, init: dict[str, Any] = ECHO) -> tuple[RawServer, list[dict[str, Any]]]:
    server = RawServer(folder, init)
    return server, server.request("session/list", {})["result"]["sessions"]


def stop(server: RawServer) -> None:
    server.request("shutdown")
    server.notify("exit")
    server.proc.wait(10)
    server.close()


# ---------------------------------------------------------------------- item 10: lone surrogates
def test_a_lone_surrogate_is_refused_naming_the_field_and_nothing_is_lost(tmp_path: Path):
    server = RawServer(tmp_path, ECHO)
    try:
        kept = server.request("session/create", {"title": "kept"})["result"]["id"]
        refused = [
            ("session/create", {"title": "\ud800"}, "params.title"),
            ("session/rename", {"sessionId": kept, "title": "half \udfff"}, "params.title"),
            ("agent/sendMessage", {"sessionId": kept, "prompt": "hi \ud83d"}, "params.prompt"),
            ("agent/sendMessage", {"sessionId": kept, "prompt": "hi", "attachments": [{"path": "\udcff.txt", "text": "x"}]},
             "params.attachments"),
            ("agent/setModel", {"model": {"provider": "echo", "model": "\ud800"}}, "params.model.model"),
        ]
        for method, params, field in refused:
            error = server.request(method, params)["error"]
            assert (error["code"], error["data"]["reason"]) == (-32602, "invalid_params"), (method, error)
            assert field in error["message"] and "surrogate" in error["message"], (method, error)
        fine = server.request("agent/sendMessage", {"sessionId": kept, "prompt": "emoji \U0001f600 ok"})["result"]
        assert server.read_until(run_complete_of(fine["runId"]))["params"]["text"] == "emoji \U0001f600 ok"
        stop(server)
        server, sessions = sessions_after_restart(tmp_path)
        assert [(s["title"], s["messageCount"]) for s in sessions] == [("kept", 2)]
    finally:
        server.close()


# ---------------------------------------------------------------------- item 10: failed writes are heard
def test_a_write_that_fails_reaches_the_client_whose_data_it_was(tmp_path: Path):
    server = RawServer(tmp_path, ECHO)
    try:
        session = server.request("session/create", {})["result"]["id"]
        with database_held(tmp_path):
            created = server.send_request("session/create", {"title": "never stored"})
            run = server.request("agent/sendMessage", {"sessionId": session, "prompt": "lost"})["result"]["runId"]
            refused = wait_seen(server, answer_to(created), 4 * BUSY_TIMEOUT_S)
            error = wait_seen(server, note("agent_error", run), 4 * BUSY_TIMEOUT_S)["params"]
            done = wait_seen(server, run_complete_of(run), 4 * BUSY_TIMEOUT_S)["params"]
        assert refused["error"]["data"]["reason"] == "storage_failed", refused
        assert "locked" in error["message"] and error["willRetry"] is False
        assert done["finishReason"] == "error"
        assert not [m for m in server.received if note("run_started", run)(m) or note("message_created", run)(m)]
        # The session that could not be stored is not listed as if it were; the server goes on working.
        assert [s["id"] for s in server.request("session/list", {})["result"]["sessions"]] == [session]
        again = server.request("agent/sendMessage", {"sessionId": session, "prompt": "kept"})["result"]["runId"]
        assert server.read_until(run_complete_of(again))["params"]["finishReason"] == "end_turn"
        stored = server.request("session/messages", {"sessionId": session})["result"]["messages"]
        assert [m["parts"][0]["text"] for m in stored] == ["kept", "kept"]
    finally:
        server.close()


# ---------------------------------------------------------------------- item 14: durability
def test_nothing_is_announced_before_it_is_committed_and_a_started_prompt_survives_a_kill(tmp_path: Path):
    server = RawServer(tmp_path, ECHO)
    try:
        session = server.request("session/create", {})["result"]["id"]
        with database_held(tmp_path):
            started = time.monotonic()
            run = server.request("agent/sendMessage", {"sessionId": session, "prompt": "remember me"})["result"]
            ack_s = time.monotonic() - started
            # While the writer cannot commit, the run may not say it started nor that a message exists.
            try:
                early = server.read_until(lambda m: note("run_started")(m) or note("message_created")(m), 1.0)
            except TimeoutError:
                early = None
            assert early is None, early
        assert ack_s < BUSY_TIMEOUT_S  # the ack never waits for the disk
        server.read_until(note("run_started", run["runId"]))
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.close()
    on_disk = read_db(tmp_path)
    assert [(m["role"], m["parts"][0]["text"]) for m in on_disk["messages"][:1]] == [("user", "remember me")]


# ---------------------------------------------------------------------- item 15: repair after a kill
def test_what_a_killed_server_left_unfinished_is_finished_on_the_next_start(tmp_path: Path):
    script = {"responses": [
        {"when": "stream", "events": [{"text": "partial "}, {"sleepMs": 60_000}]},
        {"when": "tools", "step": 0, "events": [
            {"toolCall": {"name": "write", "input": {"file_path": "a.txt", "content": "x"}}},
            {"toolCall": {"name": "view", "input": {"file_path": "a.txt"}}},
        ]},
    ]}
    model = {"model": {"provider": "scripted", "script": script}}
    server = RawServer(tmp_path, model, capabilities={"experimental": {"crush": {"permissions": True}}})
    try:
        streaming = server.request("session/create", {"title": "streaming"})["result"]["id"]
        tools = server.request("session/create", {"title": "tools"})["result"]["id"]
        first = server.request("agent/sendMessage", {"sessionId": streaming, "prompt": "stream"})["result"]["runId"]
        server.read_until(note("text_delta", first))
        second = server.request("agent/sendMessage", {"sessionId": tools, "prompt": "tools"})["result"]["runId"]
        server.read_until(lambda m: m.get("method") == "agent/requestPermission")  # never answered
        assert wait_seen(server, note("message_finished", second))["params"]["finishReason"] == "tool_use"
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.close()

    server = RawServer(tmp_path, model)
    try:
        messages = {sid: server.request("session/messages", {"sessionId": sid})["result"]["messages"]
                    for sid in (streaming, tools)}
    finally:
        server.close()
    user, assistant = messages[streaming]
    assert user["parts"][0]["text"] == "stream"
    finish = assistant["parts"][-1]
    assert (finish["type"], finish["reason"]) == ("finish", "canceled") and "nterrupted" in finish["message"]
    user, assistant, *results = messages[tools]
    assert finish_reason(assistant) == "tool_use"
    calls = [p for p in assistant["parts"] if p["type"] == "tool_call"]
    assert [(c["name"], c["status"]) for c in calls] == [("write", "failed"), ("view", "failed")]
    assert [(r["role"], r["parts"][0]["toolCallId"], r["parts"][0]["isError"]) for r in results] == [
        ("tool", calls[0]["id"], True), ("tool", calls[1]["id"], True)]
    assert all("interrupted" in r["parts"][0]["content"] for r in results)
