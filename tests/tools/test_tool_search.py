"""`ls`, `glob` and `grep`: results, order, limits, ignore files, hidden directories, bad input.

Every test runs with both of grep's engines (ripgrep and Python's re): the
results must be the same."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crush_ls.tools.glob import MAX_RESULTS
from crush_ls.tools.grep import MAX_MATCHES


@pytest.fixture(autouse=True, params=["python", "ripgrep"])
def engine(request, monkeypatch) -> str:
    monkeypatch.setenv("CRUSH_LS_SEARCH", request.param)
    return request.param


def make(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def age(path: Path, seconds_ago: int) -> None:
    stamp = 1_700_000_000 - seconds_ago
    os.utime(path, (stamp, stamp))


async def test_glob_finds_files_newest_first(workspace, call):
    make(workspace, {"old.py": "", "src/new.py": "", "src/deep/mid.py": "", "notes.txt": ""})
    age(workspace / "old.py", 300)
    age(workspace / "src/deep/mid.py", 200)
    age(workspace / "src/new.py", 100)
    result = await call("glob", {"pattern": "**/*.py"})
    assert not result.is_error
    assert result.content.splitlines() == ["src/new.py", "src/deep/mid.py", "old.py"]


async def test_glob_pattern_forms(workspace, call):
    make(workspace, {"a.ts": "", "b.tsx": "", "src/c.ts": "", "src/d/e.ts": "", "f.js": ""})
    by_name = await call("glob", {"pattern": "*.{ts,tsx}"})
    assert sorted(by_name.content.splitlines()) == ["a.ts", "b.tsx", "src/c.ts", "src/d/e.ts"]
    by_path = await call("glob", {"pattern": "src/*.ts"})
    assert by_path.content.splitlines() == ["src/c.ts"]
    under = await call("glob", {"pattern": "*.ts", "path": "src/d"})
    assert under.content.splitlines() == ["src/d/e.ts"]
    none = await call("glob", {"pattern": "*.rs"})
    assert none.content == "No files found" and not none.is_error


async def test_glob_skips_hidden_and_ignored(workspace, call):
    make(workspace, {
        ".gitignore": "build/\n*.log\n",
        ".crushignore": "secret.py\n",
        "keep.py": "", "secret.py": "", "build/gen.py": "", "x.log": "",
        ".git/hooks/h.py": "", ".crush/db.py": "", ".hidden/h.py": "",
        "sub/.gitignore": "local.py\n!important.log\n", "sub/local.py": "", "sub/ok.py": "",
        "sub/important.log": "",
    })
    found = await call("glob", {"pattern": "**/*"})
    assert sorted(found.content.splitlines()) == ["keep.py", "sub/important.log", "sub/ok.py"]


async def test_glob_caps_results(workspace, call):
    make(workspace, {f"f{i:03}.txt": "" for i in range(MAX_RESULTS + 5)})
    result = await call("glob", {"pattern": "*.txt"})
    lines = [line for line in result.content.splitlines() if line.endswith(".txt")]
    assert len(lines) == MAX_RESULTS
    assert result.metadata["truncated"] is True and "truncated" in result.content


async def test_glob_bad_input(workspace, call):
    assert (await call("glob", {})).is_error
    assert (await call("glob", {"pattern": 5})).is_error
    assert "relative" in (await call("glob", {"pattern": "/etc/*"})).content
    assert (await call("glob", {"pattern": "*", "path": "missing"})).is_error


async def test_grep_reports_file_line_text(workspace, call):
    make(workspace, {"a.py": "import os\nx = 1\nos.getcwd()\n", "b.txt": "nothing\n"})
    result = await call("grep", {"pattern": r"os\.\w+"})
    assert not result.is_error
    assert result.content.splitlines()[1:] == ["a.py:3: os.getcwd()"]


async def test_grep_literal_include_and_order(workspace, call):
    make(workspace, {"old.py": "a.b(\n", "new.py": "a.b(\n", "doc.md": "a.b(\n"})
    age(workspace / "old.py", 100)
    age(workspace / "new.py", 10)
    result = await call("grep", {"pattern": "a.b(", "literal_text": True, "include": "*.py"})
    assert result.content.splitlines()[1:] == ["new.py:1: a.b(", "old.py:1: a.b("]
    bad_regex = await call("grep", {"pattern": "a.b("})
    assert bad_regex.is_error and "literal_text" in bad_regex.content


async def test_grep_respects_ignore_files_and_skips_binary(workspace, call):
    make(workspace, {".gitignore": "vendor/\n", "vendor/lib.py": "needle\n", "src/m.py": "needle\n",
                     ".hidden/h.py": "needle\n"})
    (workspace / "blob.bin").write_bytes(b"needle\x00\x01")
    result = await call("grep", {"pattern": "needle"})
    assert result.content.splitlines()[1:] == ["src/m.py:1: needle"]


async def test_grep_caps_matches(workspace, call):
    make(workspace, {"many.txt": "hit\n" * (MAX_MATCHES + 20)})
    result = await call("grep", {"pattern": "hit"})
    assert len([line for line in result.content.splitlines() if line.startswith("many.txt:")]) == MAX_MATCHES
    assert result.metadata == {"matches": MAX_MATCHES, "truncated": True}


async def test_grep_single_file_and_no_match(workspace, call):
    make(workspace, {"one.txt": "alpha\nbeta\n", "two.txt": "alpha\n"})
    result = await call("grep", {"pattern": "alpha", "path": "one.txt"})
    assert result.content.splitlines()[1:] == ["one.txt:1: alpha"]
    none = await call("grep", {"pattern": "gamma"})
    assert none.content == "No matches found" and not none.is_error
    assert (await call("grep", {"pattern": "x", "literal_text": "yes"})).is_error


async def test_grep_does_not_read_through_symlinks_pointing_out(workspace, outside, call):
    (outside / "secret.txt").write_text("needle in the secret\n")
    os.symlink(outside / "secret.txt", workspace / "link.txt")
    os.symlink(outside, workspace / "door")
    make(workspace, {"mine.txt": "needle here\n"})
    result = await call("grep", {"pattern": "needle"})
    assert result.content.splitlines()[1:] == ["mine.txt:1: needle here"]


async def test_ls_sees_what_glob_and_grep_see(workspace, call):
    """`ls` honours .gitignore and .crushignore like Crush's `ls` (it used to list ignored entries)."""
    make(workspace, {
        ".gitignore": "build/\n*.log\n", ".crushignore": "private.md\n",
        "keep.py": "", "x.log": "", "private.md": "", "build/gen.py": "", "node_modules/m.js": "",
        "src/.gitignore": "*.tmp\n!important.tmp\n", "src/a.py": "", "src/b.tmp": "", "src/important.tmp": "",
        ".hidden/h.py": "",
    })
    result = await call("ls", {})
    assert result.content.splitlines()[1:] == ["- src/", "  - a.py", "  - important.tmp", "- keep.py"]
    under = await call("ls", {"path": "src", "ignore": ["a.*"]})
    assert under.content.splitlines()[1:] == ["- important.tmp"]
    globbed = await call("glob", {"pattern": "**/*"})
    assert sorted(globbed.content.splitlines()) == ["keep.py", "src/a.py", "src/important.tmp"]


