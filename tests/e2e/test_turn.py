"""The turn loop: model steps, tool calls and their statuses, errors the model
sees, usage, reasoning, delta joining and the step cap."""

from __future__ import annotations

from pathlib import Path

from crush_ls.agent.turn import MAX_STEPS
from tests.conftest import NOTE_TIMEOUT, scripted
from tests.e2e.runs import assert_runs_end_once, barrier, finish_reason, roles, stored, text


def call(name: str, **tool_input) -> dict:
    return {"toolCall": {"name": name, "input": tool_input}}


def step(n: int, *events: dict) -> dict:
    return {"step": n, "events": list(events)}


async def run_once(client, prompt: str = "go", timeout: float = NOTE_TIMEOUT) -> tuple[str, str, dict]:
    session = await client.new_session()
    run_id = (await client.send(session, prompt))["runId"]
    done = await client.completed(run_id, timeout)
    await barrier(client)
    assert_runs_end_once(client.notes, [run_id])
    return session, run_id, done


def of_type(client, run_id: str, kind: str) -> list[dict]:
    return [n for n in client.of_run(run_id) if n["type"] == kind]


def tool_results(client, run_id: str) -> dict[str, dict]:
    return {n["toolCallId"]: n for n in of_type(client, run_id, "tool_result")}


