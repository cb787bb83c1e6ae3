"""Walking the workspace the way `glob` and `grep` see it.

Hidden entries (a name starting with "."), `.git` and `.crush` are never
entered. `.gitignore` and `.crushignore` apply hierarchically like git's:
the rules of a directory cover everything below it, and the deepest rule
that matches a path decides (so a `!pattern` below can re-include).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pathspec

IGNORE_FILES = (".gitignore", ".crushignore")
ALWAYS_SKIPPED = {".git", ".crush", "node_modules", "__pycache__"}


class WalkTimeout(Exception):
    """The walk ran past its deadline; what was found so far is still valid."""


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


def walk_files(root: Path, start: Path, deadline: float | None = None) -> Iterator[tuple[Path, str]]:
    """Yield (path, path relative to `start` with "/") of every visible file under `start`.

    Ignore files are looked up from `root` (the workspace folder) when `start`
    is inside it, so a search of a subdirectory honours the top `.gitignore`.
    Symlinked directories are not followed (they could lead out of the workspace).
    """
    base = root if (start == root or root in start.parents) else start
    rules = IgnoreRules(base)
    for dirpath, dirnames, filenames in os.walk(start):
        if deadline is not None and time.monotonic() > deadline:
            raise WalkTimeout
        directory = Path(dirpath)
        rel_dir = directory.relative_to(base).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d for d in dirnames
            if not skipped_name(d) and not rules.ignored(rel_dir + d, is_dir=True)
        )
        for name in sorted(filenames):
            if skipped_name(name) or rules.ignored(rel_dir + name, is_dir=False):
                continue
            path = directory / name
            yield path, path.relative_to(start).as_posix()


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            at_segment_start = i == 0 or pattern[i - 1] == "/"
            if at_segment_start and pattern.startswith("**/", i):
                out.append("(?:[^/]*/)*")  # zero or more directories
                i += 3
                continue
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"(?!/)[{body}]")
            i = end + 1
        elif c == "{" and (end := _closing_brace(pattern, i)) != -1:
            options = _split_top_level(pattern[i + 1 : end])
            out.append("(?:" + "|".join(_translate(o) for o in options) + ")")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _closing_brace(pattern: str, start: int) -> int:
    depth = 0
    for i in range(start, len(pattern)):
        if pattern[i] == "{":
            depth += 1
        elif pattern[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        current += c
    return parts + [current]


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for a glob (`*`, `?`, `[...]`, `{a,b}`, `**`) over "/" paths.

    A pattern without "/" matches a file's name at any depth (as ripgrep's
    globs do, which is what models expect from `*.py`); one with "/" matches
    the whole relative path (`src/**/*.ts`).
    """
    regex = re.compile(_translate(pattern) + r"\Z", re.DOTALL)
    if "/" in pattern:
        return lambda rel: regex.match(rel) is not None
    return lambda rel: regex.match(rel.rsplit("/", 1)[-1]) is not None
