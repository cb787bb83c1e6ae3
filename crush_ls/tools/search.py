"""What `ls`, `glob` and `grep` compute, as plain functions of the file tree.

They run in a worker process (worker.py), never in the server: a pattern the
model chose (a regex, a glob, a .gitignore it wrote) can take unbounded time,
and a process can be stopped at a deadline or on a cancel, a thread cannot.
Each function calls `emit(line)` for each line of its result, in order, and
returns whether the result was cut short.

`glob` and `grep` walk the tree with ripgrep when it is installed (the `rg`
next to the Python that runs us, or on PATH) and walks it as the Python walk
does (walk.py); `grep` reads lines with ripgrep when it reads the pattern,
otherwise with Python's `re`. Which files, in which order, and how a line is
shown are decided here in every case, so the output is the same.
"""

from __future__ import annotations

import fnmatch
import heapq
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from .globs import compile_glob, name_superset
from .paths import ToolInputError, ensure_unchanged, is_inside, relative_display
from .walk import (
    Scratch,
    Walker,
    WalkTimeout,
    deeper_crushignore,
    deferred_crushignore_check,
    ignore_base,
    is_binary,
    python_files,
    rg_file_parts,
    rg_files,
    rg_plan,
    ripgrep,
    run_rg,
    skipped_name,
)

Emit = Callable[[str], None]

LS_MAX_ENTRIES = 1000
GLOB_MAX_RESULTS = 100
GLOB_TIMEOUT_S = 30.0
# glob's ripgreps, sharing the walk (walk.shared_walk): sorting by time, each walks on one thread.
SORTING_RIPGREPS = min(4, os.cpu_count() or 1)
GREP_MAX_MATCHES = 100
GREP_MAX_FILE_BYTES = 2 * 1024 * 1024
GREP_MAX_LINE = 500
GREP_TIMEOUT_S = 20.0
# Files handed to one ripgrep run: the newest first, so the first run usually has the 100 lines.
RG_FIRST_BATCH = 256
RG_MAX_ARG_BYTES = 96 * 1024
# How ripgrep reads a file: binary files and encodings are judged here, as in the Python search.
RG_READING = ("--text", "--encoding=none", "--crlf")


# ---------------------------------------------------------------- ls
def tree(root: Path, start: Path, ignore: list[str], depth: int, emit: Emit) -> bool:
    """The tree under `start` (directories first, by name); True when cut at LS_MAX_ENTRIES.

    The Python walk's own entries, whatever the engine: ripgrep lists neither folders nor symlinks,
    and the tree stops at LS_MAX_ENTRIES (a folder's entries are matched against the rules lazily).
    """
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if not start.exists():
        raise ToolInputError(f"directory not found: {start}")
    if not start.is_dir():
        raise ToolInputError(f"{start} is not a directory; use view")
    walker = Walker(root, start)
    shown = 0

    def walk(directory: Path, level: int) -> bool:
        nonlocal shown
        for entry in walker.entries(directory, dirs_first=True):
            if any(fnmatch.fnmatch(entry.name, p) for p in ignore):
                continue
            if shown >= LS_MAX_ENTRIES:
                return False
            is_dir = entry.is_dir(follow_symlinks=False)
            emit("  " * level + "- " + entry.name + ("/" if is_dir else ""))
            shown += 1
            if is_dir and level + 1 < depth and not walk(Path(entry.path), level + 1):
                return False
        return True

    return not walk(start, 0)


# ---------------------------------------------------------------- the files glob and grep see
def ripgrep_for(engine: str) -> str | None:
    """The ripgrep binary the engine uses: `auto` when installed, `ripgrep` always, `python` never."""
    rg = ripgrep() if engine in ("auto", "ripgrep") else None
    if engine == "ripgrep" and rg is None:
        raise ToolInputError("ripgrep is not installed")
    return rg


def visible_files(root: Path, start: Path, rg: str | None, deadline: float) -> tuple[list[str], bool]:
    """The visible regular files under `start` (relative, "/"; any order), and whether the deadline cut the walk.

    Walked by ripgrep when given one and it walks this tree as the Python walk does (walk.rg_plan).
    """
    listed = rg_files(rg, root, start, deadline) if rg is not None else None
    if listed is not None:
        return listed
    files: list[str] = []
    try:
        files.extend(python_files(root, start, deadline))
    except WalkTimeout:
        return files, True
    return files, False


