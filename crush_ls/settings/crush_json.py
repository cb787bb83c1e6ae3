"""Crush's `crush.json` files, read so that Crush users keep their configuration.

Files, lowest priority first (later files win, key by key):

1. the user's config: `$CRUSH_GLOBAL_CONFIG/crush.json`, else
   `$XDG_CONFIG_HOME/crush/crush.json`, else `~/.config/crush/crush.json`;
2. the user's Crush state, where Crush's TUI saves keys and model choices:
   `$CRUSH_GLOBAL_DATA/crush.json`, else `$XDG_DATA_HOME/crush/crush.json`,
   else `~/.local/share/crush/crush.json`;
3. the workspace's `crush.json`, then its `.crush.json`.

What crush-ls uses: `providers` (`type` openai / openai-compat / openrouter
become our `openai` provider, anthropic our `anthropic`), `models.large` /
`models.small`, `permissions.allowed_tools`, `options.data_directory` and `mcp`
(crush_ls.mcp.config). Everything else (lsp, tui, ...) is ignored. `$VAR` and `${VAR}` in
`base_url` and `api_key` read the environment; `$(command)` is not run.
A file that is not valid JSON is skipped with a warning; no value from any
file is ever logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import attrs

from .model import ModelConfig, ProviderName
from .secrets import lookup

log = logging.getLogger(__name__)

CONFIG_NAME = "crush.json"
WORKSPACE_FILES = ("crush.json", ".crush.json")  # the later wins, as in Crush
OUR_PROVIDER: dict[str, ProviderName] = {
    "openai": "openai", "openai-compat": "openai", "openrouter": "openai", "anthropic": "anthropic",
}
# Crush knows these providers without configuration (from its catwalk registry).
BUILTIN_PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"type": "openai", "api_key": "$OPENAI_API_KEY"},
    "anthropic": {"type": "anthropic", "api_key": "$ANTHROPIC_API_KEY"},
    "openrouter": {"type": "openrouter", "base_url": "https://openrouter.ai/api/v1",
                   "api_key": "$OPENROUTER_API_KEY"},
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_WHOLE_VARIABLE = re.compile(r"^\s*\$(\{\w+\}|\w+)\s*$")


@attrs.define
class CrushConfig:
    """The merged files, as far as crush-ls uses them."""

    models: dict[str, ModelConfig] = attrs.Factory(dict)  # "large" / "small"
    available: list[ModelConfig] = attrs.Factory(list)  # every model of every usable provider
    # Base URL and key of the providers whose id is one of our provider names
    # ("openai", "anthropic"), for a model crush.json does not list.
    provider_defaults: dict[str, ModelConfig] = attrs.Factory(dict)
    allowed_tools: list[str] | None = None
    data_directory: str | None = None
    mcp: dict[str, Any] = attrs.Factory(dict)  # the raw `mcp` map, read by crush_ls.mcp.config
    # The workspace's own files chose `data_directory` (the repository, not the person).
    data_directory_from_workspace: bool = False


# --- files -------------------------------------------------------------------


def user_config_paths() -> list[Path]:
    home = Path.home()
    config_dir = _env_dir("CRUSH_GLOBAL_CONFIG") or _xdg("XDG_CONFIG_HOME", home / ".config") / "crush"
    data_dir = _env_dir("CRUSH_GLOBAL_DATA") or _xdg("XDG_DATA_HOME", home / ".local" / "share") / "crush"
    return [_config_file(config_dir), _config_file(data_dir)]


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _xdg(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else default


def _config_file(path: Path) -> Path:
    return path if path.suffix == ".json" else path / CONFIG_NAME  # a file given for the directory


def config_paths(folder: Path) -> list[Path]:
    """Every file that may configure `folder`, lowest priority first."""
    return [*user_config_paths(), *(folder / name for name in WORKSPACE_FILES)]


def read_json_file(path: Path) -> dict[str, Any] | None:
    """The object in `path`; None (with a warning) when it is missing or broken."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring %s: cannot read it (%s)", path, exc.strerror or type(exc).__name__)
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        # The position only: the message of a JSON error may quote the file, and the file holds keys.
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "?"
        log.warning("ignoring %s: it is not valid JSON (error at %s)", path, where)
        return None
    if not isinstance(value, dict):
        log.warning("ignoring %s: it must hold a JSON object", path)
        return None
    return value


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_files(paths: list[Path]) -> dict[str, Any]:
    """The files merged, lowest priority first; missing or broken ones are skipped."""
    raw: dict[str, Any] = {}
    for path in paths:
        content = read_json_file(path)
        if content is not None:
            raw = merge(raw, content)
    return raw


