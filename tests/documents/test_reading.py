"""`view`, `grep` and `glob` see the editor's open documents, unsaved text included (PROTOCOL "Documents and edits")."""

from __future__ import annotations

import pytest

from tests.documents.editor import Editor, run, steps, view


@pytest.fixture(autouse=True, params=["python", "ripgrep"])
def engine(request, monkeypatch) -> str:
    monkeypatch.setenv("CRUSH_LS_SEARCH", request.param)  # inherited by the server's search worker
    return request.param


def grep(pattern: str, **extra: str) -> dict:
    return {"name": "grep", "input": {"pattern": pattern, **extra}}


async def test_grep_and_view_see_the_unsaved_buffer_not_the_disk(editor, workspace):
    (workspace / "a.py").write_text("saved_name = 1\n")
    (workspace / "b.py").write_text("saved_name = 2\n")
    client: Editor = await editor(steps(grep("unsaved_name|saved_name"), grep("saved_name", include="a.*"),
                                        view("a.py")))
    client.open(workspace / "a.py", "x = 0\nunsaved_name = 1\n")
    found, only_a, viewed = await run(client)
    assert found["content"].splitlines()[1:] == ["a.py:2: unsaved_name = 1", "b.py:1: saved_name = 2"]
    assert only_a["content"] == "Found 1 matches\na.py:2: unsaved_name = 1"
    assert "unsaved_name" in viewed["content"] and "saved_name = 1" not in viewed["content"].replace("unsaved", "")


async def test_a_document_never_saved_exists_for_glob_grep_and_view(editor, workspace):
    (workspace / "old.py").write_text("x = 1\n")
    client: Editor = await editor(steps({"name": "glob", "input": {"pattern": "*.py"}}, grep("draft"), view("new.py")))
    client.open(workspace / "new.py", "draft = True\n")
    globbed, found, viewed = await run(client)
    assert globbed["content"].splitlines() == ["new.py", "old.py"]
    assert found["content"].splitlines()[1:] == ["new.py:1: draft = True"]
    assert not viewed["isError"] and "draft = True" in viewed["content"]


async def test_a_closed_document_is_read_from_disk_again(editor, workspace):
    (workspace / "a.py").write_text("on_disk = 1\n")
    client: Editor = await editor(steps(view("a.py"), grep("on_disk|in_buffer")))
    client.open(workspace / "a.py", "in_buffer = 1\n")
    client.close(workspace / "a.py")
    viewed, found = await run(client)
    assert "on_disk" in viewed["content"] and "in_buffer" not in viewed["content"]
    assert found["content"].splitlines()[1:] == ["a.py:1: on_disk = 1"]


async def test_documents_outside_the_workspace_are_not_mirrored(editor, workspace, tmp_path):
    outside = tmp_path / "elsewhere.py"
    outside.write_text("disk = 1\n")
    (workspace / "a.py").write_text("disk = 1\n")
    client: Editor = await editor(steps(view(str(outside)), grep("disk|buffer")), permissions=True)
    client.open(outside, "buffer = 1\n")
    viewed, found = await run(client)
    assert "disk = 1" in viewed["content"]
    assert found["content"].splitlines()[1:] == ["a.py:1: disk = 1"]