async def test_grep_lines_are_split_at_newlines_only(workspace, call):
    """CRLF files match `$` before the CR; a form feed does not start a line (it did with str.splitlines)."""
    (workspace / "crlf.txt").write_bytes(b"one end\r\ntwo\r\nthree end\r\n")
    (workspace / "ff.txt").write_bytes(b"a\x0cb end c\nd\x0c end\n")
    age(workspace / "crlf.txt", 10)
    age(workspace / "ff.txt", 20)
    result = await call("grep", {"pattern": "end$"})
    assert result.content.split("\n")[1:] == [
        "crlf.txt:1: one end", "crlf.txt:3: three end", "ff.txt:2: d\x0c end",
    ]


async def test_grep_skips_binary_heads_only_and_cuts_long_lines(workspace, call):
    (workspace / "late_nul.txt").write_bytes(b"x" * 9000 + b"\x00\nneedle late\n")
    (workspace / "early_nul.txt").write_bytes(b"\x00needle early\n")
    (workspace / "long.txt").write_text("needle " + "y" * 600 + "\n")
    (workspace / "big.txt").write_text("needle\n" + "z" * (2 * 1024 * 1024))
    age(workspace / "late_nul.txt", 10)
    age(workspace / "long.txt", 20)
    result = await call("grep", {"pattern": "needle"})
    assert result.content.splitlines()[1:] == ["late_nul.txt:2: needle late", "long.txt:1: needle " + "y" * 493 + "..."]


