"""Walking the workspace the way `ls`, `glob` and `grep` all see it.

Hidden entries (a name starting with "."), `.git`, `.crush`, `node_modules`
and `__pycache__` are never entered. `.gitignore` and `.crushignore` apply
hierarchically like git's: the rules of a directory cover everything below
it, and the deepest rule that matches a path decides (so a `!pattern` below
can re-include). Symlinks are never followed: a symlinked directory is not
entered and a symlinked file is not one of the files (either could lead out
of the workspace), nor is anything but a regular file (a FIFO would block a
read).

Two walks see exactly that: ripgrep's (`rg --files`, many times faster on a
big tree) and the Python one below, which is the reference and the fallback
when ripgrep is missing or the ignore files are ones ripgrep cannot apply
the same way (`rg_plan` says which).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .paths import is_inside

if TYPE_CHECKING:
    import tempfile

    import pathspec

IGNORE_FILES = (".gitignore", ".crushignore")
ALWAYS_SKIPPED = {".git", ".crush", "node_modules", "__pycache__"}
BINARY_SNIFF = 8192  # a NUL byte in the first this many bytes makes a file binary


class WalkTimeout(Exception):
    """The walk ran past its deadline; what was found so far is still valid."""


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF]


def _read_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def _load_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        lines += _read_lines(directory / name) or []
    if not lines:
        return None
    import pathspec  # here: a search ripgrep walks may never need it, and it costs the worker's start

    return pathspec.GitIgnoreSpec.from_lines(lines)


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
                return bool(result.include)
        return False


def skipped_name(name: str) -> bool:
    return name.startswith(".") or name in ALWAYS_SKIPPED


def ignore_base(root: Path, start: Path) -> Path:
    """Where ignore files are read from: the workspace folder when `start` is inside it."""
    return root if is_inside(root, start) else start


class Walker:
    """The visible entries of the directories under `start`.

    Ignore files are looked up from `root` (the workspace folder) when `start`
    is inside it, so listing a subdirectory honours the top `.gitignore`.
    """

    def __init__(self, root: Path, start: Path) -> None:
        self.base = ignore_base(root, start)
        self.rules = IgnoreRules(self.base)

    def _visible(self, rel_dir: str, entry: os.DirEntry[str]) -> bool:
        return not skipped_name(entry.name) and not self.rules.ignored(rel_dir + entry.name, is_dir=_is_dir(entry))

    def entries(self, directory: Path, dirs_first: bool = False) -> Iterator[os.DirEntry[str]]:
        """Visible entries of `directory` by name (directories first if asked; an unreadable one has none).

        Lazy: `ls` stops at its limit without matching the rest of a huge folder against the rules.
        """
        rel_dir = directory.relative_to(self.base).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        try:
            with os.scandir(directory) as scan:
                found = sorted(scan, key=lambda e: e.name)
        except OSError:
            return
        if dirs_first:
            found.sort(key=lambda e: not e.is_dir(follow_symlinks=False))
        yield from (e for e in found if self._visible(rel_dir, e))

    def is_visible_file(self, start: Path, path: Path) -> bool:
        """Whether the walk of `start` yields `path` (an absolute path as the walk would reach it)."""
        if not is_inside(start, path) or path == start:
            return False
        rel = path.relative_to(self.base).as_posix()
        below_start = path.relative_to(start).parts
        above = len(Path(rel).parts) - len(below_start)
        parts = rel.split("/")
        for i in range(above, len(parts)):
            if skipped_name(parts[i]) or self.rules.ignored("/".join(parts[: i + 1]), is_dir=i < len(parts) - 1):
                return False
        try:
            return os.lstat(path).st_mode & 0o170000 == 0o100000  # a regular file, not a symlink
        except OSError:
            return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink, as the ignore rules see it
    except OSError:
        return False


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def python_files(root: Path, start: Path, deadline: float | None = None) -> Iterator[str]:
    """The paths (relative to `start`, with "/") of the visible regular files under `start`."""
    walker = Walker(root, start)
    pending = [(start, "")]
    while pending:
        if deadline is not None and time.monotonic() > deadline:
            raise WalkTimeout
        directory, rel_dir = pending.pop()
        for entry in walker.entries(directory):
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), rel_dir + entry.name + "/"))
            elif _regular(entry):
                yield rel_dir + entry.name


# ---------------------------------------------------------------- the same walk by ripgrep
def ripgrep() -> str | None:
    """The ripgrep binary: the `ripgrep` package's, beside this Python, or one on PATH."""
    beside = Path(sys.executable).parent / "rg"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("rg")


