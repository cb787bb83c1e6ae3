"""The hunks of a change (agent/changes) and taking one back (agent/review's reject).

Pure text work, no storage: a change is the text before and after (None: no
file). Hunks are difflib's groups with 3 lines of context, as in the unified
diff, so the wire's `hunks` and `diff` agree. A hunk's id hashes the path, its
position and its lines: the same change gives the same ids on every call.
"""

from __future__ import annotations

import difflib
import hashlib

import attrs

from ..protocol import shapes

CONTEXT = 3


@attrs.define
class Hunk:
    id: str
    old_start: int  # 0-based index of its first line in the text before
    old: list[str]  # its lines before (context and removed), line ends kept
    new_start: int  # the same in the text after
    new: list[str]
    lines: list[str]  # " ", "-", "+" then the line, without its line end
    raw: list[str]  # the same with their line ends, as the unified diff writes them

    def header(self) -> str:
        return f"@@ -{_range(self.old_start, len(self.old))} +{_range(self.new_start, len(self.new))} @@"

    def to_wire(self, status: shapes.HunkStatus) -> shapes.Hunk:
        return {"id": self.id, "header": self.header(),
                "oldStart": _start(self.old_start, len(self.old)), "oldLines": len(self.old),
                "newStart": _start(self.new_start, len(self.new)), "newLines": len(self.new),
                "lines": self.lines, "status": status}


def _start(index: int, length: int) -> int:
    # Unified diff: an empty range names the line before it.
    return index + 1 if length else index


def _range(index: int, length: int) -> str:
    start = _start(index, length)
    return str(start) if length == 1 else f"{start},{length}"


def hunks(path: str, before: str | None, after: str | None) -> list[Hunk]:
    old, new = (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True)
    found = []
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(CONTEXT):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        raw: list[str] = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                raw += [" " + line for line in old[a1:a2]]
                continue
            raw += ["-" + line for line in old[a1:a2]]
            raw += ["+" + line for line in new[b1:b2]]
        lines = [line.rstrip("\r\n") for line in raw]
        digest = hashlib.sha1(f"{path}\0{i1}\0{j1}\0".encode() + "\n".join(lines).encode("utf-8", "replace"))
        found.append(Hunk(digest.hexdigest()[:12], i1, old[i1:i2], j1, new[j1:j2], lines, raw))
    return found


def unified(path: str, found: list[Hunk]) -> tuple[str, int, int]:
    """The unified diff of the hunks (as tools.editing.unified_diff writes it) and its +/- counts."""
    if not found:
        return "", 0, 0
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    for hunk in found:
        out.append(hunk.header() + "\n")
        out += [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in hunk.raw]
    additions = sum(1 for hunk in found for line in hunk.lines if line.startswith("+"))
    removals = sum(1 for hunk in found for line in hunk.lines if line.startswith("-"))
    return "".join(out), additions, removals


class NotApplicable(Exception):
    """The hunk's lines are no longer in the text."""


def reject(current: str, rejected: list[Hunk]) -> str:
    """`current` with each hunk's new lines put back to its old ones, found where they are now
    (nearest to where the agent left them); the rest of the text stays as it is."""
    lines = current.splitlines(keepends=True)
    shift = 0  # how far earlier hunks moved the lines after them
    for hunk in sorted(rejected, key=lambda h: h.new_start):
        at = _find(lines, hunk.new, hunk.new_start + shift)
        if at is None:
            raise NotApplicable(hunk.id)
        lines[at:at + len(hunk.new)] = hunk.old
        shift += len(hunk.old) - len(hunk.new)
    return "".join(lines)


def _find(lines: list[str], wanted: list[str], near: int) -> int | None:
    if not wanted:  # a pure deletion without context: put back where it was
        return min(max(near, 0), len(lines))
    first = wanted[0]
    places = [i for i in range(len(lines) - len(wanted) + 1)
              if lines[i] == first and lines[i:i + len(wanted)] == wanted]
    return min(places, key=lambda i: abs(i - near)) if places else None
