"""The VS Code extension (editors/vscode): one slow test that runs .ci/vscode.sh.

That script installs its toolchain once into ${CRUSH_LS_CACHE:-/var/cache/crush-ls}/vscode
(Node 24, code-server, vsce; chromium from apt), builds the extension and its
VSIX, and runs node's test runner over
  - the protocol layer against this venv's crush-ls (vscode-jsonrpc), and
  - end to end in code-server driven by playwright-core and chromium.
Warm it takes about a minute; cold about four.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from editor_wheel import local_wheel, offline_pip_env  # tests/editors is on sys.path (no __init__.py)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "vscode.sh"
CACHE = Path(os.environ.get("CRUSH_LS_CACHE", "/var/cache/crush-ls")) / "vscode"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _why_not_installable() -> str | None:
    """Outside CI, a machine that cannot install the toolchain skips with the reason."""
    if IN_CI:
        return None  # CI must run it: a missing tool there is a failure, not a skip
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "needs node and npm to build the VS Code extension"
    can_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if shutil.which("chromium") is None and not can_apt:
        return "needs Debian's chromium (apt-get install chromium) for the code-server E2E"
    probe = CACHE if CACHE.exists() else CACHE.parent if CACHE.parent.exists() else CACHE.parent.parent
    if not os.access(probe, os.W_OK):
        return f"cannot write the toolchain cache {CACHE} (set CRUSH_LS_CACHE)"
    return None


@pytest.mark.timeout(1500)  # a cold install of code-server compiles native modules
@pytest.mark.skipif(_why_not_installable() is not None, reason=_why_not_installable() or "")
def test_vscode_extension_slow_node_suite_and_code_server_e2e() -> None:
    # A short work dir: code-server puts unix sockets there (108-byte limit).
    work = Path(tempfile.mkdtemp(prefix="cvs", dir="/tmp"))
    wheel = local_wheel()  # what "Crush: Install crush-ls" installs in the E2E
    env = dict(
        os.environ,
        CRUSH_LS_COMMAND=sys.executable,
        CRUSH_LS_ARGS=json.dumps(["-m", "crush_ls"]),
        CRUSH_E2E_WORK=str(work),
        CRUSH_WHEEL=str(wheel),
        **offline_pip_env(wheel),
    )
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT)], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1400,
        )
        tail = "\n".join(proc.stdout.splitlines()[-80:])
        assert proc.returncode == 0, f".ci/vscode.sh exited {proc.returncode}:\n{tail}"
        summary = dict(re.findall(r"^ℹ (\w+) (\d+)$", proc.stdout, re.MULTILINE))
        assert summary.get("fail") == "0", f"node's test runner reported failures:\n{tail}"
        assert summary.get("skipped") == "0", f"E2E tests were skipped:\n{tail}"
        assert int(summary.get("pass", "0")) >= 16, f"too few tests ran:\n{tail}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
