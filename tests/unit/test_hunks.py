"""backend/hunks.py: the hunks of a change and taking one back from the file as it is now."""

from __future__ import annotations

import pytest

from crush_ls.backend.hunks import NotApplicable, hunks, reject, unified
from crush_ls.tools.editing import unified_diff

BEFORE = "".join(f"line {n}\n" for n in range(1, 21))
AFTER = BEFORE.replace("line 2\n", "LINE 2\n").replace("line 18\n", "LINE 18\nadded\n")


def test_the_diff_of_the_hunks_is_the_edit_tools_diff():
    for before, after in [(BEFORE, AFTER), ("", "new\n"), ("gone\n", ""), ("a\nb", "a\nc"), ("x\r\ny\r\n", "x\r\nz\r\n")]:
        assert unified("f.txt", hunks("f.txt", before, after)) == unified_diff(before, after, "f.txt")


def test_ids_are_stable_and_differ_by_path_and_content():
    first = [h.id for h in hunks("f.txt", BEFORE, AFTER)]
    assert first == [h.id for h in hunks("f.txt", BEFORE, AFTER)]
    assert len(set(first)) == 2
    assert set(first).isdisjoint(h.id for h in hunks("g.txt", BEFORE, AFTER))


def test_reject_finds_the_lines_where_they_moved_and_keeps_the_rest():
    top, bottom = hunks("f.txt", BEFORE, AFTER)
    edited = "a line the person added\n" * 3 + AFTER.replace("line 10\n", "mine\n")
    assert reject(edited, [bottom]) == edited.replace("LINE 18\nadded\n", "line 18\n")
    assert reject(edited, [top, bottom]) == "a line the person added\n" * 3 + BEFORE.replace("line 10\n", "mine\n")


def test_reject_keeps_crlf_and_a_missing_last_line_end():
    [hunk] = hunks("f.txt", "x\r\ny\r\nz", "x\r\nY\r\nz")
    assert reject("x\r\nY\r\nz", [hunk]) == "x\r\ny\r\nz"


def test_a_hunk_whose_lines_were_edited_does_not_apply():
    top, _bottom = hunks("f.txt", BEFORE, AFTER)
    with pytest.raises(NotApplicable, match=top.id):
        reject(AFTER.replace("LINE 2\n", "line two\n"), [top])


def test_rejecting_a_created_file_empties_it_and_a_deleted_one_comes_back():
    [created] = hunks("f.txt", None, "new\nfile\n")
    assert reject("new\nfile\n", [created]) == ""
    [deleted] = hunks("f.txt", "old\n", None)
    assert reject("", [deleted]) == "old\n"
