"""The editor's buffers for the file tools: ACP `fs/read_text_file` and `fs/write_text_file`.

Used only for what the client advertised in `initialize`; the other direction
(or both, for a client that advertises neither) stays on the local disk.
`bash` never goes through the client (no `terminal/*`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..tools.base import mtime_or_none


class EditorFiles:
    """`tools.base.Files` over the ACP connection of `agent` (an `AcpAgent`)."""

    def __init__(self, agent: Any, *, read: bool, write: bool) -> None:
        self._agent = agent
        self.read = read
        self.write = write

    def covers(self, path: Path) -> bool:
        return True

    def stamp(self, path: Path, text: str) -> float | None:
        return mtime_or_none(path)  # freshness by the disk's mtime, as for files on disk

    def open_texts(self, under: Path) -> dict[Path, str]:
        return {}  # ACP does not say which files are open

    async def after_edit(self, session_id: str, path: Path, old: str, new: str) -> str | None:
        return None

    async def read_text(self, session_id: str, path: Path) -> str:
        if not self.read:
            return await asyncio.to_thread(path.read_text, encoding="utf-8")
        answer = await self._agent.conn.read_text_file(session_id=session_id, path=str(path))
        content: str = answer.content
        return content

    async def write_text(self, session_id: str, path: Path, content: str, based_on: str | None = None) -> str | None:
        if not self.write:
            await asyncio.to_thread(_write_local, path, content)
            return None
        await self._agent.conn.write_text_file(session_id=session_id, path=str(path), content=content)
        return None


def _write_local(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(content)
