"""The open-document mirror and the minimal edits, without a client (backend/documents.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crush_ls.backend.documents import Documents, apply_change, text_edits


def change(start: tuple[int, int], end: tuple[int, int], text: str) -> dict:
    return {"range": {"start": {"line": start[0], "character": start[1]},
                      "end": {"line": end[0], "character": end[1]}}, "text": text}


def test_incremental_changes_count_utf16_units(tmp_path: Path):
    documents = Documents(lambda path: True)
    uri = (tmp_path / "a.py").as_uri()
    documents.open(uri, 1, "x = '😀'\ny = 2\n")
    # '😀' is two UTF-16 units: the quote after it is at character 7.
    documents.change(uri, 2, [change((0, 7), (0, 8), "!'"), change((1, 4), (1, 5), "3")])
    document = documents.get(tmp_path / "a.py")
    assert document is not None and document.version == 2
    assert document.text == "x = '😀!'\ny = 3\n"
    documents.change(uri, 3, [{"text": "whole\n"}])
    assert document.text == "whole\n" and not document.lost


def test_a_change_that_does_not_fit_loses_the_document(tmp_path: Path):
    documents = Documents(lambda path: True)
    uri = (tmp_path / "a.py").as_uri()
    documents.open(uri, 1, "one line\n")
    documents.change(uri, 2, [change((5, 0), (5, 1), "x")])
    document = documents.get(tmp_path / "a.py")
    assert document is not None and document.lost
    documents.open(uri, 1, "again\n")  # opened anew: known again
    assert not documents.get(tmp_path / "a.py").lost  # type: ignore[union-attr]


def test_only_file_documents_inside_a_folder_are_mirrored(tmp_path: Path):
    inside = tmp_path / "ws"
    documents = Documents(lambda path: path.is_relative_to(inside))
    assert documents.open((inside / "a.py").as_uri(), 1, "") is not None
    assert documents.open((tmp_path / "b.py").as_uri(), 1, "") is None
    assert documents.open("untitled:Untitled-1", 1, "") is None
    documents.close((inside / "a.py").as_uri())
    assert documents.get(inside / "a.py") is None


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_text_edits_turn_the_old_text_into_the_new(encoding: str):
    rng = random.Random(12)
    pieces = ["a", "b", "\n", "😀", "é", "x\n", "\r\n", "  "]
    for _ in range(3000):
        old = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        text = old
        edits = text_edits(old, new, encoding)
        for edit in reversed(edits):  # the ranges are of the old text, in order
            text = apply_change(text, {"range": edit["range"], "text": edit["newText"]}, encoding)
        assert text == new, (old, new, edits)


def test_text_edits_are_minimal():
    old = "".join(f"line {n}\n" for n in range(1000))
    new = old.replace("line 500\n", "line five hundred\n")
    assert text_edits(old, new, "utf-16") == [
        {"range": {"start": {"line": 500, "character": 5}, "end": {"line": 500, "character": 8}},
         "newText": "five hundred"}]
