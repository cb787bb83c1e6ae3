"""What every process pays again before it can answer: the methods attrs and cattrs generate.

attrs writes the source of each class's `__init__`, `__repr__`, `__eq__`... and
compiles it when the class is defined; cattrs does the same for each structure
and unstructure function. lsprotocol alone defines ~550 attrs classes at import:
their `compile()` calls were ~40 % of its import time (~150 ms of a ~430 ms
spawn -> `initialize` answer). Compiling the same source under the same name
gives the same code object, so the code is kept in a cache file, as Python keeps
a module's bytecode in a .pyc: keyed by a digest of the generated name and
source, so another version of attrs, cattrs, lsprotocol or crush-ls misses
instead of getting stale code. `load_code_cache` hooks the modules' `compile`
(a module global shadowing the builtin); `save_code_cache` writes what missed;
`loading` wraps a process's start-up imports in both, with the collector paused.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import logging
import marshal
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, ModuleType
from typing import Any

try:
    from _blake2 import blake2b  # what hashlib imports it from, without hashlib's 4 ms
except ImportError:  # pragma: no cover - an interpreter without it
    from hashlib import blake2b

log = logging.getLogger(__name__)

GENERATORS = ("attr._make", "cattrs.gen")  # the modules that compile generated source
PRUNE_FACTOR = 3  # a file holding this many times what a process used is rewritten with only that
# The collector's thresholds once a server runs (Python's: 700, 10, 10). A young collection every
# 700 new objects ran a few hundred times a second while many sessions streamed, and each pass
# over what the sessions hold took milliseconds of the loop: every 50,000 it runs a fiftieth as
# often (bench/scale.py, 1,000 sessions: ack p99 1.2-5.7 -> 0.3-2.8 ms). Full collections still
# come as Python decides them (its rule: when the long-lived objects grew by a quarter), so
# garbage with cycles is freed as before, only later.
SERVING_THRESHOLDS = (50_000, 20, 10)


class CodeCache:
    """Generated code by digest of (mode, flags, name, source), loaded from and saved to one file."""

    def __init__(self, path: str | None) -> None:
        self.path = path  # None: kept in memory only
        self.known: dict[bytes, CodeType] = {}  # read from the file
        self.used: dict[bytes, CodeType] = {}  # looked up by this process
        self.missed = 0  # compiled since the last save
        if path is None:
            return
        try:
            with open(path, "rb") as file:
                known = marshal.loads(file.read())
            if isinstance(known, dict):
                self.known = known
        except (OSError, EOFError, ValueError, TypeError):
            pass  # no cache yet, or one cut short: everything is compiled (and saved) again

    def compiler(self, module: ModuleType) -> Callable[..., Any]:
        """`compile` for one module: cached for its calls with source, name and mode only."""
        # The code the module compiles itself carries its `from __future__` flags (`annotations`
        # is that feature here too: this module imports it the same way).
        flags = annotations.compiler_flag if getattr(module, "annotations", None) is annotations else 0

        def cached_compile(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or type(source) is not str or type(filename) is not str or "def __hash__" in source:
                # (attrs writes a hash of the class's name, different in each process, into __hash__)
                return builtins.compile(source, filename, mode, *args, **kwargs)
            key = blake2b(f"{mode}\0{flags}\0{filename}\0{source}".encode(), digest_size=16).digest()
            code = self.known.get(key)
            if code is None:
                code = self.known[key] = builtins.compile(source, filename, mode, flags, True)
                self.missed += 1
            self.used[key] = code
            return code

        return cached_compile

    def save(self) -> None:
        """Write the cache when something missed it (what this process used, plus what the file
        had unless that is mostly code no process of this version uses any more)."""
        if not self.missed or self.path is None:  # (PYTHONDONTWRITEBYTECODE is about .pyc files: not this)
            return
        keep = self.known if len(self.known) <= PRUNE_FACTOR * len(self.used) else self.used
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(marshal.dumps(keep))
            os.replace(temporary, self.path)  # readers see the old file or the new one, never half
            self.missed = 0
        except (OSError, ValueError) as exc:
            log.debug("code cache not saved: %s", exc)
            try:
                os.unlink(temporary)
            except OSError:
                pass


_cache: CodeCache | None = None


def cache_path(name: str) -> str | None:
    """$XDG_CACHE_HOME/crush-ls/..., else ~/.cache/crush-ls/...; None without a home (a relative path
    would be the workspace's, and the XDG spec says to ignore one)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    tag = f"{sys.implementation.cache_tag}-{sys.hexversion:x}-o{sys.flags.optimize}"
    return os.path.join(base, "crush-ls", f"generated-code.{name}.{tag}.marshal")


def load_code_cache(name: str, generators: tuple[str, ...] = GENERATORS) -> CodeCache:
    """Hook the generators' `compile` onto the cache `name` (one per kind of process: each
    generates its own classes). Before anything defines an attrs class, or they are compiled."""
    global _cache
    if _cache is None:
        _cache = CodeCache(cache_path(name))
    for module_name in generators:
        module = importlib.import_module(module_name)
        module.compile = _cache.compiler(module)  # type: ignore[attr-defined]
    return _cache


def save_code_cache() -> None:
    if _cache is not None:
        _cache.save()


@contextmanager
def loading(name: str) -> Iterator[CodeCache]:
    """Around the imports a process needs before it answers: they build ~100k objects that live as
    long as it does (lsprotocol's classes, the ACP SDK's models). The collector's passes over them
    while they are built were ~40 ms of the server's spawn -> `initialize` answer: it collects
    nothing until they are built, then keeps them out of its scans (`gc.freeze`). The methods attrs
    and cattrs generate meanwhile come from the cache `name`."""
    gc.disable()
    try:
        yield load_code_cache(name)
        save_code_cache()  # what the imports compiled, for the next process (nothing when all was cached)
    finally:
        gc.freeze()
        gc.set_threshold(*SERVING_THRESHOLDS)
        gc.enable()
