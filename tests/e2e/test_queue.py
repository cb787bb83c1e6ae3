"""Queued and steered prompts: positions, order, listing, clearing, folding."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import read_db, say, scripted
from tests.e2e.runs import assert_runs_end_once, barrier, finish_reason, roles, stored, text

SLOW = say("working on it " * 6, chunk=2, delay_ms=30)  # about 1.3 s
SLOW_OR_ECHO = scripted(dict(SLOW, when="slow"), {"events": [{"echo": True}]})


async def test_prompts_sent_while_busy_queue_and_run_in_order(start):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    first = await client.send(session, "slow first")
    second = await client.send(session, "second prompt")
    third = await client.send(session, "third prompt")
    assert (first["queued"], first["position"]) == (False, 0)
    assert (second["queued"], second["position"]) == (True, 1)
    assert (third["queued"], third["position"]) == (True, 2)
    listed = await client.call("agent/queuedPrompts", {"workspace": client.ws_uri, "sessionId": session})
    assert listed == {"prompts": ["second prompt", "third prompt"], "runIds": [second["runId"], third["runId"]]}
    run_ids = [first["runId"], second["runId"], third["runId"]]
    done = [await client.completed(run_id) for run_id in run_ids]
    await barrier(client)
    assert [d["text"] for d in done] == [SLOW["events"][0]["text"], "second prompt", "third prompt"]
    assert all(d["finishReason"] == "end_turn" for d in done)
    queued_notes = [(n["runId"], n["position"]) for n in client.notes if n["type"] == "run_queued"]
    assert queued_notes == [(second["runId"], 1), (third["runId"], 2)]
    completes = [n["runId"] for n in client.notes if n["type"] == "run_complete"]
    assert completes == run_ids
    # Each queued run starts only after the one before it completed.
    index = {(n["type"], n.get("runId")): i for i, n in enumerate(client.notes)}
    assert index[("run_complete", run_ids[0])] < index[("run_started", run_ids[1])]
    assert index[("run_complete", run_ids[1])] < index[("run_started", run_ids[2])]
    assert_runs_end_once(client.notes)
    messages = await stored(client, session)
    assert [text(m) for m in messages if m["role"] == "user"] == ["slow first", "second prompt", "third prompt"]
    listed = await client.call("agent/queuedPrompts", {"workspace": client.ws_uri, "sessionId": session})
    assert listed == {"prompts": [], "runIds": []}


async def test_clear_queue_ends_queued_runs_and_stores_nothing_of_them(start, workspace: Path):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    active = (await client.send(session, "slow active"))["runId"]
    queued = [(await client.send(session, f"queued {i}"))["runId"] for i in (1, 2)]
    cleared = await client.call("agent/clearQueue", {"workspace": client.ws_uri, "sessionId": session})
    assert cleared == {"cleared": 2, "prompts": ["queued 1", "queued 2"], "runIds": queued}
    for run_id in queued:
        done = await client.completed(run_id)
        assert done["finishReason"] == "canceled" and done["text"] == ""
        assert client.types_of(run_id) == ["run_queued", "run_complete"]
    assert (await client.completed(active))["finishReason"] == "end_turn"  # the active run goes on
    await barrier(client)
    assert_runs_end_once(client.notes)
    assert [text(m) for m in read_db(workspace)["messages"] if m["role"] == "user"] == ["slow active"]


async def test_pop_queue_takes_back_the_last_queued_prompt(start, workspace: Path):
    client = await start({"model": SLOW_OR_ECHO})
    session = await client.new_session()
    params = {"workspace": client.ws_uri, "sessionId": session}
    assert await client.call("agent/popQueue", params) == {"prompt": None, "runId": None, "attachments": []}
    active = (await client.send(session, "slow active"))["runId"]
    first = (await client.send(session, "queued 1"))["runId"]
    attached = [{"path": "n.txt", "text": "note"}]
    second = (await client.send(session, "queued 2", attachments=attached))["runId"]
    popped = await client.call("agent/popQueue", params)
    assert popped == {"prompt": "queued 2", "runId": second, "attachments": attached}
    done = await client.completed(second)
    assert done["finishReason"] == "canceled" and client.types_of(second) == ["run_queued", "run_complete"]
    assert await client.call("agent/queuedPrompts", params) == {"prompts": ["queued 1"], "runIds": [first]}
    assert (await client.completed(active))["finishReason"] == "end_turn"  # the active run is never taken
    assert (await client.completed(first))["finishReason"] == "end_turn"
    await barrier(client)
    assert_runs_end_once(client.notes)
    assert [text(m) for m in read_db(workspace)["messages"] if m["role"] == "user"] == ["slow active", "queued 1"]


def steer_script() -> dict:
    """A host turn: step 0 streams slowly then views a file; step 1 answers."""
    return scripted(
        {"when": "host", "step": 0, "events": [
            # long enough (about 1.5 s) for a steer sent after its first delta to arrive during it
            {"text": "Let me read the notes first, carefully, line by line.", "chunkSize": 1, "delayMs": 30},
            {"toolCall": {"name": "view", "input": {"file_path": "notes.txt"}}},
        ]},
        {"when": "host", "step": 1, "events": [{"text": "Read them, and took your remark into account."}]},
        {"when": "alone", "events": [{"text": "Answering the host at length.", "chunkSize": 1, "delayMs": 50}]},
        {"events": [{"echo": True}]},
    )


async def test_steer_folds_the_prompt_into_the_running_turn(start, workspace: Path):
    (workspace / "notes.txt").write_text("remember the milk\n")
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "host: read notes"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    steer = await client.send(session, "also mind the eggs", mode="steer")
    assert (steer["accepted"], steer["queued"], steer["position"]) == (True, False, 0)
    host_done = await client.completed(host)
    steer_done = await client.completed(steer["runId"])
    await barrier(client)
    assert host_done["finishReason"] == "end_turn"
    assert steer_done["foldedInto"] == host and "foldedInto" not in host_done
    assert steer_done["finishReason"] == host_done["finishReason"]
    # The steered run's run_complete is the very next notification after the host's.
    position = client.notes.index(host_done)
    assert client.notes[position + 1] is steer_done
    assert "run_started" not in client.types_of(steer["runId"])
    assert client.types_of(steer["runId"]) == ["message_created", "run_complete"]
    messages = await stored(client, session)
    assert roles(messages) == ["user", "assistant", "tool", "user", "assistant"]
    assert text(messages[3]) == "also mind the eggs"
    assert finish_reason(messages[1]) == "tool_use" and finish_reason(messages[4]) == "end_turn"
    assert host_done["text"] == text(messages[4])
    assert_runs_end_once(client.notes)


async def test_steer_with_nothing_running_runs_normally(start):
    client = await start({"model": steer_script()})
    session = await client.new_session()
    steer = await client.send(session, "just steer", mode="steer")
    assert (steer["queued"], steer["position"]) == (False, 0)
    done = await client.completed(steer["runId"])
    assert done["finishReason"] == "end_turn" and done["text"] == "just steer"
    assert "foldedInto" not in done
    assert client.types_of(steer["runId"])[0] == "run_started"


async def test_steer_after_the_last_model_call_runs_as_its_own_turn(start, workspace: Path):
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "alone: no tools here"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    steer = (await client.send(session, "one more thing", mode="steer"))["runId"]
    status = await client.call("agent/status", {"workspace": client.ws_uri, "sessionId": session})
    assert status["activeRunId"] == host  # the steer really arrived while the host ran
    host_done = await client.completed(host)
    steer_done = await client.completed(steer)
    await barrier(client)
    assert host_done["finishReason"] == steer_done["finishReason"] == "end_turn"
    assert "foldedInto" not in steer_done
    assert steer_done["text"] == "one more thing"
    assert client.types_of(steer)[0] == "run_started"
    assert client.notes.index(host_done) < client.notes.index(client.of_run(steer)[0])
    messages = read_db(workspace)["messages"]
    assert roles(messages) == ["user", "assistant", "user", "assistant"]
    assert [text(m) for m in messages] == ["alone: no tools here", "Answering the host at length.",
                                           "one more thing", "one more thing"]
    assert_runs_end_once(client.notes)


async def test_cancelling_a_steered_run_before_it_folds_leaves_the_host(start, workspace: Path):
    (workspace / "notes.txt").write_text("remember the milk\n")
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "host: read notes"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    steer = (await client.send(session, "never mind", mode="steer"))["runId"]
    canceled = await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session, "runId": steer})
    assert canceled == {"canceled": 1}
    steer_done = await client.completed(steer)
    assert steer_done["finishReason"] == "canceled" and "foldedInto" not in steer_done
    host_done = await client.completed(host)
    assert host_done["finishReason"] == "end_turn"
    messages = await stored(client, session)
    assert "never mind" not in [text(m) for m in messages if m["role"] == "user"]
    assert roles(messages) == ["user", "assistant", "tool", "assistant"]


async def test_a_folded_steered_run_id_can_be_used_again_after_it_completed(start, workspace: Path):
    # PROTOCOL: only a runId of a run that has not completed is invalid_params.
    (workspace / "notes.txt").write_text("remember the milk\n")
    client = await start({"model": steer_script()})
    session = await client.new_session()
    host = (await client.send(session, "host: read notes"))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == host)
    await client.send(session, "also mind the eggs", mode="steer", runId="steer-1")
    steered = await client.completed("steer-1")
    assert steered["foldedInto"] == host
    again = await client.send(session, "plain again", runId="steer-1")
    assert again["runId"] == "steer-1"
    await client.completed("steer-1")

