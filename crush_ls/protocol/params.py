"""Request params (PROTOCOL section 2): plain attrs classes, camelCase on the wire.

`convert.structure_params` structures them strictly (no coercion; null means
"not given"). Results and notifications are plain dicts of JSON types, sent
often and cheaply; their shapes are declared in `shapes`.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs


@attrs.define
class Attachment:
    path: str | None = None
    uri: str | None = None
    mime_type: str | None = None
    text: str | None = None
    content: str | None = None  # base64

    def to_dict(self) -> dict[str, str]:
        raw = {"path": self.path, "uri": self.uri, "mimeType": self.mime_type,
               "text": self.text, "content": self.content}
        return {k: v for k, v in raw.items() if v is not None}


@attrs.define
class Position:
    """An LSP Position: zero-based line and character (UTF-16 code units, as LSP counts them)."""

    line: int = attrs.field(validator=attrs.validators.ge(0))
    character: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.define
class Range:
    """An LSP Range (`end` exclusive)."""

    start: Position
    end: Position


ContextKind = Literal["file", "selection", "diagnostics"]


@attrs.define
class ContextItem:
    """What the editor shows the person, sent with a prompt (`agent/sendMessage.context`).

    Without `text` the server reads it when the run starts: a file's text (the open
    buffer's, unsaved changes included), a selection's lines, a file's diagnostics
    (asked of the client with `agent/diagnostics`).
    """

    uri: str
    kind: ContextKind
    range: Range | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"uri": self.uri, "kind": self.kind}
        if self.range is not None:
            item["range"] = range_to_dict(self.range)
        if self.text is not None:
            item["text"] = self.text
        return item


def range_lines(r: dict[str, Any]) -> tuple[int, int]:
    """The zero-based first and last line a wire Range covers: an end at character 0 of a
    later line leaves that line out (an editor's whole-line selection ends there)."""
    first, last = r["start"]["line"], r["end"]["line"]
    return first, last - 1 if r["end"]["character"] == 0 and last > first else last


def range_to_dict(r: Range) -> dict[str, Any]:
    return {"start": {"line": r.start.line, "character": r.start.character},
            "end": {"line": r.end.line, "character": r.end.character}}


@attrs.define
class Diagnostic:
    """An LSP Diagnostic, as much of it as crush-ls reads (other fields are ignored)."""

    range: Range
    message: str
    severity: int | None = None  # 1 error, 2 warning, 3 information, 4 hint
    source: str | None = None
    code: Any = None  # LSP allows a string or an integer


@attrs.define
class FileDiagnostics:
    uri: str
    diagnostics: list[Diagnostic]


@attrs.define
class DiagnosticsResult:
    """The client's answer to `agent/diagnostics` (server to client)."""

    items: list[FileDiagnostics]


@attrs.define
class WorkspaceParams:
    workspace: str | None = None


@attrs.define
class SessionParams:
    workspace: str | None = None
    session_id: str | None = None


@attrs.define
class SendMessageParams:
    workspace: str | None = None
    session_id: str | None = None
    prompt: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] = attrs.Factory(list)
    context: list[ContextItem] = attrs.Factory(list)
    mode: Literal["queue", "steer"] = "queue"


@attrs.define
class CancelParams:
    workspace: str | None = None
    session_id: str | None = None
    run_id: str | None = None


@attrs.define
class CreateSessionParams:
    workspace: str | None = None
    title: str | None = None


@attrs.define
class RenameSessionParams:
    workspace: str | None = None
    session_id: str | None = None
    title: str | None = None


@attrs.define
class ChangesParams:
    """`agent/changes`: one run's changes, those since a user message, or (neither) the session's."""

    workspace: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    since_message_id: str | None = None


@attrs.define
class HunkDecision:
    id: str
    decision: Literal["accept", "reject"]


@attrs.define
class ReviewParams:
    workspace: str | None = None
    session_id: str | None = None
    path: str | None = None
    hunks: list[HunkDecision] = attrs.Factory(list)


@attrs.define
class RewindParams:
    workspace: str | None = None
    session_id: str | None = None
    message_id: str | None = None
    force: bool = False


@attrs.define
class UnrewindParams:
    workspace: str | None = None
    session_id: str | None = None
    force: bool = False


ProviderName = Literal["local", "openai", "anthropic", "scripted", "echo"]


@attrs.define
class ModelSelection:
    """A model as a client names it (`agent/setModel`'s `model`).

    The backend turns it into the settings' model (completed from crush.json).
    The wire takes the same fields as a model in initializationOptions.
    """

    provider: ProviderName | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)  # never logged
    max_tokens: int | None = None
    # The harness providers' options (PROTOCOL section 7).
    script: dict[str, Any] | None = None
    script_path: str | None = None
    delay_ms: float = 0
    repeat: int = 1
    # What a catalog would know, given by the client instead.
    name: str | None = None
    context_window: int | None = None
    cost_per_1m_in: float | None = None
    cost_per_1m_out: float | None = None
    cost_per_1m_in_cached: float | None = None
    cost_per_1m_out_cached: float | None = None
    supports_tools: bool | None = None
    think: bool | None = None


@attrs.define
class SetModelParams:
    model: ModelSelection
    workspace: str | None = None
