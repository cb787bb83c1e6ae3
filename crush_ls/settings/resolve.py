"""Settings of a workspace: `initializationOptions` over the crush.json files.

`parse_init_options` structures the options as sent (`InitOptions`: a field
that was not given is None); `load_settings` is the one place that decides
which model, permissions and data directory a workspace uses, and returns
them resolved (`Settings`). Keys given in `initializationOptions`
(PROTOCOL section 1) win over the configuration files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import attrs

from ..protocol.convert import structure_params
from ..protocol.errors import CrushError, InvalidParams
from . import crush_json, secrets
from .crush_json import CrushConfig
from .model import ModelConfig

DEFAULT_DATA_DIRECTORY = ".crush"
PermissionMode = Literal["ask", "allow", "deny"]


@attrs.define
class InitPermissions:
    """`initializationOptions.permissions` as sent; `allowed_tools` None: not given."""

    mode: PermissionMode = "ask"
    allowed_tools: list[str] | None = None
    timeout_ms: int = 300_000


@attrs.define
class InitOptions:
    """`initializationOptions` as sent. None means not given (crush.json may say)."""

    model: ModelConfig | None = None
    small_model: ModelConfig | None = None
    permissions: InitPermissions = attrs.Factory(InitPermissions)
    data_directory: str | None = None
    stream_interval_ms: float = 16
    # Show each edit of the agent in the editor (window/showDocument, takeFocus false).
    follow_agent: bool = False
    # MCP servers by name, Crush's shape (crush_ls.mcp.config); they win over crush.json's by name.
    mcp: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class PermissionSettings:
    mode: PermissionMode = "ask"
    allowed_tools: list[str] = attrs.Factory(list)
    timeout_ms: int = 300_000


@attrs.define
class Settings:
    """What one workspace uses, resolved from its `InitOptions` and crush.json files."""

    model: ModelConfig | None = None
    small_model: ModelConfig | None = None
    permissions: PermissionSettings = attrs.Factory(PermissionSettings)
    data_directory: str = DEFAULT_DATA_DIRECTORY
    # Who chose `data_directory`: the person (initializationOptions, their own crush.json) may put
    # it anywhere; the default and a workspace's crush.json only inside the workspace.
    data_directory_chosen_by_person: bool = False
    stream_interval_ms: float = 16
    mcp: dict[str, Any] = attrs.Factory(dict)  # initializationOptions.mcp (crush.json's are in `crush.mcp`)
    # The crush.json configuration merged in, for agent/setModel, agent/models and MCP.
    crush: CrushConfig = attrs.Factory(CrushConfig)

    def complete_model(self, model: ModelConfig) -> ModelConfig:
        """A model named by provider and id, completed from crush.json (for agent/setModel)."""
        return crush_json.complete_model(model, self.crush)

    @property
    def available_models(self) -> list[ModelConfig]:
        """Every model the crush.json providers list (for agent/models)."""
        return list(self.crush.available)


class DataDirectoryRefused(CrushError):
    """The workspace's own configuration would put the data directory outside the workspace."""


def data_directory_path(folder: Path, settings: Settings) -> Path:
    """Where the workspace's data lives; outside the folder only if the person chose it.

    A repository must not make the server write elsewhere: a `crush.json` in it
    with `options.data_directory: "../elsewhere"`, or a `.crush` symlink to
    another place, is refused (the folder is not opened).
    """
    path = folder / settings.data_directory
    resolved = Path(os.path.realpath(path))
    if settings.data_directory_chosen_by_person or resolved == folder or folder in resolved.parents:
        return path
    raise DataDirectoryRefused(
        f"the data directory {settings.data_directory!r} resolves to {resolved}, outside the workspace; "
        "the workspace's crush.json may only choose one inside it. A data directory elsewhere must come "
        "from initializationOptions.dataDirectory or the user's own crush.json (options.data_directory)."
    )


def parse_init_options(raw: Any) -> InitOptions:
    """Structure `initializationOptions`, naming the bad field on error."""
    try:
        return structure_params(raw or {}, InitOptions)
    except ValueError as exc:
        raise InvalidParams(
            "initializationOptions: " + str(exc).replace("@ params.", "@ initializationOptions.")
        ) from exc


def load_settings(folder: Path, init_options: InitOptions) -> Settings:
    """The settings of one workspace folder: the crush.json files under `init_options`.

    A value given in `initializationOptions` wins over the files. A `model`
    given there replaces crush.json's `models.large` (`smallModel` its
    `models.small`), completed from crush.json when it names a model the
    files configure (see `crush_json.complete_model`).
    """
    crush = crush_json.load(folder)
    # Every key configured, used or not, stays out of commands' environments and output.
    secrets.note_models([init_options.model, init_options.small_model, *crush.models.values(), *crush.available,
                         *crush.provider_defaults.values()])
    given = init_options.permissions
    allowed_tools = _first_given(given.allowed_tools, crush.allowed_tools, [])
    return Settings(
        model=_pick_model(init_options.model, crush, "large"),
        small_model=_pick_model(init_options.small_model, crush, "small"),
        permissions=PermissionSettings(mode=given.mode, allowed_tools=list(allowed_tools),
                                       timeout_ms=given.timeout_ms),
        data_directory=_first_given(init_options.data_directory, crush.data_directory, DEFAULT_DATA_DIRECTORY),
        data_directory_chosen_by_person=init_options.data_directory is not None or (
            crush.data_directory is not None and not crush.data_directory_from_workspace),
        stream_interval_ms=init_options.stream_interval_ms,
        mcp=init_options.mcp,
        crush=crush,
    )


def _pick_model(given: ModelConfig | None, crush: CrushConfig, size: str) -> ModelConfig | None:
    if given is None:
        return crush.models.get(size)
    return crush_json.complete_model(given, crush)


def _first_given(*values: Any) -> Any:
    return next(value for value in values if value is not None)