class Found(NamedTuple):
    """A file of the walk; tuples order them newest first (modification times in ns, as ripgrep compares
    them), equal times by path, so the order never depends on the walk."""

    age: float  # minus the modification time
    rel: str  # relative to the search's start, with "/"
    size: int


def found(start: Path, rel: str) -> Found:
    try:
        stat = os.lstat(f"{start}/{rel}")  # not os.path.join: a tree has 100,000 of them
    except OSError:
        return Found(0, rel, 0)
    return Found(-stat.st_mtime_ns, rel, stat.st_size)


# ---------------------------------------------------------------- glob
def glob(root: Path, start: Path, pattern: str, emit: Emit, unsaved: list[str] | None = None,
         engine: str = "auto") -> bool:
    """Files under `start` matching `pattern`, newest first, at most GLOB_MAX_RESULTS; `unsaved` are
    documents open in the editor and not on disk (they exist for the person: the newest of all)."""
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if not start.is_dir():
        raise ToolInputError(f"directory not found: {start}")
    matches = compile_glob(pattern)
    files = [Found(-float("inf"), rel, 0) for path in unsaved or ()
             if is_inside(start, Path(path)) and matches(rel := Path(path).relative_to(start).as_posix())]
    deadline = time.monotonic() + GLOB_TIMEOUT_S
    rg = ripgrep_for(engine)
    listed = rg_glob(rg, root, start, pattern, matches, GLOB_MAX_RESULTS - len(files), deadline) if rg else None
    if listed is None:
        rels, cut = visible_files(root, start, None, deadline)
        listed = [found(start, rel) for rel in rels if matches(rel)], cut
    files += listed[0]
    timed_out = listed[1]
    for file in heapq.nsmallest(GLOB_MAX_RESULTS, files):
        emit(relative_display(root, start / file.rel))
    return timed_out or len(files) > GLOB_MAX_RESULTS


def rg_glob(rg: str, root: Path, start: Path, pattern: str, matches: Callable[[str], bool], wanted: int,
            deadline: float) -> tuple[list[Found], bool] | None:
    """The files matching `pattern` that can be among the `wanted` newest (and one more if there are more),
    found by ripgrep, and whether the deadline cut the walk; None when ripgrep cannot walk this tree alike.

    ripgrep sorts them (by time, the files of the pattern's names only), walks only the folders the pattern
    begins with, and Python looks again at the first of them only.
    """
    folders = literal_folders(pattern)
    if folders and not entered(start, folders):
        return [], False  # hidden, always skipped, a link or no folder: no walk goes in
    flags = ["--sortr=modified", *rg_type(name_superset(pattern))]
    below = start / folders
    listed = rg_file_parts(rg, root, below, deadline, flags, SORTING_RIPGREPS) if (
        folders and ignore_base(root, below) == ignore_base(root, start)) else None
    prefix = folders + "/" if listed is not None else ""
    listed = listed or rg_file_parts(rg, root, start, deadline, flags, SORTING_RIPGREPS)
    if listed is None:
        return None
    newest_of_all = {file.rel: file for part in listed[0]  # a file two ripgreps listed (the tree changed) once
                     for file in newest(start, filter(matches, (prefix + name for name in part)), wanted)}
    return list(newest_of_all.values()), listed[1]


def literal_folders(pattern: str) -> str:
    """The folders a pattern's paths begin with, written out in it (`src/app/**/*.ts`: `src/app`)."""
    folders = []
    for part in pattern.split("/")[:-1]:
        if not part or part == "." or any(c in part for c in "*?[{"):
            break
        folders.append(part)
    return "/".join(folders)


def entered(start: Path, folders: str) -> bool:
    """Whether the walk of `start` may enter `folders` (a relative "/" path): folders all, none hidden or
    always skipped, none a link (the ignore rules are ripgrep's to apply)."""
    path = start
    for name in folders.split("/"):
        path = path / name
        try:
            if skipped_name(name) or not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
    return True


def newest(start: Path, rels: Iterator[str], wanted: int) -> list[Found]:
    """The files of `rels` (newest first, as ripgrep sorted them) that can be among the `wanted` newest,
    and one more when there are more: only those are looked at again, for the ties ripgrep orders by walk."""
    files: list[Found] = []
    for rel in rels:
        file = found(start, rel)
        if len(files) >= wanted and (not files or file.age > files[wanted - 1].age):
            return [*files, file]  # older than the last that is shown: so is every one after it
        files.append(file)
    return files


