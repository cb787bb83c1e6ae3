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