async def test_multi_step_turn_with_view_and_ls(start, workspace: Path):
    (workspace / "notes.txt").write_text("remember the milk\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "main.py").write_text("print('hi')\n")
    client = await start({"model": scripted(
        step(0, {"text": "Looking around."}, call("view", file_path="notes.txt"), call("ls", path="."),
             {"usage": {"inputTokens": 100, "outputTokens": 10}}),
        step(1, {"text": "Found the milk."}, {"usage": {"inputTokens": 150, "outputTokens": 20}}),
    )})
    session, run_id, done = await run_once(client)
    assert done["finishReason"] == "end_turn" and done["text"] == "Found the milk."
    assert done["usage"] == {"inputTokens": 250, "outputTokens": 30, "cost": 0}

    calls = of_type(client, run_id, "tool_call")
    ids = list(dict.fromkeys(n["toolCall"]["id"] for n in calls))
    assert [c["toolCall"]["name"] for c in calls if c["toolCall"]["status"] == "pending"] == ["view", "ls"]
    for call_id in ids:
        statuses = [n["toolCall"]["status"] for n in calls if n["toolCall"]["id"] == call_id]
        assert statuses == ["pending", "running", "completed"]
    results = tool_results(client, run_id)
    view, ls = results[ids[0]], results[ids[1]]
    assert view["name"] == "view" and "remember the milk" in view["content"] and view["isError"] is False
    assert ls["name"] == "ls" and "notes.txt" in ls["content"] and "main.py" in ls["content"]

    finished = of_type(client, run_id, "message_finished")
    assert [f["finishReason"] for f in finished] == ["tool_use", "end_turn"]
    assert [f["usage"]["inputTokens"] for f in finished] == [100, 150]
    updated = [n["session"] for n in client.notes if n["type"] == "session_updated"]
    # Crush keeps the latest call's context size, not a sum.
    assert (updated[-1]["promptTokens"], updated[-1]["completionTokens"]) == (150, 20)
    assert updated[-1]["busy"] is False

    kinds = client.types_of(run_id)
    # a step's pending calls are announced before it finishes; they run after
    assert kinds.index("message_finished") < kinds.index("tool_result")
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant", "tool", "tool", "assistant"]
    assert [p["type"] for p in messages[1]["parts"]] == ["text", "tool_call", "tool_call", "finish"]
    assert [p["status"] for p in messages[1]["parts"] if p["type"] == "tool_call"] == ["completed", "completed"]
    assert [m["parts"][0]["toolCallId"] for m in messages[2:4]] == ids
    assert finish_reason(messages[4]) == "end_turn"


async def tool_error_turn(start, bad_call: dict) -> tuple[dict, dict, list[dict]]:
    """A turn whose one tool call fails; returns (the error result, run_complete, stored messages)."""
    client = await start({"model": scripted(step(0, bad_call), step(1, {"text": "Carrying on."}))})
    session, run_id, done = await run_once(client)
    [result] = of_type(client, run_id, "tool_result")
    statuses = [n["toolCall"]["status"] for n in of_type(client, run_id, "tool_call")]
    assert statuses[0] == "pending" and statuses[-1] == "failed"
    assert "agent_error" not in client.types_of(run_id)
    return result, done, await stored(client, session)


async def test_view_of_a_missing_file_is_an_error_result_and_the_turn_goes_on(start):
    result, done, messages = await tool_error_turn(start, call("view", file_path="missing.txt"))
    assert result["isError"] is True and "not found" in result["content"]
    assert done["finishReason"] == "end_turn" and done["text"] == "Carrying on."
    assert roles(messages) == ["user", "assistant", "tool", "assistant"]
    assert messages[2]["parts"][0]["isError"] is True


async def test_invalid_tool_input_names_the_field(start):
    result, done, _messages = await tool_error_turn(start, call("view", file_path=5))
    assert result["isError"] is True and "file_path" in result["content"]
    assert done["finishReason"] == "end_turn"


async def test_unknown_tool_is_an_error_result(start):
    result, done, _messages = await tool_error_turn(start, call("teleport", to="mars"))
    assert result["isError"] is True and "teleport" in result["content"]
    assert done["finishReason"] == "end_turn"


async def test_reasoning_is_streamed_and_stored(start):
    client = await start({"model": scripted({"events": [{"reasoning": "The user wants a greeting."},
                                                        {"text": "Hello!"}]})})
    session, run_id, done = await run_once(client)
    kinds = [n["type"] for n in client.of_run(run_id) if n["type"].endswith("_delta")]
    assert kinds == ["reasoning_delta", "text_delta"]
    assert "".join(n["text"] for n in of_type(client, run_id, "reasoning_delta")) == "The user wants a greeting."
    assert done["text"] == "Hello!"
    [assistant] = [m for m in await stored(client, session) if m["role"] == "assistant"]
    assert text(assistant, "reasoning") == "The user wants a greeting." and text(assistant) == "Hello!"


TEXT = "The quick brown fox jumps over the lazy dog."


async def test_interval_zero_sends_every_chunk_alone(start):
    client = await start({"model": scripted({"events": [{"text": TEXT, "chunkSize": 1}]}), "streamIntervalMs": 0})
    _session, run_id, done = await run_once(client)
    deltas = [n["text"] for n in of_type(client, run_id, "text_delta")]
    assert deltas == list(TEXT)
    assert done["text"] == TEXT


async def test_deltas_are_joined_per_interval(start):
    # 60 chunks 10 ms apart (about 0.6 s) with a 200 ms interval: a handful of joined deltas
    # (loose bound: a loaded machine streams slower, so more intervals pass).
    slow_text = TEXT + " " + TEXT[:15]
    client = await start({"model": scripted({"events": [{"text": slow_text, "chunkSize": 1, "delayMs": 10}]}),
                          "streamIntervalMs": 200})
    _session, run_id, done = await run_once(client)
    deltas = [n["text"] for n in of_type(client, run_id, "text_delta")]
    assert "".join(deltas) == slow_text == done["text"]
    assert 1 <= len(deltas) <= len(slow_text) // 2  # 30 deltas would take 6 s of streaming


async def test_pending_text_is_flushed_before_tool_call_finish_and_run_complete(start, workspace: Path):
    (workspace / "a.txt").write_text("a\n")
    # Fast chunks and a long interval: the first chunk of each message goes out at once, the rest
    # only by the flushes (the timer never fires).
    client = await start({"model": scripted(
        step(0, {"text": "Before the call.", "chunkSize": 1}, call("view", file_path="a.txt")),
        step(1, {"text": "After the call.", "chunkSize": 1}),
    ), "streamIntervalMs": 10_000})
    _session, run_id, done = await run_once(client)
    notes = client.of_run(run_id)
    flow = [(n["type"], n.get("text")) for n in notes
            if n["type"] in ("text_delta", "tool_call", "message_finished", "run_complete")]
    assert flow[:3] == [("text_delta", "B"), ("text_delta", "efore the call."), ("tool_call", None)]
    assert flow[-4:] == [("text_delta", "A"), ("text_delta", "fter the call."), ("message_finished", None),
                         ("run_complete", "After the call.")]
    assert len(of_type(client, run_id, "text_delta")) == 4


async def test_step_cap_ends_a_turn_that_never_stops_calling_tools(start):
    client = await start({"model": scripted({"events": [call("ls")]})})
    # 50 real `ls` calls, each in its own search worker: a loaded machine needs more than one note's wait.
    _session, run_id, done = await run_once(client, timeout=MAX_STEPS * NOTE_TIMEOUT / 5)
    assert done["finishReason"] == "unknown"
    finished = of_type(client, run_id, "message_finished")
    assert len(finished) == MAX_STEPS == 50
    assert {f["finishReason"] for f in finished} == {"tool_use"}
    assert len(of_type(client, run_id, "tool_result")) == MAX_STEPS
