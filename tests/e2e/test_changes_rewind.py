"""Review and rewind through the protocol (issue 13): agent/changes, agent/review, agent/rewind,
agent/unrewind, with scripted turns that add, modify and delete files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import AgentClient, scripted
from tests.e2e.runs import assert_runs_end_once, barrier, text
from tests.providers import fake_openai as openai

ALLOW = {"mode": "allow"}
ORIGINAL = "one\ntwo\nthree\n"


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"toolCall": {"name": name, "input": args}}


def change_model(*extra: dict[str, Any]) -> dict[str, Any]:
    """"change files": view gone.txt, then create new.txt, rewrite mod.txt and rm gone.txt (bash)."""
    return scripted(
        {"when": "change files", "step": 0, "events": [call("view", file_path="gone.txt")]},
        {"when": "change files", "step": 1, "events": [
            call("write", file_path="new.txt", content="hello\n"),
            call("write", file_path="mod.txt", content="one\nTWO\nthree\n"),
            call("bash", command="rm gone.txt"),
        ]},
        {"when": "change files", "step": 2, "events": [{"text": "changed"}]},
        {"when": "slow", "events": [{"sleepMs": 5000}, {"text": "late"}]},
        *extra,
        {"events": [{"echo": True}]},
    )


def seed(workspace: Path) -> None:
    (workspace / "mod.txt").write_text(ORIGINAL)
    (workspace / "gone.txt").write_text("bye\n")


def ws(client: AgentClient, **params: Any) -> dict[str, Any]:
    return {"workspace": client.ws_uri, **params}


async def run(client: AgentClient, session: str, prompt: str) -> str:
    run_id = (await client.send(session, prompt))["runId"]
    done = await client.completed(run_id)
    assert done["finishReason"] == "end_turn", done
    return run_id


def user_message_of(client: AgentClient, run_id: str) -> str:
    return next(n["message"]["id"] for n in client.of_run(run_id)
                if n["type"] == "message_created" and n["message"]["role"] == "user")


async def changes(client: AgentClient, session: str, **params: Any) -> list[dict[str, Any]]:
    return (await client.call("agent/changes", ws(client, sessionId=session, **params)))["files"]


async def refused(client: AgentClient, method: str, params: dict[str, Any], reason: str) -> str:
    with pytest.raises(JsonRpcException) as err:
        await client.call(method, params)
    assert err.value.data["reason"] == reason, err.value
    return str(err.value.message)


def uri(workspace: Path, name: str) -> str:
    return (Path(os.path.realpath(workspace)) / name).as_uri()


async def test_changes_lists_what_a_turn_added_modified_and_deleted(start, workspace: Path):
    seed(workspace)
    client = await start({"model": change_model(), "permissions": ALLOW})
    session = await client.new_session()
    first = await run(client, session, "just talk")
    run_id = await run(client, session, "change files")
    files = await changes(client, session, runId=run_id)
    hunk_ids = [f["hunks"][0]["id"] for f in files]
    assert files == [
        {"path": "gone.txt", "uri": uri(workspace, "gone.txt"), "status": "deleted", "before": "bye\n",
         "after": None, "binary": False, "tooLarge": False,
         "diff": "--- a/gone.txt\n+++ b/gone.txt\n@@ -1 +0,0 @@\n-bye\n", "additions": 0, "removals": 1,
         "runIds": [run_id],
         "hunks": [{"id": hunk_ids[0], "header": "@@ -1 +0,0 @@", "oldStart": 1, "oldLines": 1, "newStart": 0,
                    "newLines": 0, "lines": ["-bye"], "status": "pending"}]},
        {"path": "mod.txt", "uri": uri(workspace, "mod.txt"), "status": "modified", "before": ORIGINAL,
         "after": "one\nTWO\nthree\n", "binary": False, "tooLarge": False,
         "diff": "--- a/mod.txt\n+++ b/mod.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
         "additions": 1, "removals": 1, "runIds": [run_id],
         "hunks": [{"id": hunk_ids[1], "header": "@@ -1,3 +1,3 @@", "oldStart": 1, "oldLines": 3, "newStart": 1,
                    "newLines": 3, "lines": [" one", "-two", "+TWO", " three"], "status": "pending"}]},
        {"path": "new.txt", "uri": uri(workspace, "new.txt"), "status": "added", "before": None,
         "after": "hello\n", "binary": False, "tooLarge": False,
         "diff": "--- a/new.txt\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n", "additions": 1, "removals": 0,
         "runIds": [run_id],
         "hunks": [{"id": hunk_ids[2], "header": "@@ -0,0 +1 @@", "oldStart": 0, "oldLines": 0, "newStart": 1,
                    "newLines": 1, "lines": ["+hello"], "status": "pending"}]},
    ]
    assert len(set(hunk_ids)) == 3
    # The same answer for the whole session and since the run's prompt; stable across calls.
    assert await changes(client, session) == files
    assert await changes(client, session, sinceMessageId=user_message_of(client, run_id)) == files
    assert await changes(client, session, sinceMessageId=user_message_of(client, first)) == files
    assert await changes(client, session, runId=first) == []
    later = await run(client, session, "talk again")
    assert await changes(client, session, runId=later) == []
    await refused(client, "agent/changes", ws(client, sessionId=session, runId=run_id, sinceMessageId="x"),
                  "invalid_params")
    await refused(client, "agent/changes", ws(client, sessionId=session, sinceMessageId="nope"), "invalid_params")


def two_hunk_model() -> dict[str, Any]:
    lines = [f"line {n}\n" for n in range(1, 21)]
    changed = list(lines)
    changed[1], changed[17] = "LINE 2\n", "LINE 18\n"
    return scripted(
        {"when": "edit", "step": 0, "events": [call("write", file_path="big.txt", content="".join(changed))]},
        {"when": "edit", "step": 1, "events": [{"text": "edited"}]},
        {"events": [{"echo": True}]},
    ), lines


async def test_reject_one_hunk_of_two_keeps_the_other_and_the_persons_own_edit(start, workspace: Path):
    model, lines = two_hunk_model()
    big = workspace / "big.txt"
    big.write_text("".join(lines))
    client = await start({"model": model, "permissions": ALLOW})
    session = await client.new_session()
    await run(client, session, "edit it")
    [file] = await changes(client, session)
    first, second = file["hunks"]
    assert "+LINE 2" in first["lines"] and "+LINE 18" in second["lines"]
    hand = big.read_text().replace("line 10\n", "my own line 10\n")
    big.write_text(hand)  # the person edits between the two hunks

    params = ws(client, sessionId=session, path="big.txt")
    answer = await client.call("agent/review", {**params, "hunks": [{"id": first["id"], "decision": "reject"}]})
    assert answer == {"path": "big.txt", "accepted": [], "rejected": [first["id"]]}
    assert big.read_text() == hand.replace("LINE 2\n", "line 2\n")  # hunk 2 and the hand edit stay
    note = await client.wait_for(lambda n: n["type"] == "change_reviewed")
    assert (note["sessionId"], note["path"], note["hunks"]) == (session, "big.txt",
                                                               [{"id": first["id"], "decision": "reject"}])
    assert "runId" not in note

    await client.call("agent/review", {**params, "hunks": [{"id": second["id"], "decision": "accept"}]})
    [file] = await changes(client, session)
    assert [h["status"] for h in file["hunks"]] == ["rejected", "accepted"]
    assert [h["id"] for h in file["hunks"]] == [first["id"], second["id"]]

    # Nothing changes when a hunk cannot be taken back: already rejected, unknown, or edited since.
    before = big.read_text()
    message = await refused(client, "agent/review", {**params, "hunks": [{"id": first["id"], "decision": "reject"}]},
                            "hunk_not_applicable")
    assert first["id"] in message
    big.write_text(before.replace("LINE 18\n", "line eighteen\n"))
    message = await refused(client, "agent/review", {**params, "hunks": [{"id": second["id"], "decision": "reject"}]},
                            "hunk_not_applicable")
    assert second["id"] in message and "big.txt" in message
    assert big.read_text() == before.replace("LINE 18\n", "line eighteen\n")
    await refused(client, "agent/review", {**params, "hunks": [{"id": "feedfacecafe", "decision": "reject"}]},
                  "hunk_not_applicable")


async def test_rejecting_a_created_file_deletes_it_and_a_deleted_one_comes_back(start, workspace: Path):
    seed(workspace)
    client = await start({"model": change_model(), "permissions": ALLOW})
    session = await client.new_session()
    await run(client, session, "change files")
    by_path = {f["path"]: f for f in await changes(client, session)}
    for name in ("new.txt", "gone.txt"):
        hunk = by_path[name]["hunks"][0]["id"]
        await client.call("agent/review", ws(client, sessionId=session, path=name,
                                             hunks=[{"id": hunk, "decision": "reject"}]))
    assert not (workspace / "new.txt").exists()
    assert (workspace / "gone.txt").read_text() == "bye\n"


async def test_rewind_restores_the_files_and_the_model_no_longer_sees_the_messages(start, workspace: Path):
    seed(workspace)
    with openai.FakeOpenAI([openai.text_stream("fresh answer")]) as server:
        client = await start({"model": change_model(), "permissions": ALLOW})
        session = await client.new_session()
        await run(client, session, "first words")
        changing = await run(client, session, "change files")
        assert not (workspace / "gone.txt").exists()
        result = await client.call("agent/rewind", ws(client, sessionId=session,
                                                      messageId=user_message_of(client, changing)))
        assert result["restored"] == [{"path": "gone.txt", "action": "recreated"},
                                      {"path": "mod.txt", "action": "restored"},
                                      {"path": "new.txt", "action": "deleted"}]
        assert result["conflicts"] == [] and result["hiddenMessages"] == 8
        assert (workspace / "mod.txt").read_text() == ORIGINAL
        assert (workspace / "gone.txt").read_text() == "bye\n"
        assert not (workspace / "new.txt").exists()
        messages = await client.session_messages(session)
        assert [(m["role"], text(m)) for m in messages] == [("user", "first words"), ("assistant", "first words")]
        assert (await client.call("session/get", ws(client, sessionId=session)))["messageCount"] == 2
        assert await changes(client, session) == []

        await client.call("agent/setModel", ws(client, model={"provider": "openai", "model": "gpt-test",
                                                              "baseUrl": server.base_url, "apiKey": "sk-test"}))
        await run(client, session, "after the rewind")
        sent = [(m["role"], m["content"]) for m in server.requests[0]["messages"] if m["role"] != "system"]
        assert sent == [("user", "first words"), ("assistant", "first words"), ("user", "after the rewind")]
        # A prompt was sent since: the rewind can no longer be undone.
        await refused(client, "agent/unrewind", ws(client, sessionId=session), "nothing_to_unrewind")
    assert_runs_end_once(client.notes)


async def test_unrewind_brings_back_the_files_and_the_messages(start, workspace: Path):
    seed(workspace)
    client = await start({"model": change_model(), "permissions": ALLOW})
    session = await client.new_session()
    await refused(client, "agent/unrewind", ws(client, sessionId=session), "nothing_to_unrewind")
    changing = await run(client, session, "change files")
    before = await client.session_messages(session)
    listed = await changes(client, session)
    rewound = await client.call("agent/rewind", ws(client, sessionId=session,
                                                   messageId=user_message_of(client, changing)))
    assert await client.session_messages(session) == []
    back = await client.call("agent/unrewind", ws(client, sessionId=session))
    assert back == {"rewindId": rewound["rewindId"], "shownMessages": rewound["hiddenMessages"], "conflicts": [],
                    "restored": [{"path": "gone.txt", "action": "deleted"}, {"path": "mod.txt", "action": "restored"},
                                 {"path": "new.txt", "action": "recreated"}]}
    assert (workspace / "mod.txt").read_text() == "one\nTWO\nthree\n"
    assert (workspace / "new.txt").read_text() == "hello\n"
    assert not (workspace / "gone.txt").exists()
    assert await client.session_messages(session) == before
    assert await changes(client, session) == listed
    await refused(client, "agent/unrewind", ws(client, sessionId=session), "nothing_to_unrewind")
    await refused(client, "agent/rewind", ws(client, sessionId=session, messageId="nope"), "invalid_params")


async def test_a_file_changed_by_hand_after_the_agent_is_a_conflict_left_alone_unless_forced(start, workspace: Path):
    seed(workspace)
    client = await start({"model": change_model(), "permissions": ALLOW})
    session = await client.new_session()
    changing = await run(client, session, "change files")
    (workspace / "mod.txt").write_text("one\nTWO\nthree\nmine\n")
    message_id = user_message_of(client, changing)
    result = await client.call("agent/rewind", ws(client, sessionId=session, messageId=message_id))
    assert result["conflicts"] == [{"path": "mod.txt", "reason": "changed since the agent's last change"}]
    assert [r["path"] for r in result["restored"]] == ["gone.txt", "new.txt"]
    assert (workspace / "mod.txt").read_text() == "one\nTWO\nthree\nmine\n"  # nothing lost
    await client.call("agent/unrewind", ws(client, sessionId=session))
    forced = await client.call("agent/rewind", ws(client, sessionId=session, messageId=message_id, force=True))
    assert forced["conflicts"] == [] and {"path": "mod.txt", "action": "restored"} in forced["restored"]
    assert (workspace / "mod.txt").read_text() == ORIGINAL
    # The hand edit is what unrewind puts back.
    await client.call("agent/unrewind", ws(client, sessionId=session))
    assert (workspace / "mod.txt").read_text() == "one\nTWO\nthree\nmine\n"


async def test_rewind_and_unrewind_are_refused_while_the_session_runs(start, workspace: Path):
    seed(workspace)
    client = await start({"model": change_model(), "permissions": ALLOW})
    session = await client.new_session()
    first = await run(client, session, "hello")
    slow = (await client.send(session, "slow one"))["runId"]
    params = ws(client, sessionId=session, messageId=user_message_of(client, first))
    await refused(client, "agent/rewind", params, "session_busy")
    await refused(client, "agent/unrewind", ws(client, sessionId=session), "session_busy")
    await client.call("agent/cancel", ws(client, sessionId=session))
    await client.completed(slow)
    await barrier(client)
    assert (await client.call("agent/rewind", params))["hiddenMessages"] == 4


async def test_rewind_and_unrewind_work_after_a_restart(start, workspace: Path):
    seed(workspace)
    options = {"model": change_model(), "permissions": ALLOW}
    client = await start(options)
    session = await client.new_session()
    changing = await run(client, session, "change files")
    message_id = user_message_of(client, changing)
    await client.shutdown_session()

    again = await start(options)
    rewound = await again.call("agent/rewind", ws(again, sessionId=session, messageId=message_id))
    assert [r["action"] for r in rewound["restored"]] == ["recreated", "restored", "deleted"]
    assert (workspace / "mod.txt").read_text() == ORIGINAL
    await again.shutdown_session()

    third = await start(options)
    assert await third.session_messages(session) == []
    await third.call("agent/unrewind", ws(third, sessionId=session))
    assert (workspace / "mod.txt").read_text() == "one\nTWO\nthree\n"
    assert [m["role"] for m in await third.session_messages(session)][:2] == ["user", "assistant"]
