"""`write`, `edit`, `multiedit`: changes, diffs, the view-first rule, history versions."""

from __future__ import annotations

import os
from pathlib import Path


async def view(call, rel: str) -> None:
    result = await call("view", {"file_path": rel})
    assert not result.is_error, result.content


async def history(store, ctx, path: Path) -> list[str | None]:
    return [v["content"] for v in await store.file_versions(str(path), ctx.session_id)]


async def test_write_creates_parents_with_diff_and_history(workspace, call, store, ctx):
    result = await call("write", {"file_path": "pkg/sub/new.py", "content": "print('hi')\n"})
    assert not result.is_error, result.content
    target = workspace / "pkg/sub/new.py"
    assert target.read_text() == "print('hi')\n"
    assert result.metadata["path"] == "pkg/sub/new.py"
    assert result.metadata["additions"] == 1 and result.metadata["removals"] == 0
    assert "+print('hi')" in result.metadata["diff"]
    assert await history(store, ctx, target) == [None, "print('hi')\n"]


async def test_write_overwrites_and_keeps_old_version(workspace, call, store, ctx):
    target = workspace / "a.txt"
    target.write_text("old\n")
    result = await call("write", {"file_path": "a.txt", "content": "new\n"})
    assert not result.is_error
    assert target.read_text() == "new\n"
    assert result.metadata["diff"].splitlines()[2:] == ["@@ -1 +1 @@", "-old", "+new"]
    assert await history(store, ctx, target) == ["old\n", "new\n"]


async def test_write_refuses_a_file_changed_since_it_was_viewed(workspace, call):
    target = workspace / "a.txt"
    target.write_text("one\n")
    await view(call, "a.txt")
    target.write_text("changed by the user\n")
    os.utime(target, (1, 1))
    result = await call("write", {"file_path": "a.txt", "content": "two\n"})
    assert result.is_error and "modified since" in result.content
    assert target.read_text() == "changed by the user\n"


async def test_write_bad_input(workspace, call):
    assert (await call("write", {"file_path": "a.txt"})).is_error
    assert (await call("write", {"file_path": "a.txt", "content": 3})).is_error
    (workspace / "dir").mkdir()
    assert (await call("write", {"file_path": "dir", "content": "x"})).is_error
    assert (await call("write", {"file_path": "", "content": "x"})).is_error


async def test_edit_needs_a_view_first(workspace, call):
    (workspace / "m.py").write_text("x = 1\n")
    result = await call("edit", {"file_path": "m.py", "old_string": "x = 1", "new_string": "x = 2"})
    assert result.is_error and "view" in result.content
    assert (workspace / "m.py").read_text() == "x = 1\n"


async def test_edit_after_view_and_consecutive_edits(workspace, call, store, ctx):
    target = workspace / "m.py"
    target.write_text("a = 1\nb = 2\n")
    await view(call, "m.py")
    first = await call("edit", {"file_path": "m.py", "old_string": "a = 1", "new_string": "a = 10"})
    assert not first.is_error, first.content
    assert first.metadata["diff"].splitlines()[2:] == ["@@ -1,2 +1,2 @@", "-a = 1", "+a = 10", " b = 2"]
    # The edit recorded the new mtime: a second edit needs no new view.
    second = await call("edit", {"file_path": "m.py", "old_string": "b = 2", "new_string": ""})
    assert not second.is_error, second.content
    assert target.read_text() == "a = 10\n\n"
    assert await history(store, ctx, target) == ["a = 1\nb = 2\n", "a = 10\nb = 2\n", "a = 10\n\n"]


async def test_edit_refuses_a_file_changed_on_disk_since_view(workspace, call, store, ctx):
    target = workspace / "m.py"
    target.write_text("v = 1\n")
    await view(call, "m.py")
    target.write_text("v = 1  # the user typed this\n")
    os.utime(target, (2, 2))
    result = await call("edit", {"file_path": "m.py", "old_string": "v = 1", "new_string": "v = 2"})
    assert result.is_error and "modified since" in result.content
    await view(call, "m.py")
    again = await call("edit", {"file_path": "m.py", "old_string": "v = 1", "new_string": "v = 2"})
    assert not again.is_error
    assert target.read_text() == "v = 2  # the user typed this\n"


