"""session/* through the real protocol, what is on disk, and what survives a restart.

PROTOCOL section 1 (data directory), section 2 (session/* requests) and
section 6 (Session, Message, Part shapes).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import AgentClient, read_db, say, scripted, server_env
from tests.e2e.expect import refused_with

SESSION_KEYS = {"id", "title", "createdAt", "updatedAt", "messageCount", "promptTokens", "completionTokens",
                "cost", "busy"}
READ_A_FILE = scripted(
    {"when": "read", "step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "a.txt"}}}]},
    {"when": "read", "step": 1, "events": [{"text": "The file says alpha.", "chunkSize": 5},
                                           {"usage": {"inputTokens": 120, "outputTokens": 7}}]},
    {"when": "slow", "events": [{"text": "partial answer ", "chunkSize": 8}, {"sleepMs": 5000}, {"text": "never"}]},
    say("ok"),
)


def ws(client: AgentClient, **params: Any) -> dict[str, Any]:
    return {"workspace": client.ws_uri, **params}


def parse_time(value: str) -> datetime:
    assert value.endswith("Z") or value.endswith("+00:00"), f"not UTC: {value}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_session_shape(session: dict[str, Any]) -> None:
    assert set(session) == SESSION_KEYS
    assert isinstance(session["id"], str) and session["id"]
    assert parse_time(session["createdAt"]) <= parse_time(session["updatedAt"])
    assert isinstance(session["busy"], bool)


async def run_to_end(client: AgentClient, session: str, prompt: str) -> dict[str, Any]:
    return await client.completed((await client.send(session, prompt))["runId"])


# ---------------------------------------------------------------------- create, list, get
async def test_create_list_get(start):
    client = await start({"model": READ_A_FILE})
    first = await client.call("session/create", ws(client))
    assert_session_shape(first)
    assert first["title"] == "New Session"
    assert (first["messageCount"], first["promptTokens"], first["completionTokens"], first["cost"], first["busy"]) \
        == (0, 0, 0, 0, False)
    second = await client.call("session/create", ws(client, title="Second one"))
    third = await client.call("session/create", {})  # one workspace open: it may be left out
    assert second["title"] == "Second one"
    listed = (await client.call("session/list", ws(client)))["sessions"]
    assert [s["id"] for s in listed] == [third["id"], second["id"], first["id"]]  # newest first
    assert listed[1] == second
    assert await client.call("session/get", ws(client, sessionId=second["id"])) == second
    await client.shutdown_session()  # storage is write-behind: on disk for sure once shut down
    on_disk = read_db(client.root)["sessions"]
    assert {(s["id"], s["title"]) for s in on_disk} == {(s["id"], s["title"]) for s in listed}


async def test_messages_oldest_first_with_documented_shapes(start):
    client = await start({"model": READ_A_FILE})
    (client.root / "a.txt").write_text("alpha\n")
    session = await client.new_session()
    result = await client.send(session, "read a.txt please")
    done = await client.completed(result["runId"])
    assert (done["finishReason"], done["text"]) == ("end_turn", "The file says alpha.")
    messages = await client.session_messages(session)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    created = [n["message"]["id"] for n in client.of_run(result["runId"]) if n["type"] == "message_created"]
    assert [m["id"] for m in messages] == created  # the same messages, in the order they were made
    times = [parse_time(m["createdAt"]) for m in messages]
    assert times == sorted(times)
    for message in messages:
        assert {"id", "sessionId", "role", "parts", "createdAt", "updatedAt"} <= set(message)
        assert message["sessionId"] == session

    user, call, tool, answer = messages
    assert user["parts"] == [{"type": "text", "text": "read a.txt please"}]
    tool_call = next(p for p in call["parts"] if p["type"] == "tool_call")
    assert tool_call == {"type": "tool_call", "id": tool_call["id"], "name": "view",
                         "input": {"file_path": "a.txt"}, "status": "completed"}
    assert_finish(call, "tool_use")
    assert (call["provider"], call["model"]) == ("scripted", "scripted")
    (tool_result,) = tool["parts"]
    assert {k: tool_result[k] for k in ("type", "toolCallId", "name", "isError")} == \
        {"type": "tool_result", "toolCallId": tool_call["id"], "name": "view", "isError": False}
    assert "alpha" in tool_result["content"]
    assert [p for p in answer["parts"] if p["type"] == "text"] == [{"type": "text", "text": "The file says alpha."}]
    assert_finish(answer, "end_turn")
    got = await client.call("session/get", ws(client, sessionId=session))
    assert got["messageCount"] == 4 and got["title"] == "read a.txt please" and got["busy"] is False


def assert_finish(message: dict[str, Any], reason: str) -> dict[str, Any]:
    finishes = [p for p in message["parts"] if p["type"] == "finish"]
    assert len(finishes) == 1 and message["parts"][-1] is finishes[0], message["parts"]
    assert finishes[0]["reason"] == reason
    parse_time(finishes[0]["time"])
    return finishes[0]


# ---------------------------------------------------------------------- rename
async def test_rename(start):
    client = await start({"model": READ_A_FILE})
    session = await client.new_session("old name")
    renamed = await client.call("session/rename", ws(client, sessionId=session, title="New name"))
    assert_session_shape(renamed)
    assert (renamed["id"], renamed["title"]) == (session, "New name")
    assert (await client.call("session/get", ws(client, sessionId=session)))["title"] == "New name"
    update = await client.wait_for(lambda n: n["type"] == "session_updated")
    assert update["session"]["title"] == "New name" and "runId" not in update
    for bad in ({"title": ""}, {"title": "   "}, {}, {"title": 5}, {"title": None}):
        await refused_with(client, "session/rename", ws(client, sessionId=session, **bad), "invalid_params", -32602)
    assert (await client.call("session/get", ws(client, sessionId=session)))["title"] == "New name"
    await client.shutdown_session()
    assert [s["title"] for s in read_db(client.root)["sessions"]] == ["New name"]


# ---------------------------------------------------------------------- delete
async def test_delete_cancels_its_runs_first(start):
    client = await start({"model": READ_A_FILE})
    keep = await client.new_session("keep")
    doomed = await client.new_session("doomed")
    active = await client.send(doomed, "slow one", runId="active")
    queued = await client.send(doomed, "slow two", runId="queued")
    assert queued["queued"] is True
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == "active")
    assert await client.call("session/delete", ws(client, sessionId=doomed)) == {}
    # Both runs ended, each once, canceled, before the delete replied.
    for run_id in (active["runId"], queued["runId"]):
        types = client.types_of(run_id)
        assert types.count("run_complete") == 1 and types[-1] == "run_complete", types
        assert client.of_run(run_id)[-1]["finishReason"] == "canceled"
    for method in ("session/get", "session/messages", "session/rename", "session/delete"):
        await refused_with(client, method, ws(client, sessionId=doomed, title="x"), "session_not_found", -32014)
    await refused_with(client, "agent/sendMessage", ws(client, sessionId=doomed, prompt="hi"),
                       "session_not_found", -32014)
    assert [s["id"] for s in (await client.call("session/list", ws(client)))["sessions"]] == [keep]
    # The workspace goes on.
    assert (await run_to_end(client, keep, "hello"))["finishReason"] == "end_turn"
    await client.shutdown_session()
    on_disk = read_db(client.root)
    assert [s["id"] for s in on_disk["sessions"]] == [keep]
    assert {m["session_id"] for m in on_disk["messages"]} == {keep}


async def test_unknown_or_missing_session_for_each_session_method(start):
    client = await start({"model": READ_A_FILE})
    for method in ("session/get", "session/messages", "session/rename", "session/delete"):
        await refused_with(client, method, ws(client, sessionId="ghost", title="t"), "session_not_found", -32014)
        await refused_with(client, method, ws(client, title="t"), "session_missing", -32602)
        await refused_with(client, method, ws(client, sessionId=7, title="t"), "invalid_params", -32602)
        await refused_with(client, method, ws(client, sessionId="ghost", workspace="file:///nowhere", title="t"),
                           "workspace_not_found", -32011)
    await refused_with(client, "session/create", ws(client, title=5), "invalid_params", -32602)
    await refused_with(client, "session/list", {"workspace": "file:///nowhere"}, "workspace_not_found", -32011)


# ---------------------------------------------------------------------- persistence
async def test_sessions_and_messages_survive_a_restart(start, workspace: Path):
    (workspace / "a.txt").write_text("alpha\n")
    client = await start({"model": READ_A_FILE})
    done_session = await client.new_session("finished")
    await run_to_end(client, done_session, "read a.txt")
    canceled_session = await client.new_session("interrupted")
    run = await client.send(canceled_session, "slow please", runId="interrupted")
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == "interrupted")
    assert (await client.call("agent/cancel", ws(client, sessionId=canceled_session)))["canceled"] == 1
    assert (await client.completed(run["runId"]))["finishReason"] == "canceled"
    before = await snapshot(client)
    finished = next(s for s in before["sessions"] if s["id"] == done_session)
    assert finished["promptTokens"] + finished["completionTokens"] > 0  # counters are part of what must survive
    await client.shutdown_session()

    again = await start({"model": READ_A_FILE})
    after = await snapshot(again)
    assert after == before
    user, assistant = after["messages"][canceled_session]
    assert (user["role"], user["parts"]) == ("user", [{"type": "text", "text": "slow please"}])
    assert assistant["role"] == "assistant"
    assert [p["text"] for p in assistant["parts"] if p["type"] == "text"] == ["partial answer "]
    assert_finish(assistant, "canceled")
    # The restored session takes new prompts and keeps its history.
    assert (await run_to_end(again, canceled_session, "hello"))["text"] == "ok"
    assert len(await again.session_messages(canceled_session)) == 4


async def snapshot(client: AgentClient) -> dict[str, Any]:
    sessions = (await client.call("session/list", ws(client)))["sessions"]
    return {
        "sessions": sessions,
        "messages": {s["id"]: await client.session_messages(s["id"]) for s in sessions},
    }


# ---------------------------------------------------------------------- the data directory
def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


async def test_default_data_directory_gets_a_gitignore(start, workspace: Path):
    client = await start({"model": READ_A_FILE})
    session = await client.new_session()
    await run_to_end(client, session, "hello")
    await client.shutdown_session()
    data = workspace / ".crush"
    assert (data / ".gitignore").read_text().strip() == "*"
    assert (data / "crush-ls.db").is_file()
    assert not (data / "crush.db").exists()  # Crush's own database is never created
    assert len(read_db(workspace)["messages"]) == 2


async def test_existing_gitignore_and_crush_db_are_never_touched(start, workspace: Path):
    data = workspace / ".crush"
    data.mkdir()
    (data / ".gitignore").write_text("# mine\ncrush.db\n")
    (data / "crush.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)
    os.utime(data / "crush.db", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = {name: fingerprint(data / name) for name in (".gitignore", "crush.db")}
    client = await start({"model": READ_A_FILE})
    session = await client.new_session()
    await run_to_end(client, session, "hello")
    await client.shutdown_session()
    assert {name: fingerprint(data / name) for name in (".gitignore", "crush.db")} == before
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("crush.db")) == ["crush.db"]
    assert len(read_db(workspace)["messages"]) == 2


async def test_custom_data_directory(start, workspace: Path):
    custom = workspace / "state" / "agent"
    custom.mkdir(parents=True)  # an existing directory without a .gitignore still gets one
    (custom / "crush.db").write_bytes(b"not ours")
    client = await start({"model": READ_A_FILE, "dataDirectory": "state/agent"})
    session = await client.new_session()
    await run_to_end(client, session, "hello")
    await client.shutdown_session()
    assert (custom / ".gitignore").read_text().strip() == "*"
    assert (custom / "crush.db").read_bytes() == b"not ours"
    assert not (workspace / ".crush").exists()
    assert len(read_db(workspace, "state/agent")["messages"]) == 2


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


async def test_a_workspace_crush_json_cannot_put_the_data_directory_outside(start, workspace: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    (workspace / "crush.json").write_text(json.dumps({"options": {"data_directory": "../elsewhere"}}))
    before = tree(tmp_path)
    client = await start({"model": READ_A_FILE})
    error = await refused_with(client, "session/create", ws(client), "workspace_not_found", -32011)
    assert "data directory" in error.message and "outside the workspace" in error.message
    await client.shutdown_session()
    assert tree(tmp_path) == before and not elsewhere.exists()  # nothing was written, inside or out


async def test_a_data_directory_symlinked_out_of_the_workspace_is_refused(start, workspace: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / ".crush").symlink_to(outside)  # the default data directory, pointing elsewhere
    client = await start({"model": READ_A_FILE})
    await refused_with(client, "session/create", ws(client), "workspace_not_found", -32011)
    await client.shutdown_session()
    assert list(outside.iterdir()) == []


async def test_the_person_may_put_the_data_directory_outside(start, workspace: Path, tmp_path: Path):
    user_config = tmp_path / "user" / "crush.json"
    user_config.parent.mkdir()
    user_config.write_text(json.dumps({"options": {"data_directory": "../from-user-config"}}))
    by_user = await start({"model": READ_A_FILE}, env=server_env(CRUSH_GLOBAL_CONFIG=str(user_config)))
    await run_to_end(by_user, await by_user.new_session(), "hello")
    await by_user.shutdown_session()
    assert (tmp_path / "from-user-config" / "crush-ls.db").is_file()

    chosen = tmp_path / "from-init-options"
    by_client = await start({"model": READ_A_FILE, "dataDirectory": str(chosen)})
    await run_to_end(by_client, await by_client.new_session(), "hello")
    await by_client.shutdown_session()
    assert (chosen / "crush-ls.db").is_file() and not (workspace / ".crush").exists()


def test_a_session_created_is_seen_by_the_request_right_behind_it(workspace: Path):
    # PROTOCOL: requests take effect in the order they arrive.
    from tests.raw import RawServer

    raw = RawServer(workspace, {"model": {"provider": "echo"}})
    try:
        raw.write_together(*({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": {"workspace": raw.uri}}
                             for msg_id, method in ((101, "session/create"), (102, "session/list"))))
        answered: set[int] = set()
        raw.read_until(lambda m: answered.add(m.get("id")) or {101, 102} <= answered)
        created, listed = (next(m["result"] for m in raw.received if m.get("id") == i) for i in (101, 102))
        assert [s["id"] for s in listed["sessions"]] == [created["id"]]
    finally:
        raw.close()

