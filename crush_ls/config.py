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

from .errors import InvalidParams
from .wire import structure_params

ProviderName = Literal["local", "openai", "anthropic", "scripted", "echo"]


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


def parse_init_options(raw: Any) -> Settings:
    """Structure `initializationOptions`, naming the bad field on error."""
    try:
        return structure_params(raw or {}, Settings)
    except ValueError as exc:
        raise InvalidParams(
            "initializationOptions: " + str(exc).replace("@ params.", "@ initializationOptions.")
        ) from exc


def load_settings(folder: Path, init_options: Settings) -> Settings:
    """The settings of one workspace folder.

    Configuration files are merged under `init_options` (see
    `crush_ls.crush_config` once provider configuration lands); for now the
    initialization options are the whole configuration.
    """
    return init_options
