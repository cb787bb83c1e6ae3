"""What a tool is to the agent.

A tool declares its input as an attrs class (structured strictly, like
request params), says what a call would touch (`Access`, used for the
permission decision before anything runs) and runs. Bad input is a
`ToolInputError`: the model sees it as an error result; the run goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs
import cattrs

from ..permissions import Access
from ..protocol.convert import STRICT, describe_structure_error
from .paths import ToolInputError, configures_execution, resolve_path
from .schema import json_schema

if TYPE_CHECKING:
    from ..storage import Store


@attrs.define
class ToolResult:
    content: str
    is_error: bool = False
    metadata: dict[str, Any] | None = None
    # A result that ends the turn without another model call (a denial).
    stop_turn: bool = False
    # Images and resources (of an MCP result), kept with the result as parts.
    parts: list[dict[str, Any]] | None = None


class EditorConflict(Exception):
    """The editor refused a change, or its text changed since it was read: read again and retry once."""


class Files(Protocol):
    """Text files as the editor has them: `view`, `grep`, `glob` and the edit tools read, and
    `write`/`edit`/`multiedit` write, through it what it `covers`, so unsaved buffers are the truth.
    The ACP adapter covers every file (`fs/*`); an LSP client the documents open in it
    (backend/editor.py); everything else is the local disk."""

    def covers(self, path: Path) -> bool:
        """Reads and writes of this file go through here (else: the disk, as without an editor)."""
        ...

    async def read_text(self, session_id: str, path: Path) -> str:
        """The file's text; raises (any exception) when the editor cannot read it."""
        ...

    def stamp(self, path: Path, text: str) -> float | None:
        """What `view` records and the edit tools compare ("viewed and unchanged since") for a
        covered file read as `text`: the disk's mtime, or a stamp of the text itself."""
        ...

    async def write_text(self, session_id: str, path: Path, content: str, based_on: str | None = None) -> str | None:
        """Write `content`, computed from the text `based_on` (as read; None: no file). Raises
        EditorConflict when the editor's text is no longer `based_on` or the editor refused;
        returns a note for the tool result (the disk differs...) or None."""
        ...

    def open_texts(self, under: Path) -> dict[Path, str]:
        """The editor's texts of the open files inside `under` that it knows ({}: none known)."""
        ...

    async def after_edit(self, session_id: str, path: Path, old: str, new: str) -> str | None:
        """Called after every change of a file by `write`/`edit`/`multiedit`, covered or not, with the
        text before and after; what it returns is added to the tool result (the place for what the
        editor says of the edited file: follow the agent, its diagnostics)."""
        ...


@attrs.define
class ToolContext:
    """Everything a running tool may use. Tools never see the transport."""

    root: Path  # the workspace folder, resolved
    session_id: str
    run_id: str
    tool_call_id: str
    store: Store
    files: Files | None = None  # None: the local disk
    message_id: str | None = None  # the run's user message: file versions are kept as its changes
    # What `access` resolved, by the path as the model wrote it: the call
    # works on what the permission decision saw, never on a second resolution.
    checked: dict[str | None, Path] = attrs.Factory(dict)


def mtime_or_none(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:  # an editor buffer not saved yet
        return None


class _Schema:
    """`Tool.parameters`: generated from the class's `input_type`. A non-data
    descriptor, so an instance may still set its own schema."""

    def __get__(self, tool: Tool | None, owner: type[Tool]) -> dict[str, Any]:
        return json_schema(owner.input_type)


class Tool:
    """Base class of the built-in tools. Subclasses set the class attributes."""

    # Set by each class (an MCP tool sets them per instance).
    name: str
    description: str
    input_type: ClassVar[type]  # attrs class the input is structured into (and its schema)
    action: ClassVar[str] = ""
    asks_inside: ClassVar[bool] = False

    # The JSON schema shown to the model, from `input_type` (see schema.py); a tool
    # without an input class (an MCP tool) sets its own on the instance.
    parameters: _Schema | dict[str, Any] = _Schema()

    def parse(self, raw: Any) -> Any:
        """Structure the model's input strictly, or raise ToolInputError."""
        if not isinstance(raw, dict):
            raise ToolInputError(f"{self.name}: input must be a JSON object")
        try:
            return STRICT.structure(raw, self.input_type)
        except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
            raise ToolInputError(f"{self.name}: invalid input: {describe_structure_error(exc)}") from exc

    def target(self, args: Any) -> str | None:
        """The path argument the call touches (None: the workspace folder)."""
        return None

    def checked_path(self, ctx: ToolContext, args: Any) -> Path:
        """The path `access` resolved for this call (resolved now when the call was not decided first)."""
        target = self.target(args)
        return ctx.checked[target] if target in ctx.checked else resolve_path(ctx.root, target)[0]

    def access(self, ctx: ToolContext, args: Any) -> Access:
        path, inside = resolve_path(ctx.root, self.target(args))
        ctx.checked[self.target(args)] = path
        description = self.describe(ctx, args)
        if self.action == "write" and configures_execution(ctx.root, path):
            # Treated as outside the workspace: a person's yes every time, never a grant or a setting.
            inside = False
            description += " (it configures what programs run: asks every time)"
        return Access(
            action=self.action,
            path=str(path),
            inside=inside,
            asks_inside=self.asks_inside,
            description=description,
        )

    def describe(self, ctx: ToolContext, args: Any) -> str:
        target = self.target(args)
        return f"{self.name} {target}" if target else self.name

    async def run(self, ctx: ToolContext, args: Any) -> ToolResult:
        raise NotImplementedError