def rg_type(name_glob: str | None) -> list[str]:
    """ripgrep's flags to list only files named like `name_glob` (globs.name_superset)."""
    return ["--type-add", f"crushglob:{name_glob}", "--type=crushglob"] if name_glob else []


# ---------------------------------------------------------------- grep
class Candidates(NamedTuple):
    """The files grep reads, newest first, and whether the walk was cut by the deadline."""

    paths: list[str]
    cut: bool


def candidates(root: Path, start: Path, include: str | None, pattern: str, rg: str | None,
               deadline: float) -> Candidates:
    """The files grep reads: visible, matching `include`, not over the size limit.

    With ripgrep, only those it finds a match in (`rg -l`, walking as `rg --files` does): the walk
    and a first look at every file in one parallel run.
    """
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if start.is_file():
        return Candidates([str(start)] if start.stat().st_size <= GREP_MAX_FILE_BYTES else [], False)
    if not start.is_dir():
        raise ToolInputError(f"path not found: {start}")
    try:
        listed = rg_matching_files(rg, root, start, pattern, deadline, include) if rg is not None else None
    except RipgrepRefused:
        listed = visible_files(root, start, rg, deadline)  # ripgrep walks, Python's re reads
    rels, cut = listed if listed is not None else visible_files(root, start, None, deadline)
    wanted = compile_glob(include) if include else None
    files = sorted(found(start, rel) for rel in rels if wanted is None or wanted(rel))
    return Candidates([f"{start}/{f.rel}" for f in files if f.size <= GREP_MAX_FILE_BYTES], cut)


def rg_matching_files(rg: str, root: Path, start: Path, pattern: str, deadline: float,
                      include: str | None = None) -> tuple[list[str], bool] | None:
    """The visible files in which ripgrep finds `pattern` (as `rg_matches` reads them), and whether the
    deadline cut the search; None when ripgrep cannot walk this tree alike; RipgrepRefused when it cannot
    read the pattern. The names of `include` (globs.name_superset) narrow what ripgrep reads; the include
    itself is matched by the caller."""
    narrow = rg_type(name_superset(include)) if include else []
    with Scratch() as scratch:
        plan = rg_plan(root, start, scratch)
        if plan is None:
            return None
        check = deferred_crushignore_check(rg, plan)
        try:
            files, cut = run_rg(rg, plan, ["--files-with-matches", *narrow, *RG_READING, "--regexp", pattern],
                                deadline)
        finally:
            deeper = deeper_crushignore(check, plan, deadline)
    if not deeper and not files and not cut and not rg_reads(rg, pattern):
        raise RipgrepRefused(pattern)
    return None if deeper else (files, cut)


def rg_reads(rg: str, pattern: str) -> bool:
    """Whether ripgrep accepts the pattern (it refuses look-around and back-references)."""
    done = subprocess.run([rg, "--no-config", "--quiet", "--regexp", pattern, "--", "-"], input=b"",
                          capture_output=True)
    return not (done.returncode == 2 and b"regex" in done.stderr)


def shown_line(display: str, number: int, line: str) -> str:
    text = line if len(line) <= GREP_MAX_LINE else line[:GREP_MAX_LINE] + "..."
    return f"{display}:{number}: {text}"