async def test_edit_uniqueness_and_replace_all(workspace, call):
    target = workspace / "r.txt"
    target.write_text("foo foo foo\n")
    await view(call, "r.txt")
    ambiguous = await call("edit", {"file_path": "r.txt", "old_string": "foo", "new_string": "bar"})
    assert ambiguous.is_error and "3 times" in ambiguous.content
    missing = await call("edit", {"file_path": "r.txt", "old_string": "baz", "new_string": "bar"})
    assert missing.is_error and "not found" in missing.content
    same = await call("edit", {"file_path": "r.txt", "old_string": "foo", "new_string": "foo"})
    assert same.is_error
    everywhere = await call(
        "edit", {"file_path": "r.txt", "old_string": "foo", "new_string": "bar", "replace_all": True}
    )
    assert not everywhere.is_error
    assert target.read_text() == "bar bar bar\n"
    assert everywhere.metadata["additions"] == 1 and everywhere.metadata["removals"] == 1


async def test_edit_with_empty_old_string_creates_a_file(workspace, call, store, ctx):
    result = await call("edit", {"file_path": "new/file.md", "old_string": "", "new_string": "# Title\n"})
    assert not result.is_error, result.content
    assert (workspace / "new/file.md").read_text() == "# Title\n"
    assert await history(store, ctx, workspace / "new/file.md") == [None, "# Title\n"]
    exists = await call("edit", {"file_path": "new/file.md", "old_string": "", "new_string": "again"})
    assert exists.is_error and "already exists" in exists.content


async def test_edit_keeps_crlf_line_ends(workspace, call):
    target = workspace / "win.txt"
    target.write_bytes(b"one\r\ntwo\r\n")
    await view(call, "win.txt")
    result = await call("edit", {"file_path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"})
    assert not result.is_error, result.content
    assert target.read_bytes() == b"1\r\n2\r\n"


async def test_edit_bad_input(call):
    assert (await call("edit", {"file_path": "x", "old_string": "a"})).is_error
    assert (await call("edit", {"file_path": "x", "old_string": "a", "new_string": "b", "replace_all": "yes"})).is_error
    assert (await call("edit", "not an object")).is_error


async def test_multiedit_applies_in_order(workspace, call, store, ctx):
    target = workspace / "c.py"
    target.write_text("def f():\n    return 1\n")
    await view(call, "c.py")
    result = await call("multiedit", {"file_path": "c.py", "edits": [
        {"old_string": "def f", "new_string": "def g"},
        {"old_string": "return 1", "new_string": "return g"},  # sees the first edit's result
        {"old_string": "g", "new_string": "h", "replace_all": True},
    ]})
    assert not result.is_error, result.content
    assert target.read_text() == "def h():\n    return h\n"
    assert result.metadata["path"] == "c.py" and result.metadata["diff"].startswith("--- a/c.py")
    assert await history(store, ctx, target) == ["def f():\n    return 1\n", "def h():\n    return h\n"]


async def test_multiedit_is_all_or_nothing(workspace, call, store, ctx):
    target = workspace / "c.py"
    target.write_text("alpha\nbeta\n")
    await view(call, "c.py")
    result = await call("multiedit", {"file_path": "c.py", "edits": [
        {"old_string": "alpha", "new_string": "ALPHA"},
        {"old_string": "gamma", "new_string": "GAMMA"},
    ]})
    assert result.is_error and result.content.startswith("edit 2 of 2")
    assert target.read_text() == "alpha\nbeta\n"
    assert await history(store, ctx, target) == []


async def test_multiedit_creates_a_file_and_rejects_empty_edits(workspace, call):
    result = await call("multiedit", {"file_path": "n.txt", "edits": [
        {"old_string": "", "new_string": "a b\n"},
        {"old_string": "b", "new_string": "c"},
    ]})
    assert not result.is_error, result.content
    assert (workspace / "n.txt").read_text() == "a c\n"
    assert (await call("multiedit", {"file_path": "n.txt", "edits": []})).is_error
    assert (await call("multiedit", {"file_path": "n.txt", "edits": [{"old_string": "a"}]})).is_error


async def test_a_near_miss_shows_the_closest_lines(workspace, call):
    (workspace / "p.py").write_text("def f():\n\tif x:\n\t\treturn 1\n\treturn 2\n")
    await view(call, "p.py")
    near_miss = {"file_path": "p.py", "old_string": "    if x:\n        return 1", "new_string": "pass"}
    result = await call("edit", near_miss)
    assert result.is_error and "closest text is at lines 2-3" in result.content
    assert "     3|\t\treturn 1" in result.content
    unrelated = await call("edit", {"file_path": "p.py", "old_string": "class Z:", "new_string": "pass"})
    assert unrelated.is_error and "Nothing in the file looks like it" in unrelated.content
