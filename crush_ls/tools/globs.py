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


# A name glob ripgrep's file types read as `compile_glob` does: plain characters, `*`, `?`, one `{a,b}`.
RG_NAME_GLOB = re.compile(r"[\w.\-*?]*(?:\{[\w.\-*?]+(?:,[\w.\-*?]+)+\}[\w.\-*?]*)?")


def name_superset(pattern: str) -> str | None:
    """A glob of file names that the name of every path `pattern` matches also matches (its last
    segment), for ripgrep to list only those (as a file type: a type, unlike `--glob`, never brings back an
    ignored file); None when there is none narrower than `*` that ripgrep reads alike."""
    prefix, slash, last = pattern.rpartition("/")
    if "{" in prefix and ("[" in prefix or _open_braces(prefix)):
        return None  # that "/" may be inside a {a,b/c}: not where the name starts
    if "**" in last:
        if slash:
            return None  # `a/b**c`: the `**` crosses folders, the name need not match `b*c`
        last = re.sub(r"\*+", "*", last)  # names have no "/": `**` is `*`
    if not RG_NAME_GLOB.fullmatch(last) or not last.strip("*"):
        return None
    return last


def _open_braces(text: str) -> bool:
    """Whether a `{` of `text` is still open at its end (counted as `_closing_brace` counts)."""
    depth = 0
    for c in text:
        depth += 1 if c == "{" else -1 if c == "}" and depth else 0
    return depth > 0
