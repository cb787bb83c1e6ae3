"""API keys and tokens: kept out of every child's environment and out of tool output.

Tool output goes to the model, the client and the database, so no key may be
in it. Three lines of defence:

- `child_environment()`: what a command run for the model gets. Variables
  the configuration names as keys (`apiKey: "$MY_LLM_TOKEN"`) and every name
  that looks like a key (`SECRET_NAME`: `OPENAI_API_KEY`, `GITHUB_TOKEN`,
  `AWS_SECRET_ACCESS_KEY`, ...) are left out.
- `redact()`: every key value the server knows of (configured keys, and the
  values of those variables in its environment) is replaced in tool output
  before it is sent or stored.
- `hide_process_environment()` (the server process, at start): a command can
  read its parent's environment (`cat /proc/$PPID/environ`), encoded beyond
  what `redact` recognises. The values of secret-looking variables are blanked
  in the process's initial environment block, which is what `/proc/PID/environ`
  shows, after moving them to memory of their own (`putenv`) so the server and
  its other children still see them. Model keys (`note_models`) are also taken
  out of `os.environ` altogether: crush-ls reads them through `lookup`.

What a command can still see is documented in docs/tools.md (bash).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Names that hold keys: the vendors' *_API_KEY, GITHUB_TOKEN / GH_TOKEN / HF_TOKEN / NPM_TOKEN,
# AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, *_PASSWORD, ...
SECRET_NAME = re.compile(r"API_?KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|(^|_)TOKEN($|_)", re.IGNORECASE)
# The vendors' variables crush-ls itself reads a key from: taken out of os.environ.
MODEL_KEY_VARIABLES = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"})
# Shorter values (`1`, `true`) are not worth hiding and would garble any output.
MIN_REDACTED_LENGTH = 8
REDACTED = "***"


class NamesAKey(Protocol):
    """A configured model: `api_key` is a literal key or `$NAME` of a variable holding one."""

    api_key: str | None

    def key_variable(self) -> str | None: ...


_key_variables: set[str] = set()  # configured by name: never in a child's environment
_values: set[str] = set()  # redacted from tool output
_pattern: re.Pattern[str] | None = None
_taken: dict[str, str] = {}  # model keys taken out of os.environ
_hiding = False  # this process hides keys from its own environment (the server does)


def is_key_variable(name: str) -> bool:
    return name in _key_variables or bool(SECRET_NAME.search(name))


def lookup(name: str) -> str | None:
    """An environment variable as crush-ls reads it: keys taken out of os.environ still count."""
    return os.environ.get(name, _taken.get(name))


def child_environment() -> dict[str, str]:
    """The server's environment without any key variable, for a command run for the model."""
    return {name: value for name, value in os.environ.items() if not is_key_variable(name)}


def remember(value: str | None) -> None:
    """A key value to redact from tool output from now on."""
    global _pattern
    if value and len(value) >= MIN_REDACTED_LENGTH and value not in _values:
        _values.add(value)
        _pattern = None


def redact(text: str) -> str:
    """`text` with every known key value replaced by ***."""
    global _pattern
    if not _values:
        return text
    if _pattern is None:  # longest first: a key that contains another is replaced whole
        _pattern = re.compile("|".join(re.escape(v) for v in sorted(_values, key=len, reverse=True)))
    return _pattern.sub(REDACTED, text)


def redact_json(value: Any) -> Any:
    """`redact` through every string of a JSON value (tool result metadata)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    return value


def note_models(models: Iterable[NamesAKey | None]) -> None:
    """The keys configured models name: their variables are key variables, their values redacted."""
    for model in models:
        if model is None or not model.api_key:
            continue
        variable = model.key_variable()
        if variable is None:
            remember(model.api_key)
            continue
        _key_variables.add(variable)
        remember(lookup(variable))
        if _hiding:
            _take(variable)
            _hide_from_proc({variable})


def hide_process_environment() -> None:
    """In the server process: hide keys of its environment from the commands it runs (see module doc)."""
    global _hiding
    _hiding = True
    secret = {name for name in os.environ if is_key_variable(name)}
    for name in secret:
        remember(os.environ[name])
    for name in secret & MODEL_KEY_VARIABLES:
        _take(name)
    _hide_from_proc(secret)


def _take(name: str) -> None:
    value = os.environ.pop(name, None)  # unsetenv too
    if value is not None:
        _taken[name] = value


def _hide_from_proc(names: set[str]) -> None:
    """Blank the values of `names` in the initial environment block (what /proc/PID/environ reads).

    Linux only, best effort: the block's bounds come from /proc/self/stat, and
    nothing is written unless the block there is byte for byte what
    /proc/self/environ shows. A variable still in os.environ is first set again
    (`putenv` copies it elsewhere), so the C environment keeps its value.
    """
    if sys.platform != "linux" or not names:
        return
    import ctypes  # only here: the server's start-up time

    try:
        with open("/proc/self/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end: fields 50 and 51
        with open("/proc/self/environ", "rb") as file:
            shown = file.read()
        if end <= start or ctypes.string_at(start, end - start) != shown:
            return
    except (OSError, ValueError, IndexError):
        return
    offset = 0
    for entry in shown.split(b"\0"):
        name, equals, value = entry.partition(b"=")
        decoded = name.decode(errors="replace")
        if equals and value and decoded in names:
            if decoded in os.environ:
                os.putenv(decoded, os.environ[decoded])
            ctypes.memset(start + offset + len(name) + 1, 0, len(value))
        offset += len(entry) + 1
    log.debug("hid %d key variables from /proc/self/environ", len(names))
