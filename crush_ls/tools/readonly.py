"""Which bash commands run without asking: read-only ones that can read or
print nothing outside the workspace (docs/tools.md, "Read-only commands").

`verdict(command, root)` is None for such a command. Otherwise it says why
the command needs a decision; for a command of the read-only list that
reaches out, what it reaches, so the person asked knows.

Safe-listed git commands run with every configured external program turned
off (`git_guard`): a model that managed to write a git setting must not get
a program run through `git diff`.
"""

from __future__ import annotations

import glob as globlib
import os
import re
import shlex
from pathlib import Path

from .paths import resolve_path

# Read-only commands that run without a permission prompt when they are the
# whole call. No wrappers that run another command (env, time, xargs, find),
# nothing that can write through an option (sort -o, tree -o), nothing that
# changes state when given an argument (hostname, git branch/tag).
SAFE_COMMANDS = (
    "ls", "pwd", "cat", "head", "tail", "wc", "echo", "which", "date", "whoami", "id", "groups",
    "uname", "df", "du", "stat",
    "git status", "git log", "git diff", "git show", "git blame", "git ls-files", "git rev-parse",
)
# Options that write a file, run a program or read a list of paths from a file, by command.
UNSAFE_OPTIONS = {
    "git": ("--output", "--ext-diff", "--textconv", "--exec-path", "--show-signature", "--pathspec-from-file"),
    "wc": ("--files0-from",),
    "du": ("--files0-from",),
}
# Options that make a listing follow every symlink it meets (into anywhere): `ls -RL`, `du -L`.
FOLLOWS_SYMLINKS = {"ls": ("L", "--dereference"), "du": ("L", "--dereference")}
# `date -s` sets the clock: only formats and these options keep it read-only.
DATE_OPTIONS = ("-u", "--utc", "--universal", "-R", "--rfc-email")
# Anything that chains, substitutes, redirects or expands: the command is then not "one read-only command".
SHELL_METACHARACTERS = ("\x00", ";", "|", "&", "$", "`", ">", "<", "\n", "\r", "(", ")", "{", "}", "\\", "~")

NOT_READ_ONLY = "not a read-only command"

# What a safe-listed git command runs with: no pager, diff driver, text
# conversion, hook, fsmonitor, signature program or fetch of missing objects;
# and no repository found above the workspace.
GIT_SETTINGS = (
    ("core.pager", "cat"), ("core.fsmonitor", "false"), ("core.hooksPath", os.devnull),
    ("diff.external", ""), ("log.showSignature", "false"), ("safe.bareRepository", "explicit"),
    ("protocol.allow", "never"), ("status.submoduleSummary", "false"),
)
GIT_NO_PROGRAMS = {"diff": ("--no-ext-diff", "--no-textconv"), "log": ("--no-ext-diff", "--no-textconv"),
                   "show": ("--no-ext-diff", "--no-textconv"), "blame": ("--no-textconv",)}
_PLAIN_GIT = re.compile(r"\s*git\s+(status|log|diff|show|blame|ls-files|rev-parse)(?=\s|$)")


def _words(command: str) -> list[str] | None:
    try:
        return shlex.split(command)
    except ValueError:
        return None


def _lexically_outside(part: str) -> bool:
    if part.startswith("/") or ".." in re.split(r"[/:=]", part):
        return True
    # A glob in a dot-segment (".*") matches "..".
    return any(seg.startswith(".") and any(c in seg for c in "*?[") for seg in part.split("/"))


def _paths_in(word: str) -> list[str]:
    """What in a word may be a path: the word, an option's `=value`, a short option's attached value,
    and a git revision's path (`HEAD:path`)."""
    if word.startswith("--"):
        return [word.split("=", 1)[1]] if "=" in word else []
    if word.startswith("-"):
        return [word[2:]] if len(word) > 2 else []
    parts = [word]
    if ":" in word:
        parts.append(word.split(":", 1)[1])
    return parts


def _resolves_outside(root: Path, part: str) -> bool:
    """A path naming (through a symlink, or a glob's matches) something outside `root`."""
    if not part:
        return False
    names = globlib.glob(part, root_dir=root) if globlib.has_magic(part) else [part]
    return any(not resolve_path(root, name)[1] for name in names)


def _option_verdict(command: str, arg: str) -> str | None:
    if command == "date":
        fine = arg.startswith("+") or arg in DATE_OPTIONS or arg.startswith(("-I", "--iso-8601"))
        return None if fine else NOT_READ_ONLY
    if arg.split("=", 1)[0] in UNSAFE_OPTIONS.get(command, ()):
        return f"{arg.split('=', 1)[0]} reads or runs more than its arguments"
    letters, *longs = FOLLOWS_SYMLINKS.get(command, ("", ""))
    if (letters and arg.startswith("-") and not arg.startswith("--") and letters in arg) or arg in longs:
        return f"{arg} follows symlinks wherever they lead"
    return None


def git_repository(root: Path) -> Path | None:
    """The nearest folder at or above `root` holding a `.git` (the repository git would use)."""
    for folder in (root, *root.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def _git_verdict(root: Path, command: str) -> str | None:
    if not _PLAIN_GIT.match(command):
        return NOT_READ_ONLY  # quoted or spaced oddly: it could not be run with programs turned off
    top = git_repository(root)
    if top is not None and top != root:
        return f"git reads the whole repository at {top}, beyond the workspace"
    git = root / ".git"
    if top is not None and not resolve_path(root, ".git")[1]:
        return "the repository's data lies outside the workspace (.git is a symlink)"
    if git.is_file():
        target = git.read_text(errors="replace").removeprefix("gitdir:").strip()
        if not resolve_path(root, target)[1]:
            return f"the repository's data lies outside the workspace ({target})"
    return None


def verdict(command: str, root: Path) -> str | None:
    """None: `command` runs without asking. Otherwise why it asks."""
    if any(m in command for m in SHELL_METACHARACTERS):
        return NOT_READ_ONLY
    words = _words(command)
    if not words:
        return NOT_READ_ONLY
    safe = next((s.split() for s in SAFE_COMMANDS if words[: len(s.split())] == s.split()), None)
    if safe is None:
        return NOT_READ_ONLY
    for arg in words[len(safe):]:
        if reason := _option_verdict(words[0], arg):
            return reason
        for part in _paths_in(arg):
            if _lexically_outside(part) or _resolves_outside(root, part):
                return f"{arg} reaches outside the workspace"
    return _git_verdict(root, command) if words[0] == "git" else None


def git_guard(command: str, root: Path) -> tuple[str, dict[str, str]] | None:
    """For a plain safe-listed git command: the command with external programs turned off, and its environment."""
    match = _PLAIN_GIT.match(command)
    if match is None or verdict(command, root) is not None:
        return None
    flags = " ".join(GIT_NO_PROGRAMS.get(match.group(1), ()))
    guarded = command[: match.end()] + (" " + flags if flags else "") + command[match.end():]
    env = {"GIT_CONFIG_COUNT": str(len(GIT_SETTINGS)), "GIT_CEILING_DIRECTORIES": str(root.parent),
           "GIT_NO_LAZY_FETCH": "1", "GIT_PAGER": "cat"}
    for n, (key, value) in enumerate(GIT_SETTINGS):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return guarded, env


# Variables that point git somewhere other than the workspace's repository, or at programs.
GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
                 "GIT_CONFIG_PARAMETERS", "GIT_EXTERNAL_DIFF", "GIT_EXEC_PATH", "GIT_NAMESPACE", "GIT_SSH",
                 "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EDITOR")
