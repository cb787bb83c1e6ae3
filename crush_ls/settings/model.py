"""One model as configured: what `initializationOptions.model`, `agent/setModel` or crush.json ask for.

The crush.json reader, the settings resolution and the providers all build
on it; it imports only `secrets` (keys are read through it).
"""

from __future__ import annotations

import attrs

from ..protocol.params import ModelSelection
from ..protocol.params import ProviderName as ProviderName  # (re-exported)
from .secrets import lookup


@attrs.define
class ModelConfig(ModelSelection):
    """One model as configured (`model` / `smallModel` of initializationOptions): the wire's fields
    (`protocol.params.ModelSelection`), completed from crush.json, with what the providers ask of it."""

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
