"""A model without tools is told what the workspace holds (agent/prompt.py), the embedded one included."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from crush_ls.agent.prompt import LISTING_MAX_ENTRIES, workspace_listing
from crush_ls.providers.history import conversation
from tests.providers import fake_openai as openai


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(folder), "PATH": "/usr/bin:/bin"})


def test_the_listing_names_the_top_level_entries_and_git_status(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "deep.py").write_text("")
    (tmp_path / "README.md").write_text("hi\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "README.md")
    git(tmp_path, "commit", "-qm", "first")
    (tmp_path / "README.md").write_text("changed\n")
    listing = workspace_listing(tmp_path)
    assert listing.splitlines() == [
        "<workspace>", f"Top-level entries of {tmp_path} (2):", "- README.md", "- src/",
        "These are all of them: never name others.", "git status --short:", " M README.md", "?? src/", "</workspace>"]


def test_the_listing_is_bounded_and_says_when_it_is_not_a_repository(tmp_path: Path) -> None:
    for n in range(LISTING_MAX_ENTRIES + 5):
        (tmp_path / f"f{n:03}.txt").write_text("")
    listing = workspace_listing(tmp_path).splitlines()
    assert listing[1] == f"Top-level entries of {tmp_path} ({LISTING_MAX_ENTRIES + 5}):"
    assert len(listing) == 2 + LISTING_MAX_ENTRIES + 2 and listing[-2] == "(and 5 more)"
    assert not any("git" in line for line in listing)


async def test_a_model_without_tools_gets_the_listing_in_its_system_prompt(start, workspace):
    (workspace / "main.go").write_text("package main\n")
    (workspace / "docs").mkdir()
    with openai.FakeOpenAI([openai.text_stream("Two."), openai.text_stream("Three.")]) as server:
        client = await start({"model": {"provider": "openai", "model": "gpt-test", "baseUrl": server.base_url,
                                        "apiKey": "sk-test", "supportsTools": False}})
        session = await client.new_session()
        await client.completed((await client.send(session, "what files are here?"))["runId"])
        (workspace / "new.txt").write_text("")  # the next prompt sees the folder as it is then
        await client.completed((await client.send(session, "and now?"))["runId"])
    first, second = (server.system_text(body) for body in server.requests)
    assert "You cannot call tools." in first and "tools" not in server.requests[0]
    assert (f"<workspace>\nTop-level entries of {workspace} (2):\n- docs/\n- main.go\n"
            "These are all of them: never name others.\n</workspace>") in first
    assert "new.txt" in second and "new.txt" not in first


def test_the_embedded_model_reads_the_context_items_of_a_prompt() -> None:
    pytest.importorskip("llama_cpp")
    from crush_ls.providers.base import ModelCall
    from crush_ls.providers.local import chat_messages

    parts = [{"type": "text", "text": "fix it"},
             {"type": "context", "uri": "file:///w/a.py", "path": "a.py", "kind": "file", "text": "a = 1\n"}]
    call = ModelCall(system="s", messages=[{"role": "user", "parts": parts}], tools=[], prompt="fix it", step=0)
    assert chat_messages(call) == [{"role": "user", "content":
                                    "fix it\n<editor_context>\n<file path='a.py'>\na = 1\n</file>\n</editor_context>"}]
    assert len(conversation([{"role": "user", "parts": parts}])[0].parts) == 2  # type: ignore[union-attr]


async def test_a_long_system_prompt_keeps_the_listing_in_the_embedded_models_window() -> None:
    pytest.importorskip("llama_cpp")
    from crush_ls.providers import create_provider
    from crush_ls.providers.local import SHORT_SYSTEM, LocalProvider, fit_to_window
    from crush_ls.settings import ModelConfig

    provider = create_provider(ModelConfig(provider="local"), Path.cwd())
    assert isinstance(provider, LocalProvider)
    model = await provider.model()
    system = "Project rules: always be nice. " * 400 + "\n<workspace>\nTop-level entries of /w (1):\ngo.mod\n</workspace>"
    tokens = fit_to_window(model, system, [{"role": "user", "content": "what files are here?"}], reserve=256)
    prompt = model.llama.detokenize(tokens, special=True).decode()
    assert SHORT_SYSTEM in prompt and "go.mod" in prompt and "Project rules" not in prompt
