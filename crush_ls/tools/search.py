"""What `ls`, `glob` and `grep` compute, as plain functions of the file tree.

They run in a worker process (worker.py), never in the server: a pattern the
model chose (a regex, a glob, a .gitignore it wrote) can take unbounded time,
and a process can be stopped at a deadline or on a cancel, a thread cannot.
Each function calls `emit(line)` for each line of its result, in order, and
returns whether the result was cut short.

`grep` searches file contents with ripgrep when it is installed (the `rg`
next to the Python that runs us, or on PATH) and the pattern is one ripgrep
reads; otherwise with Python's `re`. Which files, in which order, and how a
line is shown are decided here in both cases, so the output is the same.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .globs import compile_glob
from .paths import ToolInputError, ensure_unchanged, is_inside, relative_display
from .walk import Walker, WalkTimeout, entry_stat, is_binary, walk_files

Emit = Callable[[str], None]

LS_MAX_ENTRIES = 1000
GLOB_MAX_RESULTS = 100
GLOB_TIMEOUT_S = 30.0
GREP_MAX_MATCHES = 100
GREP_MAX_FILE_BYTES = 2 * 1024 * 1024
GREP_MAX_LINE = 500
GREP_TIMEOUT_S = 20.0
# Files handed to one ripgrep run: the newest first, so the first run usually has the 100 lines.
RG_FIRST_BATCH = 256
RG_MAX_ARG_BYTES = 96 * 1024


# ---------------------------------------------------------------- ls
def tree(root: Path, start: Path, ignore: list[str], depth: int, emit: Emit) -> bool:
    """The tree under `start` (directories first, by name); True when cut at LS_MAX_ENTRIES."""
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if not start.exists():
        raise ToolInputError(f"directory not found: {start}")
    if not start.is_dir():
        raise ToolInputError(f"{start} is not a directory; use view")
    walker = Walker(root, start)
    shown = 0

    def walk(directory: Path, level: int) -> bool:
        nonlocal shown
        entries = [e for e in walker.entries(directory) if not any(fnmatch.fnmatch(e.name, p) for p in ignore)]
        for entry in sorted(entries, key=lambda e: not e.is_dir(follow_symlinks=False)):
            if shown >= LS_MAX_ENTRIES:
                return False
            is_dir = entry.is_dir(follow_symlinks=False)
            emit("  " * level + "- " + entry.name + ("/" if is_dir else ""))
            shown += 1
            if is_dir and level + 1 < depth and not walk(Path(entry.path), level + 1):
                return False
        return True

    return not walk(start, 0)


# ---------------------------------------------------------------- glob
class Found(NamedTuple):
    path: str  # as the walk reached it (not resolved)
    rel: str  # relative to the search's start, with "/"
    mtime: float
    size: int


def found(entry: os.DirEntry[str], rel: str) -> Found:
    stat = entry_stat(entry)
    return Found(entry.path, rel, stat.st_mtime if stat else 0.0, stat.st_size if stat else 0)


def newest_first(files: list[Found]) -> list[Found]:
    """Newest first (modification time); equal times by path, so the order never depends on the walk."""
    return sorted(files, key=lambda f: (-f.mtime, f.rel))


def glob(root: Path, start: Path, pattern: str, emit: Emit, unsaved: list[str] | None = None) -> bool:
    """Files under `start` matching `pattern`, newest first, at most GLOB_MAX_RESULTS; `unsaved` are
    documents open in the editor and not on disk (they exist for the person: the newest of all)."""
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if not start.is_dir():
        raise ToolInputError(f"directory not found: {start}")
    matches = compile_glob(pattern)
    files = [Found(path, rel, float("inf"), 0) for path in unsaved or ()
             if is_inside(start, Path(path)) and matches(rel := Path(path).relative_to(start).as_posix())]
    timed_out = False
    try:
        for entry, rel in walk_files(root, start, deadline=time.monotonic() + GLOB_TIMEOUT_S):
            if matches(rel):
                files.append(found(entry, rel))
    except WalkTimeout:
        timed_out = True
    for file in newest_first(files)[:GLOB_MAX_RESULTS]:
        emit(relative_display(root, Path(file.path)))
    return timed_out or len(files) > GLOB_MAX_RESULTS


# ---------------------------------------------------------------- grep
def candidates(root: Path, start: Path, include: str | None, deadline: float) -> list[str]:
    """The files grep reads, newest first: visible, not over the size limit, not leading out."""
    ensure_unchanged(start)  # the folder the permission decision saw, no symlink swapped in
    if start.is_file():
        return [str(start)] if start.stat().st_size <= GREP_MAX_FILE_BYTES else []
    if not start.is_dir():
        raise ToolInputError(f"path not found: {start}")
    wanted = compile_glob(include) if include else None
    # Inside the workspace, a symlink to a file outside is not read: that would need a person's yes.
    confined = is_inside(root, start)
    files = [
        found(entry, rel) for entry, rel in walk_files(root, start, deadline)
        if (wanted is None or wanted(rel))
        and (not confined or not entry.is_symlink() or is_inside(root, Path(os.path.realpath(entry.path))))
    ]
    return [f.path for f in newest_first(files) if f.size <= GREP_MAX_FILE_BYTES]


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


def ripgrep() -> str | None:
    """The ripgrep binary: the `ripgrep` package's, beside this Python, or one on PATH."""
    beside = Path(sys.executable).parent / "rg"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("rg")


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
               # Binary files and encodings are judged here, as in the Python search.
               "--text", "--encoding=none", "--crlf", f"--max-count={limit}", "--regexp", pattern, "--"]
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
    try:
        files = candidates(root, start, include, deadline)
    except WalkTimeout:
        return True
    rg = ripgrep() if engine in ("auto", "ripgrep") else None
    if engine == "ripgrep" and rg is None:
        raise ToolInputError("ripgrep is not installed")
    lines = Lines(root, emit)
    if texts and _grep_texts(start, include, files, texts, regex, lines):
        return True
    files = [path for path in files if path not in (texts or {})]
    if rg is not None:
        try:
            return _grep_rg(rg, pattern, files, lines, deadline)
        except RipgrepRefused:
            pass  # refused at its first run, before anything was shown
    for path in files:
        if time.monotonic() > deadline:
            return True
        if lines.add(path, python_matches(path, regex, lines.wanted())):
            return True
    return False


def _grep_texts(start: Path, include: str | None, files: list[str], texts: dict[str, str],
                regex: re.Pattern[str], lines: Lines) -> bool:
    """Grep the open documents that a search of the disk would read, and those not on disk."""
    wanted = compile_glob(include) if include else None
    for path, text in texts.items():
        on_disk = os.path.lexists(path)
        if on_disk and path not in files:
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