class RgPlan(NamedTuple):
    """How to have ripgrep walk `start` as the Python walk does."""

    cwd: Path  # the ignore base: paths ripgrep prints are relative to it
    args: list[str]  # flags, then the start relative to cwd (if not cwd itself)
    prefix: str  # what ripgrep puts before a path relative to start ("./" or "sub/dir/")


# Only .gitignore files (not .ignore, .rgignore, git's exclude or global files, nor any above the base),
# with or without a git repository; hidden names and the always skipped names are never entered.
RG_WALK_FLAGS = (
    "--no-config", "--null", "--no-require-git", "--no-ignore-dot", "--no-ignore-global", "--no-ignore-exclude",
    "--no-ignore-parent", "--no-messages", *(f"--glob=!{name}" for name in sorted(ALWAYS_SKIPPED)),
)


def _negates(lines: list[str]) -> bool:
    return any(line.startswith("!") for line in lines)


def _names_paths(line: str) -> bool:
    """A rule naming a path (a "/" before its end): it means a path below the folder of its file."""
    return "/" in line.rstrip().rstrip("/") and not line.startswith("#")


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\[]*?!#{}" else c for c in text)


def _rebased(lines: list[str], rel_dir: str) -> list[str]:
    """Rules of the ignore file of folder `rel_dir` as rules of an ignore file of the base (read from cwd)."""
    out = []
    for line in lines:
        negated, rule = (line.startswith("!"), line[1:]) if line.startswith("!") else (False, line)
        if _names_paths(rule):
            rule = "/" + _glob_escape(rel_dir) + "/" + rule.removeprefix("/")
        out.append(("!" if negated else "") + rule)
    return out


def rg_plan(root: Path, start: Path, scratch: Scratch) -> RgPlan | None:
    """ripgrep's command for the walk of `start`, or None when it would not see the same files.

    ripgrep reads .gitignore files where it walks, as the Python walk does,
    but knows nothing of .crushignore and reads no ignore file above where
    it starts. Those (the ones in the folders from the base down to `start`,
    and `start`'s own .crushignore) are given as `--ignore-file`s (written
    to `scratch` when their rules must be rebased on the base folder), which
    rank below every .gitignore of the tree: exact when no rule there can
    disagree with a later one, else the Python walk decides. A .crushignore
    deeper in the tree is looked for separately (`deeper_crushignore`).
    """
    base = ignore_base(root, start)
    rel_start = start.relative_to(base).as_posix() if start != base else ""
    rules = IgnoreRules(base)
    ignore_files: list[str] = []
    folders = list(reversed(start.parents[: len(start.relative_to(base).parts)])) if rel_start else []
    own = [_read_lines(start / name) for name in IGNORE_FILES]
    if own[1] is not None and (_negates(own[1]) or _negates(own[0] or [])):
        return None  # a .gitignore rule of `start` would outrank its .crushignore's
    for folder in [*folders, start]:
        if folder != base and rules.ignored(folder.relative_to(base).as_posix(), is_dir=True):
            return None  # searching inside an ignored folder: the Python walk's reading decides
        for name in IGNORE_FILES if folder != start else IGNORE_FILES[1:]:
            lines = _read_lines(folder / name)
            if lines is None:
                continue
            if folder != base and any(_names_paths(line.removeprefix("!")) for line in lines):
                rebased = scratch.file(f"{len(ignore_files)}{name}")
                rebased.write_text("\n".join(_rebased(lines, folder.relative_to(base).as_posix())) + "\n")
                ignore_files.append(str(rebased))
            else:
                ignore_files.append(str(folder / name))
    args = [*RG_WALK_FLAGS, *(f"--ignore-file={path}" for path in ignore_files)]
    # Always a path: without one, ripgrep searches its stdin when that is not a terminal.
    return RgPlan(base, [*args, "--", rel_start or "."], (rel_start or ".") + "/")


