"""Glob patterns as `glob` and `grep`'s `include` read them: `*`, `?`, `[abc]`,
`[!abc]`, `{a,b}` and `**` (any number of directories)."""

from __future__ import annotations

import re
from collections.abc import Callable


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


def _simplified(pattern: str) -> str:
    """The same glob without repeats that only make matching slower.

    `**/**/` means what `**/` means, and `***` what `**` means; kept, each
    repeat nests a quantifier and the match backtracks exponentially.
    """
    pattern = re.sub(r"\*{3,}", "**", pattern)
    return re.sub(r"(?:\*\*/)+", "**/", pattern)


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for a glob (`*`, `?`, `[...]`, `{a,b}`, `**`) over "/" paths.

    A pattern without "/" matches a file's name at any depth (as ripgrep's
    globs do, which is what models expect from `*.py`); one with "/" matches
    the whole relative path (`src/**/*.ts`).
    """
    regex = re.compile(_translate(_simplified(pattern)) + r"\Z", re.DOTALL)
    if "/" in pattern:
        return lambda rel: regex.match(rel) is not None
    return lambda rel: regex.match(rel.rsplit("/", 1)[-1]) is not None