async def test_grep_patterns_ripgrep_cannot_read_still_work(workspace, call):
    """Look-around and back-references are Python-only: the search falls back to Python's re."""
    make(workspace, {"a.txt": "foobar\nfoobaz\nabab\n"})
    assert (await call("grep", {"pattern": "foo(?=baz)"})).content.splitlines()[1:] == ["a.txt:2: foobaz"]
    assert (await call("grep", {"pattern": r"(ab)\1"})).content.splitlines()[1:] == ["a.txt:3: abab"]


async def test_grep_equal_times_are_ordered_by_path(workspace, call):
    make(workspace, {"b.txt": "hit\n", "a/z.txt": "hit\n", "a.txt": "hit\n"})
    for name in ("b.txt", "a/z.txt", "a.txt"):
        age(workspace / name, 5)
    result = await call("grep", {"pattern": "hit"})
    assert result.content.splitlines()[1:] == ["a.txt:1: hit", "a/z.txt:1: hit", "b.txt:1: hit"]


async def test_a_deeper_crushignore_and_rules_above_the_path_apply_to_glob_and_grep(workspace, call):
    """ripgrep reads neither; the search hands it those above the path and leaves a deeper one to the Python walk."""
    make(workspace, {".gitignore": "*.log\n", "src/.gitignore": "/gen/\n", "src/pkg/.crushignore": "secret.py\n",
                     "src/pkg/secret.py": "hit\n", "src/pkg/ok.py": "hit\n", "src/gen/g.py": "hit\n",
                     "src/pkg/x.log": "hit\n", "src/pkg/gen/kept.py": "hit\n"})
    for path in (None, "src", "src/pkg"):
        globbed = await call("glob", {"pattern": "**/*", "path": path})
        assert sorted(globbed.content.splitlines()) == ["src/pkg/gen/kept.py", "src/pkg/ok.py"]
        grepped = await call("grep", {"pattern": "hit", "path": path})
        assert sorted(grepped.content.splitlines()[1:]) == ["src/pkg/gen/kept.py:1: hit", "src/pkg/ok.py:1: hit"]


async def test_glob_by_name_keeps_out_what_the_rules_ignore(workspace, call):
    """ripgrep lists only the files named like the pattern's last part: a name the rules ignore stays out."""
    make(workspace, {".gitignore": "*.log\n!keep.log\nbuild/\n", "x.log": "", "keep.log": "", "a/y.log": "",
                     "build/z.log": "", "a/.gitignore": "!y.log\n", "a/b/w.log": "", "m.py": ""})
    for pattern in ("*.log", "**/*.log", "a/**/*.log", "{a,build}/*.log"):
        found = await call("glob", {"pattern": pattern})
        assert sorted(found.content.splitlines()) == (["a/y.log", "keep.log"] if pattern[0] in "*" else ["a/y.log"])


async def test_hidden_files_a_rule_reincludes_stay_hidden(workspace, call):
    """`!.env` makes ripgrep list .env (and a name pattern lists .x.py): the walk never shows a hidden name."""
    make(workspace, {".gitignore": "!.env\n!.hid/\n", ".env": "hit\n", ".x.py": "hit\n", ".hid/h.py": "hit\n",
                     "a/.y.py": "hit\n", "a/ok.py": "hit\n"})
    for pattern in ("**/*", "*.py", "**/*.py", "a/*.py", ".*", "**/.*"):
        found = await call("glob", {"pattern": pattern})
        assert found.content.splitlines() == (["a/ok.py"] if "*.py" in pattern or pattern == "**/*" else
                                              ["No files found"])
    for include in (None, "*.py", ".*"):
        grepped = await call("grep", {"pattern": "hit", "include": include})
        assert grepped.content.splitlines()[1:] == ([] if include == ".*" else ["a/ok.py:1: hit"])


