"""Edits of documents open in the editor go through `workspace/applyEdit` (PROTOCOL "Documents and edits")."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.documents.editor import Editor, edit, run, steps, view

APP = "def main():\n    return 1\n"
EDITED = "def main():\n    return 2\n"


def history(folder: Path, path: Path) -> list[str | None]:
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db")
    try:
        rows = db.execute("SELECT content FROM files WHERE path=? ORDER BY version",
                          (os.path.realpath(path),)).fetchall()
    finally:
        db.close()
    return [row[0] for row in rows]


async def test_an_edit_of_an_open_file_is_a_versioned_minimal_apply_edit_then_saved_by_the_editor(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")), save=True)
    client.open(target)
    client.type(target, "main", "main")  # version 2, same text
    viewed, edited = await run(client)

    assert not edited["isError"], edited["content"]
    assert client.edits == [{"label": "crush: edit app.py", "edit": {"documentChanges": [
        {"textDocument": {"uri": target.as_uri(), "version": 2},
         "edits": [{"range": {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 12}},
                    "newText": "2"}]}]}}]
    assert client.buffer_text(target) == EDITED
    # The disk was untouched until the editor saved the buffer, asked by the server.
    assert client.saves == [{"uri": target.as_uri(), "disk": APP}]
    assert target.read_text() == EDITED
    assert "-    return 1\n+    return 2\n" in edited["metadata"]["diff"]
    await client.shutdown_session()
    assert history(workspace, target) == [APP, EDITED]


async def test_without_save_document_the_server_writes_the_clean_buffer_to_disk(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")))
    client.open(target)
    _, edited = await run(client)
    assert not edited["isError"], edited["content"]
    assert len(client.edits) == 1 and client.saves == []
    assert client.buffer_text(target) == EDITED == target.read_text()


async def test_unsaved_changes_of_the_person_are_never_written_to_disk(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    unsaved = "# the person's note\n" + APP
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")), save=True)
    client.open(target, unsaved)
    viewed, edited = await run(client)

    assert "the person's note" in viewed["content"]  # view saw the buffer
    assert not edited["isError"], edited["content"]
    assert "the file on disk differs" in edited["content"]
    assert client.buffer_text(target) == "# the person's note\n" + EDITED
    assert target.read_text() == APP and client.saves == []
    await client.shutdown_session()
    assert history(workspace, target) == [unsaved, "# the person's note\n" + EDITED]


async def test_refused_twice_fails_the_call_and_changes_nothing(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")))
    client.mode = "refuse"
    client.open(target)
    _, edited = await run(client)
    assert edited["isError"] and "changed in the editor" in edited["content"], edited["content"]
    assert len(client.edits) == 2
    assert client.buffer_text(target) == APP == target.read_text()


async def test_a_refusal_because_the_person_typed_is_retried_on_the_new_text(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")))
    client.open(target)

    def person_types(editor: Editor, number: int) -> None:
        if number == 1:
            editor.type(target, "def main", "def start")

    client.before_apply = person_types
    _, edited = await run(client)
    assert not edited["isError"], edited["content"]
    versions = [e["edit"]["documentChanges"][0]["textDocument"]["version"] for e in client.edits]
    assert versions == [1, 2]
    assert client.buffer_text(target) == "def start():\n    return 2\n"
    # The buffer had unsaved changes of the person's when the edit was made: the disk is left alone.
    assert target.read_text() == APP and "the file on disk differs" in edited["content"]


async def test_neovim_answering_applied_for_a_skipped_edit_is_confirmed_by_its_did_change(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")), like="vscode")
    client.mode = "neovim"  # versioned edits (documentChanges), answered the way Neovim does

    def person_types(editor: Editor, number: int) -> None:
        if number == 1:
            editor.type(target, "def main", "def start")

    client.open(target)
    client.before_apply = person_types
    _, edited = await run(client)
    assert not edited["isError"], edited["content"]
    assert len(client.edits) == 2
    assert client.buffer_text(target) == "def start():\n    return 2\n"


async def test_neovim_capabilities_get_unversioned_changes_in_utf8(editor, workspace):
    target = workspace / "app.py"
    target.write_text("s = 'é😀'\nx = 1\n")
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "😀'\nx = 1", "😀!'\nx = 1")),
                                  like="neovim")
    assert client.encoding == "utf-8"
    client.open(target)
    _, edited = await run(client)
    assert not edited["isError"], edited["content"]
    (change,) = client.edits
    assert change["edit"] == {"changes": {target.as_uri(): [
        {"range": {"start": {"line": 0, "character": 11}, "end": {"line": 0, "character": 11}}, "newText": "!"}]}}
    assert client.buffer_text(target) == "s = 'é😀!'\nx = 1\n" == target.read_text()


async def test_a_file_that_is_not_open_is_written_on_disk(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2"),
                                        {"name": "write", "input": {"file_path": "new.py", "content": "x = 1\n"}}))
    client.open(workspace / "other.py", "")
    _, edited, written = await run(client)
    assert not edited["isError"] and not written["isError"], (edited, written)
    assert client.edits == []
    assert target.read_text() == EDITED and (workspace / "new.py").read_text() == "x = 1\n"


async def test_without_apply_edit_an_open_file_with_unsaved_changes_is_refused(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")), apply_edit=False)
    client.open(target, "# mine\n" + APP)
    viewed, edited = await run(client)
    assert "# mine" in viewed["content"]
    assert edited["isError"] and "unsaved changes" in edited["content"], edited["content"]
    assert target.read_text() == APP and client.edits == []


async def test_without_apply_edit_a_clean_open_file_is_written_on_disk(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")), apply_edit=False)
    client.open(target)
    _, edited = await run(client)
    assert not edited["isError"], edited["content"]
    assert target.read_text() == EDITED and client.edits == []


async def test_typing_after_the_view_makes_the_edit_view_again(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    options = {**steps(view("app.py"), edit("app.py", "return 1", "return 2")), "permissions": {"mode": "ask"}}
    client: Editor = await editor(options, permissions=True)
    client.open(target)

    def person_types_then_allows(params: dict) -> dict:
        # After the view, before the edit runs: the didChange reaches the server before this answer.
        client.type(target, "def main", "def start")
        return {"decision": "allow"}

    client.permission_answer = person_types_then_allows
    _, edited = await run(client)
    assert edited["isError"] and "modified since you last viewed it" in edited["content"], edited["content"]
    assert client.edits == [] and target.read_text() == APP


async def test_follow_the_agent_shows_each_edit_without_taking_focus(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    options = {**steps(view("app.py"), edit("app.py", "return 1", "return 2"),
                       {"name": "write", "input": {"file_path": "new.py", "content": "a = 1\nb = 2\n"}}),
               "followAgent": True}
    client: Editor = await editor(options)
    client.open(target)
    await run(client)
    shown = [(s.uri, s.selection.start.line, s.selection.start.character, s.selection.end.line,
              s.selection.end.character, s.take_focus) for s in client.shown_documents]
    assert shown == [(target.as_uri(), 1, 0, 1, 12, False), ((workspace / "new.py").as_uri(), 0, 0, 1, 5, False)]


async def test_the_agent_is_not_followed_by_default(editor, workspace):
    target = workspace / "app.py"
    target.write_text(APP)
    client: Editor = await editor(steps(view("app.py"), edit("app.py", "return 1", "return 2")))
    client.open(target)
    (_, edited) = await run(client)
    assert not edited["isError"] and client.shown_documents == []


async def test_a_workspace_opened_through_a_symlink_keeps_the_editor_s_uris(editor, workspace, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(workspace)
    (workspace / "app.py").write_text(APP)
    options = {**steps(view("app.py"), edit("app.py", "return 1", "return 2"),
                       {"name": "write", "input": {"file_path": "new.py", "content": "a = 1\n"}}),
               "followAgent": True}
    client: Editor = await editor(options, folder=link)
    client.open(link / "app.py", "# unsaved\n" + APP)
    viewed, edited, _ = await run(client)
    assert "# unsaved" in viewed["content"] and not edited["isError"], edited["content"]
    assert [e["edit"]["documentChanges"][0]["textDocument"]["uri"] for e in client.edits] == [(link / "app.py").as_uri()]
    assert [s.uri for s in client.shown_documents] == [(link / "app.py").as_uri(), (link / "new.py").as_uri()]
