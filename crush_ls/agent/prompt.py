"""The system prompt: who the agent is, where it works, and the project's own instructions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import date
from pathlib import Path

# Files whose content goes into the system prompt, as Crush reads them.
CONTEXT_FILES = (
    ".github/copilot-instructions.md",
    "CLAUDE.md",
    "CLAUDE.local.md",
    "CRUSH.md",
    "CRUSH.local.md",
    "AGENTS.md",
)
MAX_CONTEXT_FILE_BYTES = 64 * 1024
# A model without tools is told what the workspace holds (it cannot look): bounded, the
# embedded model's window is 2048 tokens.
LISTING_MAX_ENTRIES = 40
LISTING_MAX_STATUS = 30
GIT_TIMEOUT = 2.0
WORKSPACE_TAG = "<workspace>"

BASE = """You are Crush, an AI coding agent working inside a user's editor.
Be concise: answer in short markdown. Never invent file contents."""
WITHOUT_TOOLS = """You cannot call tools. What you know of the project is below: the workspace's files
(<workspace>) and what the user sends from the editor (<editor_context>). Say so when that is not enough."""
WITH_TOOLS = """Use the tools to inspect and change the project in the working directory; paths are relative to it.
Read files before editing them. When a tool call is denied, stop and explain what you wanted to do."""


def context_files(root: Path) -> list[tuple[str, str]]:
    """The project's instruction files that exist, as (relative path, content)."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in CONTEXT_FILES:
        path = root / name
        if not path.is_file() or name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            found.append((name, path.read_text(errors="replace")[:MAX_CONTEXT_FILE_BYTES]))
        except OSError:
            continue
    return found


def system_prompt(root: Path, tool_names: list[str]) -> str:
    lines = [
        BASE,
        WITH_TOOLS if tool_names else WITHOUT_TOOLS,
        "",
        "<env>",
        f"Working directory: {root}",
        f"Platform: {platform.system().lower()}",
        f"Today's date: {date.today().isoformat()}",
        f"Tools: {', '.join(tool_names) if tool_names else 'none'}",
        "</env>",
    ]
    files = context_files(root)
    if files:
        lines.append("<project_context>")
        for name, content in files:
            lines.append(f'<file path="{name}">\n{content}\n</file>')
        lines.append("</project_context>")
    return "\n".join(lines)


def workspace_listing(root: Path, hide: frozenset[str] = frozenset({".crush"})) -> str:
    """What a model without tools knows of the folder: its top-level entries (but `.git` and
    `hide`: crush-ls' data directory) and, in a git repository, `git status --short`; bounded.
    Blocking (a subprocess): run it in a thread."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        return f"{WORKSPACE_TAG}\n(cannot list {root}: {exc.strerror})\n</workspace>"
    names = [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries
             if e.name != ".git" and e.name not in hide]
    # A bulleted list and a plain "no others" keep the 135M embedded model from inventing more
    # (measured: one comma-separated line, or no such sentence, and it named files that do not exist).
    lines = [WORKSPACE_TAG, f"Top-level entries of {root} ({len(names)}):"]
    lines += [f"- {name}" for name in names[:LISTING_MAX_ENTRIES]] or ["(empty)"]
    if len(names) > LISTING_MAX_ENTRIES:
        lines.append(f"(and {len(names) - LISTING_MAX_ENTRIES} more)")
    else:
        lines.append("These are all of them: never name others.")
    status = git_status(root)
    if status is not None:
        changed = status.splitlines()
        lines.append("git status --short:" if changed else "git status: clean (nothing changed since the last commit)")
        lines += changed[:LISTING_MAX_STATUS]
        if len(changed) > LISTING_MAX_STATUS:
            lines.append(f"(and {len(changed) - LISTING_MAX_STATUS} more changed files)")
    lines.append("</workspace>")
    return "\n".join(lines)


def git_status(root: Path) -> str | None:
    """`git status --short` of the folder; None when it is not a repository (or git is missing or slow)."""
    if not any((folder / ".git").exists() for folder in (root, *root.parents)):
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "status", "--short", "--untracked-files=normal"],
                              capture_output=True, text=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # a read must not take git's lock
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
