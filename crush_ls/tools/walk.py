"""Walking the workspace the way `ls`, `glob` and `grep` all see it.

Hidden entries (a name starting with "."), `.git`, `.crush`, `node_modules`
and `__pycache__` are never entered. `.gitignore` and `.crushignore` apply
hierarchically like git's: the rules of a directory cover everything below
it, and the deepest rule that matches a path decides (so a `!pattern` below
can re-include). Symlinked directories are never entered: they could lead
out of the workspace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pathspec

from .paths import is_inside

IGNORE_FILES = (".gitignore", ".crushignore")
ALWAYS_SKIPPED = {".git", ".crush", "node_modules", "__pycache__"}
BINARY_SNIFF = 8192  # a NUL byte in the first this many bytes makes a file binary


class WalkTimeout(Exception):
    """The walk ran past its deadline; what was found so far is still valid."""


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF]


def _load_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


class IgnoreRules:
    """The ignore files found so far, by the directory (relative to the root) that holds them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def _spec(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        if rel_dir not in self._specs:
            self._specs[rel_dir] = _load_spec(self.root / rel_dir if rel_dir else self.root)
        return self._specs[rel_dir]

    def ignored(self, rel_path: str, is_dir: bool) -> bool:
        """`rel_path` uses "/" and is relative to the root; the deepest matching rule wins."""
        parts = rel_path.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            spec = self._spec("/".join(parts[:depth]))
            if spec is None:
                continue
            below = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(below)
            if result.include is not None:
                return result.include
        return False


def skipped_name(name: str) -> bool:
    return name.startswith(".") or name in ALWAYS_SKIPPED


class Walker:
    """The visible entries of the directories under `start`.

    Ignore files are looked up from `root` (the workspace folder) when `start`
    is inside it, so listing a subdirectory honours the top `.gitignore`.
    """

    def __init__(self, root: Path, start: Path) -> None:
        self.base = root if is_inside(root, start) else start
        self.rules = IgnoreRules(self.base)

    def entries(self, directory: Path) -> list[os.DirEntry[str]]:
        """Visible entries of `directory`, by name (an unreadable directory has none)."""
        rel_dir = directory.relative_to(self.base).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        try:
            with os.scandir(directory) as scan:
                found = sorted(scan, key=lambda e: e.name)
        except OSError:
            return []
        return [
            e for e in found
            if not skipped_name(e.name) and not self.rules.ignored(rel_dir + e.name, is_dir=_is_dir(e))
        ]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink, as the ignore rules see it
    except OSError:
        return False


def enters(entry: os.DirEntry[str]) -> bool:
    """A directory the walk goes into: not a symlink to one."""
    return _is_dir(entry) and not entry.is_symlink()


def walk_files(root: Path, start: Path, deadline: float | None = None) -> Iterator[tuple[os.DirEntry[str], str]]:
    """Yield (entry, path relative to `start` with "/") of every visible file under `start`.

    A directory's files come before its subdirectories, each by name. The
    entry's `path` is the file's path; its `stat()` is cached.
    """
    walker = Walker(root, start)
    pending = [(start, "")]
    while pending:
        if deadline is not None and time.monotonic() > deadline:
            raise WalkTimeout
        directory, rel_dir = pending.pop()
        entries = walker.entries(directory)
        for entry in entries:
            if not _is_dir(entry):
                yield entry, rel_dir + entry.name
        # Reversed on the stack so that subdirectories come out by name.
        pending += [(Path(e.path), rel_dir + e.name + "/") for e in reversed(entries) if enters(e)]


def entry_stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return entry.stat()
    except OSError:
        return None