def load_raw(folder: Path) -> dict[str, Any]:
    return read_files(config_paths(folder))


# --- values ------------------------------------------------------------------------


def expand_env(value: str) -> str:
    """`$VAR` and `${VAR}` read the environment (unset: empty)."""
    return _VARIABLE.sub(lambda m: lookup(m.group(1) or m.group(2)) or "", value)


def _api_key(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if _WHOLE_VARIABLE.match(value):
        # Kept as `$VAR`: resolved when the provider is made, so an unset
        # variable is reported by name.
        return value.strip()
    if "$(" in value:
        log.warning("crush.json: api_key commands $(...) are not supported by crush-ls; use $VARIABLE")
        return None
    return expand_env(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _float(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        log.warning("crush.json: ignoring %s, it must be an object", where)
        return {}
    return value


# --- providers and models -------------------------------------------------------------


@attrs.define
class _Provider:
    id: str
    ours: ProviderName
    base_url: str | None
    api_key: str | None = attrs.field(repr=False)
    models: dict[str, dict[str, Any]]  # catwalk model objects by id


def _providers(raw: dict[str, Any]) -> dict[str, _Provider]:
    configured = _object(raw.get("providers"), "providers")
    providers: dict[str, _Provider] = {}
    for provider_id in {**BUILTIN_PROVIDERS, **configured}:
        given = _object(configured.get(provider_id), f"providers.{provider_id}")
        spec = merge(BUILTIN_PROVIDERS.get(provider_id, {}), given)
        provider = _provider(provider_id, spec)
        if provider is not None:
            providers[provider_id] = provider
    return providers


def _provider(provider_id: str, spec: dict[str, Any]) -> _Provider | None:
    if spec.get("disable") is True:
        return None
    kind = _str(spec.get("type")) or ("openai-compat" if spec.get("base_url") else None)
    ours = OUR_PROVIDER.get(kind or "")
    if ours is None:
        log.debug("crush.json: provider %s has type %r, which crush-ls does not support", provider_id, kind)
        return None
    base_url = _str(spec.get("base_url"))
    models: dict[str, dict[str, Any]] = {}
    listed = spec.get("models")
    for model in listed if isinstance(listed, list) else []:
        if isinstance(model, dict) and _str(model.get("id")):
            models[model["id"]] = model
    return _Provider(provider_id, ours, expand_env(base_url) if base_url else None, _api_key(spec.get("api_key")),
                     models)


def _model_config(provider: _Provider, model_id: str, selected: dict[str, Any] | None = None) -> ModelConfig:
    model = provider.models.get(model_id, {})
    selected = selected or {}
    think = selected.get("think")
    return ModelConfig(
        provider=provider.ours,
        model=model_id,
        base_url=provider.base_url,
        api_key=provider.api_key,
        max_tokens=_int(selected.get("max_tokens")) or _int(model.get("default_max_tokens")),
        name=_str(model.get("name")),
        context_window=_int(model.get("context_window")),
        cost_per_1m_in=_float(model.get("cost_per_1m_in")),
        cost_per_1m_out=_float(model.get("cost_per_1m_out")),
        cost_per_1m_in_cached=_float(model.get("cost_per_1m_in_cached")),
        cost_per_1m_out_cached=_float(model.get("cost_per_1m_out_cached")),
        think=think if isinstance(think, bool) else None,
    )


def _selected(raw: dict[str, Any], size: str, providers: dict[str, _Provider]) -> ModelConfig | None:
    selected = _object(_object(raw.get("models"), "models").get(size), f"models.{size}")
    provider_id, model_id = _str(selected.get("provider")), _str(selected.get("model"))
    if not selected:
        return None
    if provider_id is None or model_id is None:
        log.warning("crush.json: ignoring models.%s, it needs a provider and a model", size)
        return None
    provider = providers.get(provider_id)
    if provider is None:
        log.warning("crush.json: ignoring models.%s, provider %s is not configured or not supported by crush-ls",
                    size, provider_id)
        return None
    return _model_config(provider, model_id, selected)


def parse(raw: dict[str, Any]) -> CrushConfig:
    providers = _providers(raw)
    config = CrushConfig()
    for size in ("large", "small"):
        model = _selected(raw, size, providers)
        if model is not None:
            config.models[size] = model
    config.available = [_model_config(p, model_id) for p in providers.values() for model_id in p.models]
    config.provider_defaults = {
        p.id: ModelConfig(provider=p.ours, base_url=p.base_url, api_key=p.api_key)
        for p in providers.values() if p.id == p.ours
    }
    tools = _object(raw.get("permissions"), "permissions").get("allowed_tools")
    if isinstance(tools, list) and all(isinstance(t, str) for t in tools):
        config.allowed_tools = list(tools)
    elif tools is not None:
        log.warning("crush.json: ignoring permissions.allowed_tools, it must be a list of strings")
    config.data_directory = _str(_object(raw.get("options"), "options").get("data_directory"))
    config.mcp = _object(raw.get("mcp"), "mcp")
    return config


def load(folder: Path) -> CrushConfig:
    """The crush.json configuration of a workspace folder."""
    workspace = read_files([folder / name for name in WORKSPACE_FILES])
    config = parse(merge(read_files(user_config_paths()), workspace))
    options = workspace.get("options")
    config.data_directory_from_workspace = isinstance(options, dict) and "data_directory" in options
    return config


# --- initializationOptions on top ---------------------------------------------------

_FILLED_FROM_CATALOG = ("base_url", "api_key", "max_tokens", "name", "context_window", "cost_per_1m_in",
                        "cost_per_1m_out", "cost_per_1m_in_cached", "cost_per_1m_out_cached", "think")


def complete_model(config: ModelConfig, crush: CrushConfig) -> ModelConfig:
    """`config` with what crush.json knows about the same model filled in.

    A model that names only its provider and id (and at most the same base
    URL) gets the base URL, key, limits and prices of the matching crush.json
    model (`models.large`, `models.small`, then the providers' model lists);
    anything `config` gives itself wins. A model crush.json does not list
    still gets the base URL and key of the crush.json provider named like
    ours (`providers.openai`, `providers.anthropic`).
    """
    if config.api_key is not None:
        return config  # its own credentials: another endpoint than crush.json's
    for known in [*crush.models.values(), *crush.available]:
        if known.provider != config.provider or known.model != config.model:
            continue
        if config.base_url is not None and config.base_url.rstrip("/") != (known.base_url or "").rstrip("/"):
            continue
        return _fill(config, known, _FILLED_FROM_CATALOG)
    default = crush.provider_defaults.get(config.provider or "")
    if default is not None and config.base_url is None:
        return _fill(config, default, ("base_url", "api_key"))
    return config


def _fill(config: ModelConfig, known: ModelConfig, names: tuple[str, ...]) -> ModelConfig:
    filled = {name: getattr(known, name) for name in names if getattr(config, name) is None}
    return attrs.evolve(config, **filled)
