"""ripgrep's walk (`rg --files`, `rg -l`) against the Python walk, the reference: the same files, or none
at all (then the Python walk decides). Trees with the ignore rules, names and links the walk must agree on."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from crush_ls.tools.globs import compile_glob
from crush_ls.tools.search import RipgrepRefused, rg_matching_files, visible_files
from crush_ls.tools.walk import python_files, rg_file_parts, rg_files, ripgrep

RG = ripgrep()
pytestmark = pytest.mark.skipif(RG is None, reason="ripgrep is a dependency of crush-ls; this is its walk")


def make(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def both(root: Path, start: Path | None = None) -> tuple[list[str] | None, list[str]]:
    start = start or root
    assert RG is not None
    listed = rg_files(RG, root, start, time.monotonic() + 30)
    reference = sorted(python_files(root, start))
    listed_sorted = sorted(listed[0]) if listed is not None else None
    # What glob and grep use: ripgrep's list when it has one, else the Python walk's.
    assert sorted(visible_files(root, start, RG, time.monotonic() + 30)[0]) == (listed_sorted or reference)
    return listed_sorted, reference


def same(root: Path, start: Path | None = None) -> list[str]:
    listed, reference = both(root, start)
    assert listed is not None, "ripgrep should walk this tree"
    assert listed == reference
    return listed


RULES = {
    ".gitignore": "build/\n*.log\n!keep.log\n/top_only.txt\ndocs/*.tmp\n# a comment\n\n",
    "keep.log": "", "x.log": "", "top_only.txt": "", "a/top_only.txt": "", "build/gen.py": "", "a/build/g.py": "",
    "docs/n.tmp": "", "docs/deeper/n.tmp": "", "docs/ok.md": "",
    "a/.gitignore": "!x.log\n/anchored.py\nsub*/\n", "a/x.log": "", "a/anchored.py": "", "a/b/anchored.py": "",
    "a/sub1/f.py": "", "a/sub1x.py": "", "a/b/c/d/deep.py": "",
    "nested/.git/config": "", "nested/x.log": "", "nested/y.py": "",  # a repository inside: outer rules still apply
    "node_modules/m.js": "", "a/node_modules": "", "__pycache__/c.pyc": "", ".hidden/h.py": "", ".env": "",
    "a/.crush/db": "", "sp ace/ü.py": "", "-dash/f.py": "",
}


def test_ignore_rules_hidden_and_skipped_names(tmp_path):
    make(tmp_path, RULES)
    files = same(tmp_path)
    assert "keep.log" in files and "a/x.log" in files and "a/b/anchored.py" in files and "a/sub1x.py" in files
    assert "build/gen.py" not in files and "a/sub1/f.py" not in files and "nested/x.log" not in files


def test_links_and_special_files_are_not_files_of_the_walk(tmp_path):
    outside = tmp_path / "outside"
    make(outside, {"secret.txt": "", "d/s.txt": ""})
    root = tmp_path / "w"
    make(root, {"real.txt": "", "dir/inner.txt": ""})
    os.symlink(outside / "secret.txt", root / "out.txt")
    os.symlink(root / "real.txt", root / "in.txt")
    os.symlink(outside / "d", root / "door")
    os.symlink(root / "dir", root / "loop")
    os.symlink(root / "missing", root / "broken")
    os.mkfifo(root / "fifo")
    assert same(root) == ["dir/inner.txt", "real.txt"]


@pytest.mark.parametrize("start", ["a", "a/b", "a/b/c", "docs", "-dash"])
def test_a_subfolder_honours_the_rules_above_it(tmp_path, start):
    make(tmp_path, RULES)
    make(tmp_path, {"a/b/.gitignore": "*.md\n", "a/b/c/r.md": "", "a/b/c/x.log": "", "a/b/c/keep.log": ""})
    same(tmp_path, tmp_path / start)


def test_crushignore_of_the_start_is_applied_by_ripgrep(tmp_path):
    make(tmp_path, {".gitignore": "*.log\n", ".crushignore": "secret/\n/private.md\n", "secret/s.py": "",
                    "private.md": "", "a/private.md": "", "x.log": "", "ok.py": "", "a/.gitignore": "!x.log\n",
                    "a/x.log": ""})
    assert same(tmp_path) == ["a/private.md", "a/x.log", "ok.py"]
    make(tmp_path, {"a/.crushignore": "/private.md\n", "a/.gitignore": "*.log\n", "a/b/private.md": ""})
    assert same(tmp_path / "a", tmp_path / "a") == ["b/private.md"]  # a workspace whose own .crushignore it is
    assert same(tmp_path, tmp_path / "a") == ["b/private.md"]  # a folder whose own .crushignore it is


@pytest.mark.parametrize("layout", [
    {"sub/.crushignore": "x.py\n"},  # deeper in the tree
    {".gitignore": ".*\n", "sub/.crushignore": "x.py\n"},  # deeper, and itself ignored (still read)
    {".gitignore": "*.py\n", ".crushignore": "!x.py\n"},  # re-includes what .gitignore ignores
    {".gitignore": "!x.py\n", ".crushignore": "*.py\n"},  # a .gitignore rule would outrank it
])
def test_trees_ripgrep_cannot_walk_alike_are_left_to_the_python_walk(tmp_path, layout):
    make(tmp_path, {"sub/x.py": "", "sub/y.py": "", "x.py": "", **layout})
    listed, _ = both(tmp_path)
    assert listed is None


def test_rules_above_the_start_that_name_paths_or_ignore_it(tmp_path):
    make(tmp_path, {"a/.gitignore": "/b/x.py\n", "a/b/x.py": "", "a/b/y.py": "", ".gitignore": "z/\n", "z/w.py": ""})
    assert same(tmp_path, tmp_path / "a" / "b") == ["y.py"]  # an anchored rule of a folder in between, rebased
    assert both(tmp_path, tmp_path / "z")[0] is None  # inside an ignored folder
    assert same(tmp_path, tmp_path / "a") == ["b/y.py"]  # the anchored rule is the start's own


def test_a_start_outside_the_workspace_reads_its_own_rules_only(tmp_path):
    make(tmp_path, {"ws/.gitignore": "*.py\n", "other/.gitignore": "*.md\n", "other/a.py": "", "other/b.md": ""})
    assert same(tmp_path / "ws", tmp_path / "other") == ["a.py"]


def test_rg_l_finds_the_visible_files_the_pattern_matches(tmp_path):
    make(tmp_path, RULES)
    make(tmp_path, {"a/hit.py": "x = needle\n", "build/hit.py": "needle\n", ".hidden/hit.py": "needle\n",
                    "docs/crlf.md": "needle\r\n", "late.txt": "a" * 9000 + "\0needle\n"})
    assert RG is not None
    listed = rg_matching_files(RG, tmp_path, tmp_path, r"needle$", time.monotonic() + 30)
    assert listed is not None
    regex = re.compile(r"needle\r?$", re.M)
    expected = [rel for rel in python_files(tmp_path, tmp_path)
                if regex.search((tmp_path / rel).read_bytes().decode("utf-8", "replace"))]
    assert sorted(listed[0]) == sorted(expected) == ["a/hit.py", "docs/crlf.md", "late.txt"]
    with pytest.raises(RipgrepRefused):  # Python's only
        rg_matching_files(RG, tmp_path, tmp_path, r"(a)\1", time.monotonic() + 30)


def test_rebased_rules_of_a_folder_with_glob_characters_in_its_name(tmp_path):
    make(tmp_path, {"we[i]rd *!#/.gitignore": "/b/x.py\n*.log\n!/b/x.log\n", "we[i]rd *!#/b/x.py": "",
                    "we[i]rd *!#/b/y.py": "", "we[i]rd *!#/b/x.log": "", "we[i]rd *!#/b/z.log": ""})
    assert same(tmp_path, tmp_path / "we[i]rd *!#" / "b") == ["x.log", "y.py"]


@pytest.mark.xfail(strict=True, reason="pathspec lets `*` outrank a later `!*/` on a folder; git and ripgrep do not")
def test_the_whitelist_idiom_reincludes_folders(tmp_path):
    make(tmp_path, {".gitignore": "*\n!*/\n!*.py\n", "a.py": "", "b.txt": "", "sub/c.py": "", "sub/d.txt": ""})
    assert same(tmp_path) == ["a.py", "sub/c.py"]


@pytest.mark.parametrize("include", ["*.py", "*.{md,txt}", "?.py", "hit*", "x*y.py", "*.p[y]", "**/*.py", "a/*.py", "**.py"])
def test_rg_l_with_an_include_finds_what_the_include_keeps(tmp_path, include):
    make(tmp_path, {"a.py": "needle\n", "a/hit.py": "needle\n", "a/b.md": "needle\n", "c.txt": "needle\n",
                    "xzy.py": "needle\n", "hit.rs": "needle\n", "ab.py": "needle\n", "none.py": "other\n",
                    ".gitignore": "ignored.py\n", "ignored.py": "needle\n"})
    assert RG is not None
    listed = rg_matching_files(RG, tmp_path, tmp_path, "needle", time.monotonic() + 30, include)
    assert listed is not None
    wanted = compile_glob(include)
    expected = [rel for rel in python_files(tmp_path, tmp_path) if "needle" in (tmp_path / rel).read_text()]
    assert sorted(rel for rel in listed[0] if wanted(rel)) == sorted(rel for rel in expected if wanted(rel))


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("start", ["", "a", "docs"])
def test_ripgreps_sharing_the_walk_list_each_file_once(tmp_path, parts, start):
    """Each takes some folders (two levels down when the start has few) and leaves the rest to the others."""
    make(tmp_path, RULES)
    make(tmp_path, {"a/b/c/e.py": "", "a/b/f.py": "", "a/g/h.py": "", "a/g/i/j.py": "", "docs/x/y.md": "",
                    "docs/z/w.md": "", "a/b/.gitignore": "f.py\n", "a/g/.gitignore": "!*.log\n", "a/g/k.log": "",
                    "a/we[i]rd *!#{x}/l.py": "", "docs/we[i]rd *!#{x}/l.md": "", "a/w?": "", "a/w*/m.py": ""})
    assert RG is not None
    listed = rg_file_parts(RG, tmp_path, tmp_path / start, time.monotonic() + 30, [], parts)
    assert listed is not None and len(listed[0]) > 1
    files = [rel for part in listed[0] for rel in part]
    assert sorted(files) == same(tmp_path, tmp_path / start)
