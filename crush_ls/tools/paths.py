"""Path confinement: where a tool's path really leads, and whether that is inside the workspace."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from stat import S_ISDIR, S_ISREG


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


class PathChanged(ToolInputError):
    """A path checked for the permission decision is no longer what was checked (a symlink appeared)."""


def open_checked(path: Path, flags: int, *, make_parents: bool = False) -> int:
    """Open the resolved `path` without following any symlink on the way; a descriptor.

    `path` comes from `resolve_path`, so at the decision it had no symlink in
    it. Each folder is opened from the previous one's descriptor with
    O_NOFOLLOW: a symlink swapped in since then fails here (PathChanged)
    instead of leading the read or write somewhere that was never checked.
    """
    if path == Path(path.anchor):
        return os.open(path, flags | os.O_CLOEXEC)
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in path.parts[1:-1]:
            fd = _enter(fd, name, make_parents, path)
        try:
            return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
        except OSError as exc:
            _raise_if_swapped(exc, fd, path.name, path)
            raise
    finally:
        os.close(fd)


def _raise_if_swapped(exc: OSError, fd: int, name: str, path: Path) -> None:
    """PathChanged when `name` in folder `fd` failed to open because it is (now) a symlink."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return
    try:
        os.readlink(name, dir_fd=fd)
    except OSError:
        return  # not a symlink: a plain error (a file where a folder should be)
    raise PathChanged(
        f"{path} changed while the call was being decided (a symlink appeared on the way); nothing was done"
    ) from exc


def _enter(fd: int, name: str, make: bool, path: Path) -> int:
    """The descriptor of folder `name` in `fd` (made when missing and `make`); closes `fd`."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        child = os.open(name, flags, dir_fd=fd)
    except FileNotFoundError:
        if not make:
            raise
        try:
            os.mkdir(name, 0o777, dir_fd=fd)
        except FileExistsError:
            pass
        child = os.open(name, flags, dir_fd=fd)
    except OSError as exc:
        _raise_if_swapped(exc, fd, name, path)
        raise
    os.close(fd)
    return child


def open_checked_file(path: Path) -> tuple[int, os.stat_result] | None:
    """A descriptor of the regular file or folder at the checked `path`, and its stat; None when missing.

    Opened without blocking (a FIFO must not hold the call) and refused
    when it is neither a file nor a folder.
    """
    try:
        fd = open_checked(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    stat = os.fstat(fd)
    if not (S_ISREG(stat.st_mode) or S_ISDIR(stat.st_mode)):
        os.close(fd)
        raise ToolInputError(f"{path} is not a regular file")
    return fd, stat


def read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def ensure_unchanged(path: Path) -> None:
    """Raise PathChanged if a symlink now lies on the checked `path` (a missing path is left to the caller)."""
    try:
        os.close(open_checked(path, getattr(os, "O_PATH", os.O_RDONLY | os.O_NONBLOCK)))
    except (FileNotFoundError, NotADirectoryError):
        pass