def text_lines(raw: bytes) -> list[str]:
    """Lines as ripgrep sees them: split at "\\n", a "\\r" before it dropped."""
    lines = raw.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def python_matches(path: str, regex: re.Pattern[str], limit: int) -> list[tuple[int, str]]:
    """(line number, line) of up to `limit` matching lines of a text file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    if is_binary(raw):
        return []
    found = []
    for number, line in enumerate(text_lines(raw), start=1):
        if regex.search(line):
            found.append((number, line))
            if len(found) >= limit:
                break
    return found


class RipgrepRefused(Exception):
    """ripgrep cannot read this pattern (look-around, back-references...): Python searches instead."""


def _batches(files: list[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for path in files:
        limit = RG_FIRST_BATCH if not batches else RG_MAX_ARG_BYTES
        cost = len(os.fsencode(path)) + 1 if batches else 1
        if current and size + cost > limit:
            batches.append(current)
            current, size = [], 0
        current.append(path)
        size += cost
    return batches + [current] if current else batches


def rg_matches(rg: str, pattern: str, files: list[str], limit: int,
               deadline: float) -> dict[str, list[tuple[int, str]]]:
    """Matching lines of `files` (all text, all under the size limit) as ripgrep finds them."""
    command = [rg, "--no-config", "--null", "--line-number", "--with-filename", "--no-heading", "--color=never",
               *RG_READING, f"--max-count={limit}", "--regexp", pattern, "--"]
    done = subprocess.run(
        command + files, capture_output=True,
        timeout=max(0.1, deadline - time.monotonic()),
    )
    if done.returncode == 2 and b"regex" in done.stderr and not done.stdout:
        raise RipgrepRefused(done.stderr.decode(errors="replace"))
    found: dict[str, list[tuple[int, str]]] = {}
    for record in done.stdout.split(b"\n"):
        name, sep, rest = record.partition(b"\x00")
        if not sep:
            continue
        number, _, text = rest.partition(b":")
        line = text.decode("utf-8", errors="replace")
        found.setdefault(os.fsdecode(name), []).append((int(number), line.removesuffix("\r")))
    return found


def _text_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return not is_binary(f.read(8192))
    except OSError:
        return False


def grep(root: Path, start: Path, pattern: str, include: str | None, engine: str, emit: Emit,
         texts: dict[str, str] | None = None) -> bool:
    """Matching lines (`path:line: text`) of the newest files first, at most GREP_MAX_MATCHES.
    `texts` are the editor's texts of open documents: searched first, instead of their files."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + GREP_TIMEOUT_S
    rg = ripgrep_for(engine)
    files, cut = candidates(root, start, include, pattern, rg, deadline)
    lines = Lines(root, emit)
    if texts and _grep_texts(root, start, include, texts, regex, lines):
        return True
    files = [path for path in files if path not in (texts or {})]
    if rg is not None:
        try:
            return _grep_rg(rg, pattern, files, lines, deadline) or cut
        except RipgrepRefused:
            pass  # refused at its first run, before anything was shown
    for path in files:
        if time.monotonic() > deadline:
            return True
        if lines.add(path, python_matches(path, regex, lines.wanted())):
            return True
    return cut


def searched_on_disk(root: Path, start: Path, include: str | None, path: Path) -> bool:
    """Whether grep reads `path` when it searches the disk (one file: no walk)."""
    if path == start:
        return start.is_file() and start.stat().st_size <= GREP_MAX_FILE_BYTES
    if not Walker(root, start).is_visible_file(start, path):
        return False
    return (include is None or compile_glob(include)(path.relative_to(start).as_posix())) and (
        path.stat().st_size <= GREP_MAX_FILE_BYTES)


def _grep_texts(root: Path, start: Path, include: str | None, texts: dict[str, str],
                regex: re.Pattern[str], lines: Lines) -> bool:
    """Grep the open documents that a search of the disk would read, and those not on disk."""
    wanted = compile_glob(include) if include else None
    for path, text in texts.items():
        on_disk = os.path.lexists(path)
        if on_disk and not searched_on_disk(root, start, include, Path(path)):
            continue  # ignored, hidden or too large: as for the disk's files
        if not on_disk and (not is_inside(start, Path(path)) or (
                wanted is not None and not wanted(Path(path).relative_to(start).as_posix()))):
            continue
        found = [(n, line) for n, line in enumerate(text_lines(text.encode("utf-8", "surrogatepass")), start=1)
                 if regex.search(line)]
        if lines.add(path, found[:lines.wanted()]):
            return True
    return False


class Lines:
    """The lines shown so far; `add` says when the result is full (one more line than shown exists)."""

    def __init__(self, root: Path, emit: Emit) -> None:
        self.root, self.emit, self.shown = root, emit, 0

    def wanted(self) -> int:
        return GREP_MAX_MATCHES + 1 - self.shown

    def add(self, path: str, found: list[tuple[int, str]]) -> bool:
        for number, line in found:
            if self.shown >= GREP_MAX_MATCHES:
                return True
            self.emit(shown_line(relative_display(self.root, Path(path)), number, line))
            self.shown += 1
        return False


def _grep_rg(rg: str, pattern: str, files: list[str], lines: Lines, deadline: float) -> bool:
    for batch in _batches(files):
        if time.monotonic() > deadline:
            return True
        try:
            found = rg_matches(rg, pattern, batch, lines.wanted(), deadline)
        except subprocess.TimeoutExpired:
            return True
        for path in batch:
            if path in found and _text_file(path) and lines.add(path, found[path]):
                return True
    return False
