"""Start-up: the cache of generated code (crush_ls/startup.py), what a process compiled once the next one
reuses; the command line read without argparse when it says nothing.

Each test runs fresh interpreters on a cache directory of its own: the hook
changes attrs and cattrs for the whole process, and what is measured is what
the second process finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crush_ls.cli import _serve_options, _serve_parser
from tests.raw import RawServer

# Classes of each kind attrs writes methods for, and a cattrs structure function.
PROBE = """
import gc, json, sys
from crush_ls.startup import SERVING_THRESHOLDS, loading
with loading("probe") as cache:
    assert not gc.isenabled()
    import attrs, cattrs

    @attrs.define
    class Point:
        x: int
        y: int = 0

    @attrs.frozen
    class Key:
        name: str

    @attrs.define(order=True)
    class Version:
        major: int
        minor: int

    point = cattrs.Converter().structure({"x": 1, "y": 2}, Point)
    missed = cache.missed
assert gc.isenabled() and gc.get_freeze_count() > 0  # what was loaded is out of the collector's scans
assert gc.get_threshold() == SERVING_THRESHOLDS  # a server's, not Python's (700, 10, 10)
assert point == Point(1, 2) and repr(point) == "Point(x=1, y=2)" and Point(3).y == 0
assert hash(Key("a")) == hash(Key("a")) and Key("a") != Key("b")
assert Version(1, 2) < Version(1, 10)
print(json.dumps({"used": len(cache.used), "missed": missed, "path": cache.path}))
"""


def probe(cache_home: Path, **env: str) -> dict[str, object]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), **env}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60,
                          cwd=cache_home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_second_process_compiles_nothing_the_first_compiled(tmp_path: Path):
    first = probe(tmp_path)
    assert first["missed"] == first["used"] and first["used"] >= 4  # attrs' methods and cattrs' structure
    assert Path(str(first["path"])).is_file() and str(first["path"]).startswith(str(tmp_path / "crush-ls"))
    second = probe(tmp_path)
    assert second == {**first, "missed": 0}


def test_a_damaged_cache_is_compiled_again_and_rewritten(tmp_path: Path):
    path = Path(str(probe(tmp_path)["path"]))
    path.write_bytes(path.read_bytes()[:100])
    again = probe(tmp_path)
    assert again["missed"] == again["used"]
    assert probe(tmp_path)["missed"] == 0


def test_without_a_home_nothing_is_written_where_the_server_runs(tmp_path: Path):
    assert probe(tmp_path, XDG_CACHE_HOME="", HOME="relative")["path"] is None
    assert probe(tmp_path, XDG_CACHE_HOME="relative", HOME="relative")["path"] is None
    assert list(tmp_path.iterdir()) == []
    home = tmp_path / "home"
    assert str(probe(tmp_path, XDG_CACHE_HOME="relative", HOME=str(home))["path"]).startswith(f"{home}/.cache/")


def test_the_server_answers_initialize_alike_with_the_cache_cold_and_warm(tmp_path: Path):
    answers = []
    for _ in range(2):
        server = RawServer(tmp_path, env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, initialize=False)
        try:
            answers.append(server.request("initialize", {"processId": None, "capabilities": {},
                                                         "rootUri": tmp_path.as_uri()}))
            bad = server.request("initialize", {"processId": None, "capabilities": {},
                                                "initializationOptions": {"streamIntervalMs": "soon"}})
            answers.append(bad)
        finally:
            server.close()
    assert answers[0] == answers[2] and answers[0]["result"]["capabilities"]["experimental"]["crush"]
    assert answers[1] == answers[3] and answers[1]["error"]["data"]["reason"] == "invalid_params"
    assert list((tmp_path / "cache" / "crush-ls").glob("generated-code.serve.*"))


@pytest.mark.parametrize("args", [[], ["--stdio"]])
def test_the_flags_editors_start_the_server_with_mean_what_the_parser_says(args: list[str]):
    assert vars(_serve_options(args)) == vars(_serve_parser().parse_args(args))


# What only a prompt, a tool or an open workspace needs: none of it is loaded before the initialize answer.
NOT_BEFORE_THE_ANSWER = ["openai", "anthropic", "httpx", "mcp", "acp", "llama_cpp", "sqlite3", "pydantic", "rich",
                         "prompt_toolkit", "pathspec", "crush_ls.backend", "crush_ls.agent", "crush_ls.storage",
                         "crush_ls.tools", "crush_ls.providers", "crush_ls.mcp", "crush_ls.permissions",
                         "crush_ls.protocol.encode", "crush_ls.chat", "crush_ls.acp"]
ANSWER_INITIALIZE = """
import asyncio, json, sys
from tests.unit.inprocess import InProcessServer

async def main():
    reply = await InProcessServer().request("initialize", {
        "capabilities": {}, "rootUri": sys.argv[1], "initializationOptions": {"model": {"provider": "scripted"}}})
    assert "result" in reply, reply
    print(json.dumps(sorted(sys.modules)))

asyncio.run(main())
"""


def test_the_initialize_answer_loads_nothing_only_a_prompt_needs(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", ANSWER_INITIALIZE, tmp_path.as_uri()], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert [name for name in NOT_BEFORE_THE_ANSWER if name in loaded] == []
