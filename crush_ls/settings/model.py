"""One model as configured: what `initializationOptions.model`, `agent/setModel` or crush.json ask for.

The crush.json reader, the settings resolution and the providers all build
on it; it imports only `secrets` (keys are read through it).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..protocol.params import ProviderName as ProviderName  # (re-exported)
from .secrets import lookup


@attrs.define
class ModelConfig:
    """One model as configured (`model` / `smallModel` of initializationOptions)."""

    provider: ProviderName | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)  # never logged
    max_tokens: int | None = None
    script: dict[str, Any] | None = None
    script_path: str | None = None
    delay_ms: float = 0
    repeat: int = 1
    # Known from crush.json's provider models, or defaults of the provider.
    name: str | None = None
    context_window: int | None = None
    cost_per_1m_in: float | None = None
    cost_per_1m_out: float | None = None
    cost_per_1m_in_cached: float | None = None
    cost_per_1m_out_cached: float | None = None
    supports_tools: bool | None = None
    think: bool | None = None

    def key_variable(self) -> str | None:
        """The environment variable a `$NAME` / `${NAME}` key names (None for a literal key)."""
        key = self.api_key
        return key[1:].strip("{}") if key and key.startswith("$") else None

    def resolved_api_key(self) -> str | None:
        """`$NAME` reads the environment variable NAME; anything else is literal."""
        variable = self.key_variable()
        if variable is not None:
            return lookup(variable) or None
        return self.api_key
