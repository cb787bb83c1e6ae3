"""Path confinement: where a tool's path really leads, and whether that is inside the workspace."""

from __future__ import annotations

import os
from pathlib import Path


class ToolInputError(Exception):
    """The model's input to a tool was wrong; the message is shown to the model."""


def resolve_path(root: Path, raw: str | None) -> tuple[Path, bool]:
    """Resolve a tool path (relative to the workspace) and say if it is inside.

    ``..``, symlinks and absolute paths are resolved first, so a path is
    "inside" only if what it really points at is inside.
    """
    if raw is None or raw == "":
        return root, True
    if "\x00" in raw:
        raise ToolInputError("path contains a NUL byte")
    candidate = Path(os.path.expanduser(raw))
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = Path(os.path.realpath(candidate))
    return resolved, is_inside(root, resolved)


def is_inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def relative_display(root: Path, path: Path) -> str:
    """A path as a person reads it: relative when inside the workspace."""
    return str(path.relative_to(root)) if is_inside(root, path) and path != root else str(path)


# Files whose content decides what programs run (git's configuration, hooks and
# attributes; crush-ls's and editors' settings). A write to one is as good as
# running a command, so it asks a person every time, whatever is allowed.
RUNS_CODE_DIRS = frozenset({".git", ".crush", ".husky", ".vscode", ".idea", ".zed", ".helix", ".devcontainer"})
RUNS_CODE_FILES = frozenset({
    ".gitattributes", ".gitmodules", ".gitconfig", "crush.json", ".crush.json", ".envrc",
    ".exrc", ".nvimrc", ".nvim.lua",
})


def configures_execution(root: Path, path: Path) -> bool:
    """`path` (resolved, inside `root`) is, or lies in, a file or folder that configures what runs."""
    if not is_inside(root, path) or path == root:
        return False
    parts = path.relative_to(root).parts
    return parts[-1] in RUNS_CODE_FILES or any(part in RUNS_CODE_DIRS for part in parts)
