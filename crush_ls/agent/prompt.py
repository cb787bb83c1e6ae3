"""The system prompt: who the agent is, where it works, and the project's own instructions."""

from __future__ import annotations

import platform
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

BASE = """You are Crush, an AI coding agent working inside a user's editor.
Be concise: answer in short markdown. Never invent file contents."""
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
        *([WITH_TOOLS] if tool_names else []),
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
