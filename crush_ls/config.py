"""Settings of a workspace: `initializationOptions` over the crush.json files.

`load_settings` is the one place that decides which model, permissions and
data directory a workspace uses. Keys given in `initializationOptions`
(PROTOCOL section 1) win over the configuration files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import attrs

from .protocol.convert import structure_params
from .protocol.errors import InvalidParams
from .protocol.params import ProviderName


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

    def resolved_api_key(self) -> str | None:
        """`$NAME` reads the environment variable NAME; anything else is literal."""
        key = self.api_key
        if key and key.startswith("$"):
            return os.environ.get(key[1:].strip("{}")) or None
        return key


@attrs.define
class PermissionSettings:
    mode: Literal["ask", "allow", "deny"] = "ask"
    allowed_tools: list[str] = attrs.Factory(list)
    timeout_ms: int = 300_000


@attrs.define
class Settings:
    model: ModelConfig | None = None
    small_model: ModelConfig | None = None
    permissions: PermissionSettings = attrs.Factory(PermissionSettings)
    data_directory: str = ".crush"
    stream_interval_ms: float = 16
    # MCP servers by name, Crush's shape (crush_ls.mcp.config); they win over crush.json's by name.
    mcp: dict[str, Any] = attrs.Factory(dict)
    # Not options (init=False: never read from the wire). `raw`: the
    # initializationOptions as sent, to tell a given value from a default.
    # `crush`: the crush.json configuration `load_settings` merged in.
    raw: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False)
    crush: Any = attrs.field(init=False, default=None, repr=False)

    def complete_model(self, model: ModelConfig) -> ModelConfig:
        """A model named by provider and id, completed from crush.json (for agent/setModel)."""
        if self.crush is None:
            return model
        from .crush_config import complete_model

        return complete_model(model, self.crush)

    @property
    def available_models(self) -> list[ModelConfig]:
        """Every model the crush.json providers list (for agent/models)."""
        return list(self.crush.available) if self.crush is not None else []


def parse_init_options(raw: Any) -> Settings:
    """Structure `initializationOptions`, naming the bad field on error."""
    try:
        settings = structure_params(raw or {}, Settings)
    except ValueError as exc:
        raise InvalidParams(
            "initializationOptions: " + str(exc).replace("@ params.", "@ initializationOptions.")
        ) from exc
    settings.raw = dict(raw or {})
    return settings


def load_settings(folder: Path, init_options: Settings) -> Settings:
    """The settings of one workspace folder: the crush.json files under `init_options`.

    A value given in `initializationOptions` wins over the files. A `model`
    given there replaces crush.json's `models.large` (`smallModel` its
    `models.small`), completed from crush.json when it names a model the
    files configure (see `crush_config.complete_model`).
    """
    from .crush_config import load

    crush = load(folder)
    settings = attrs.evolve(init_options, permissions=attrs.evolve(init_options.permissions))
    settings.raw, settings.crush = init_options.raw, crush
    settings.model = _pick_model(init_options.model, crush, "large")
    settings.small_model = _pick_model(init_options.small_model, crush, "small")
    raw = init_options.raw
    if crush.allowed_tools is not None and not (
        _given(raw, "permissions", "allowedTools") or init_options.permissions.allowed_tools
    ):
        settings.permissions.allowed_tools = list(crush.allowed_tools)
    if crush.data_directory and not (
        _given(raw, "dataDirectory") or init_options.data_directory != Settings().data_directory
    ):
        settings.data_directory = crush.data_directory
    return settings


def _given(raw: Any, *path: str) -> bool:
    """Whether initializationOptions held the key at `path` (a default is not a given value)."""
    for key in path:
        if not isinstance(raw, dict) or key not in raw:
            return False
        raw = raw[key]
    return True


def _pick_model(given: ModelConfig | None, crush: Any, size: str) -> ModelConfig | None:
    from .crush_config import complete_model

    if given is None:
        return crush.models.get(size)
    return complete_model(given, crush)
