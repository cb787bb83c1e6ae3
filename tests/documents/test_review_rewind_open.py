"""agent/review and agent/rewind of a file open in the editor go through it (workspace/applyEdit),
as the agent's own edits do: the buffer is the truth, the person's typing stays."""

from __future__ import annotations

from typing import Any

from tests.documents.editor import Editor, edit, steps, view

LONG = "".join(f"line {n}\n" for n in range(1, 21))
EDITED = LONG.replace("line 2\n", "LINE 2\n").replace("line 18\n", "LINE 18\n")
TWO_EDITS = steps(view("app.txt"), edit("app.txt", "line 2\n", "LINE 2\n"), edit("app.txt", "line 18\n", "LINE 18\n"))


async def edited_in_editor(editor: Any, workspace: Any) -> tuple[Editor, str, str]:
    target = workspace / "app.txt"
    target.write_text(LONG)
    client: Editor = await editor(TWO_EDITS, save=True)
    client.open(target)
    session = await client.new_session()
    run_id = (await client.send(session, "go"))["runId"]
    assert (await client.completed(run_id))["finishReason"] == "end_turn"
    assert client.buffer_text(target) == EDITED
    return client, session, run_id


async def test_rejecting_a_hunk_of_an_open_file_edits_the_buffer_and_keeps_the_persons_typing(editor, workspace):
    client, session, _run_id = await edited_in_editor(editor, workspace)
    target = workspace / "app.txt"
    client.type(target, "line 10", "typed 10")  # unsaved
    [file] = (await client.call("agent/changes", {"workspace": client.ws_uri, "sessionId": session}))["files"]
    first = file["hunks"][0]
    applied = len(client.edits)
    await client.call("agent/review", {"workspace": client.ws_uri, "sessionId": session, "path": "app.txt",
                                       "hunks": [{"id": first["id"], "decision": "reject"}]})
    assert len(client.edits) == applied + 1  # a workspace/applyEdit
    assert client.buffer_text(target) == EDITED.replace("LINE 2\n", "line 2\n").replace("line 10", "typed 10")
    assert target.read_text() == EDITED  # the buffer has unsaved changes: the disk is left to the person


async def test_a_rewind_of_an_open_file_goes_through_the_editor(editor, workspace):
    client, session, run_id = await edited_in_editor(editor, workspace)
    target = workspace / "app.txt"
    prompt = next(n["message"]["id"] for n in client.of_run(run_id)
                  if n["type"] == "message_created" and n["message"]["role"] == "user")
    applied = len(client.edits)
    result = await client.call("agent/rewind", {"workspace": client.ws_uri, "sessionId": session, "messageId": prompt})
    assert result["restored"] == [{"path": "app.txt", "action": "restored"}] and result["conflicts"] == []
    assert len(client.edits) == applied + 1
    assert client.buffer_text(target) == LONG
    assert target.read_text() == LONG  # saved by the editor, asked by the server
    assert client.saves[-1]["uri"] == target.as_uri()