@pytest.mark.parametrize("newer", [0, 30, 70, MAX_RESULTS])
async def test_glob_equal_times_are_ordered_by_path_at_the_cut(workspace, call, newer):
    """`newer` files of distinct times, then 60 of one time: the newest first, the tied ones by path (ripgrep
    sorts them in the walk's order), the cut at 100 inside them or at their edge."""
    names = [f"n{i:03}.txt" for i in range(newer)] + [f"t/{i:03}.txt" for i in range(60, 0, -1)]
    make(workspace, dict.fromkeys(names, ""))
    for i, name in enumerate(names[:newer]):
        age(workspace / name, i)
    for name in names[newer:]:
        age(workspace / name, 1000)
    result = await call("glob", {"pattern": "**/*.txt"})
    expected = (names[:newer] + sorted(names[newer:]))[:MAX_RESULTS]
    assert [line for line in result.content.splitlines() if line.endswith(".txt")] == expected
    assert result.metadata["truncated"] is (newer + 60 > MAX_RESULTS)


async def test_glob_honours_a_deeper_crushignore_even_an_ignored_one(workspace, call):
    make(workspace, {".gitignore": ".crushignore\n", "sub/.crushignore": "x.py\n", "sub/x.py": "", "sub/y.py": "",
                     "x.py": ""})
    for pattern in ("**/*.py", "*.py", "x.py"):
        found = await call("glob", {"pattern": pattern})
        assert sorted(found.content.splitlines()) == (["x.py"] if pattern == "x.py" else ["sub/y.py", "x.py"])


@pytest.mark.parametrize(("pattern", "expected"), [
    ("{a,b/c}.py", ["a.py", "b/c.py"]),  # a "/" inside braces: the name is not the last part
    ("b/x**y", ["b/x/d.py", "b/x/q/y", "b/xy"]),  # `**` crossing folders within a name
    ("**.py", ["a.py", "b/c.py", "b/x/d.py"]),
    ("{b/x,q}/*.py", ["b/x/d.py"]),
    ("b/**", ["b/c.py", "b/x/d.py", "b/x/q/y", "b/xy"]),
    ("*.p[y]", ["a.py", "b/c.py", "b/x/d.py"]),
])
async def test_glob_patterns_whose_names_ripgrep_narrows_or_not(workspace, call, pattern, expected):
    make(workspace, {"a.py": "", "b/c.py": "", "b/x/d.py": "", "b/x/q/y": "", "b/xy": "", "e.txt": ""})
    found = await call("glob", {"pattern": pattern})
    assert sorted(found.content.splitlines()) == expected


async def test_glob_walks_only_the_folders_a_pattern_begins_with(workspace, outside, call):
    """`a/b/**` is walked from a/b, with the rules of the folders above it; a folder no walk enters has none."""
    make(outside, {"o.py": ""})
    make(workspace, {".gitignore": "build/\n!.hid/\n", "build/g.py": "", ".hid/h.py": "", "a/.gitignore": "/b/x.py\n",
                     "a/.crushignore": "*.tmp\n", "a/b/x.py": "", "a/b/y.py": "", "a/b/z.tmp": "", "a/b/c/x.py": "",
                     "node_modules/m.py": "", "f.py/g.py": "", "plain.py": ""})
    os.symlink(outside, workspace / "link")
    cases = {"a/b/**": ["a/b/c/x.py", "a/b/y.py"], "a/b/*.py": ["a/b/y.py"], "a/**/x.py": ["a/b/c/x.py"],
             "build/*.py": [], ".hid/*.py": [], "link/*.py": [], "node_modules/*": [], "missing/*.py": [],
             "plain.py/*": [], "f.py/*.py": ["f.py/g.py"], "a/b/c/x.py": ["a/b/c/x.py"]}
    for pattern, expected in cases.items():
        found = await call("glob", {"pattern": pattern})
        assert sorted(found.content.splitlines()) == (expected or ["No files found"]), pattern
    below = await call("glob", {"pattern": "b/**/*.py", "path": "a"})
    assert sorted(below.content.splitlines()) == ["a/b/c/x.py", "a/b/y.py"]