def run_rg(rg: str, plan: RgPlan, flags: list[str], deadline: float) -> tuple[list[str], bool]:
    """Paths (relative to the plan's start) ripgrep prints with `flags`; and whether the deadline cut it."""
    return rg_output(start_rg(rg, plan, flags), plan, deadline)


def start_rg(rg: str, plan: RgPlan, flags: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([rg, *flags, *plan.args], cwd=plan.cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def rg_output(run: subprocess.Popen[bytes], plan: RgPlan, deadline: float) -> tuple[list[str], bool]:
    """What a ripgrep started by `start_rg` prints (as `run_rg` says), killed at the deadline."""
    try:
        out, _ = run.communicate(timeout=max(0.1, deadline - time.monotonic()))
        timed_out = False
    except subprocess.TimeoutExpired:
        run.kill()
        out, timed_out = run.communicate()[0], True  # with what was read before the timeout
    # One decode and one split for all names (a NUL is never part of another character; each name begins
    # with the prefix), not a call per name: there may be 100,000.
    text = out.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
    text = text[: text.rfind("\0") + 1]  # after the last NUL: nothing, or a name cut by the deadline
    names = text[len(plan.prefix) : -1].split("\0" + plan.prefix) if text else []
    if "/." not in plan.prefix and "/." not in text:  # the prefix ends in "/": no hidden name below
        return names, timed_out
    return [rel for rel in names if not _hidden(rel)], timed_out


def _hidden(rel: str) -> bool:
    """A name below the start begins with ".": ripgrep lists such a file when a `!rule` or a file type
    whitelists it; the Python walk never enters a hidden name."""
    return rel.startswith(".") or "/." in rel


def deferred_crushignore_check(rg: str, plan: RgPlan) -> subprocess.Popen[bytes]:
    """Start looking for a .crushignore below the start (running beside the walk); see `deeper_crushignore`."""
    return subprocess.Popen([rg, "--files", "--glob=.crushignore", *plan.args], cwd=plan.cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def deeper_crushignore(check: subprocess.Popen[bytes], plan: RgPlan, deadline: float) -> bool:
    """Whether a folder the walk enters holds a .crushignore (the Python walk must decide then).

    The glob whitelists the name, so it is found even where a .gitignore
    ignores it (the Python walk reads it anyway), and folders are entered
    as the walk enters them.
    """
    try:
        out, _ = check.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        check.kill()
        check.communicate()
        return True
    cut = len(os.fsencode(plan.prefix))
    return any(b"/" in name[cut:] for name in out.split(b"\0") if name)


def rg_files(rg: str, root: Path, start: Path, deadline: float,
             flags: Sequence[str] = ()) -> tuple[list[str], bool] | None:
    """What `python_files` yields (in ripgrep's order), listed by ripgrep, and whether the deadline cut it;
    None when ripgrep cannot walk this tree as the Python walk does.

    `flags` may narrow the list by a file type (a type never brings back an ignored file, unlike `--glob`)
    or order it (`--sortr=modified`: ripgrep prints nothing before it has walked everything)."""
    listed = rg_file_parts(rg, root, start, deadline, flags, parts=1)
    return None if listed is None else (listed[0][0], listed[1])


def rg_file_parts(rg: str, root: Path, start: Path, deadline: float, flags: Sequence[str],
                  parts: int) -> tuple[list[list[str]], bool] | None:
    """What `rg_files` lists, in up to `parts` lists walked side by side by as many ripgreps (see
    `shared_walk`; a file may be in two when the tree changes meanwhile), and whether the deadline cut one."""
    with Scratch() as scratch:
        plan = rg_plan(root, start, scratch)
        if plan is None:
            return None
        check = deferred_crushignore_check(rg, plan)
        runs = [start_rg(rg, plan, ["--files", *flags, *part]) for part in shared_walk(start, plan, parts)]
        listed = [rg_output(run, plan, deadline) for run in runs]
        if deeper_crushignore(check, plan, deadline):
            return None
    return [names for names, _ in listed], any(cut for _, cut in listed)


SHARED_UNITS = 8  # folders to share out among the ripgreps, at least (they are of any size)
SHARED_DEPTH = 3  # how deep the folders shared out may be
SHARED_MAX_GLOBS = 256  # more globs than this for one ripgrep: one ripgrep walks it all


def shared_walk(start: Path, plan: RgPlan, parts: int) -> list[list[str]]:
    """`--glob` flags for each of up to `parts` ripgreps that walk `start` between them, some folders each.

    Every ripgrep walks from `start` as the whole walk does (the same ignore files, read where they are):
    globs that only exclude (`!/path`) keep each out of what is given to the others, and the first takes
    the files of the folders in between and whatever appeared since. A `--sortr` ripgrep walks on one
    thread: two of them use two cores.
    """
    if parts < 2:
        return [[]]
    listed = {"": _entries(start, "")}  # the folders split into their subfolders: their entries
    units = _subfolders(listed[""])
    for _ in range(SHARED_DEPTH - 1):
        if len(units) >= SHARED_UNITS:
            break
        below = {unit: _entries(start, unit) for unit in units}
        split = {unit for unit, entries in below.items() if _subfolders(entries)}
        if not split:
            break
        listed |= {unit: below[unit] for unit in split}
        units = [sub for unit in units for sub in (_subfolders(below[unit]) if unit in split else [unit])]
    if any(not _plain(entry) for entries in listed.values() for entry in entries):
        return [[]]  # a name a glob may not say exactly (a trailing space, a control character)
    owner = {unit: i % parts for i, unit in enumerate(units)}
    if len(set(owner.values())) < 2:
        return [[]]
    shares = [[unit for unit, of in owner.items() if of != 0]]
    for part in sorted(set(owner.values()) - {0}):
        # its folders and those above them are walked; what else they hold is left out
        walked = {unit[: i + 1] for unit, of in owner.items() if of == part for i, c in enumerate(unit) if c == "/"}
        shares.append([entry for folder, entries in listed.items() if folder == "" or folder in walked
                       for entry in entries if entry not in walked])
    if any(len(excluded) > SHARED_MAX_GLOBS for excluded in shares):
        return [[]]
    anchor = "/" + _glob_escape(plan.prefix.removeprefix("./"))
    return [[f"--glob=!{anchor}{_glob_escape(entry)}" for entry in excluded] for excluded in shares]


def _entries(start: Path, folder: str) -> list[str]:
    """The names in `folder` (relative to start, "/"-ended) a walk lists or enters, as `folder/name`, a
    folder's ending in "/"."""
    try:
        with os.scandir(start / folder) as scan:
            return sorted(folder + entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "")
                          for entry in scan if not skipped_name(entry.name) and (
                              entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)))
    except OSError:
        return []


def _subfolders(entries: list[str]) -> list[str]:
    return [entry for entry in entries if entry.endswith("/")]


def _plain(entry: str) -> bool:
    return entry.isprintable() and not entry.endswith(" ")


class Scratch:
    """A temporary folder for rebased ignore files, made only when one is written."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def file(self, name: str) -> Path:
        if self._dir is None:
            import tempfile

            self._dir = tempfile.TemporaryDirectory(prefix="crush-ls-walk-")
        return Path(self._dir.name) / name

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()
