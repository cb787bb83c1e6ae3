"""A wheel of this checkout for the editors' installers (`pip wheel --no-deps`), cached by content.

The editors install crush-ls into a fresh virtual environment; a wheel makes
that testable offline. The key is a hash of what goes into the wheel, so an
edit to crush_ls/ builds a new one and an unchanged tree reuses the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CRUSH_LS_CACHE", "/var/cache/crush-ls")) / "wheels"
SOURCES = ("pyproject.toml", "README.md")


def _files() -> list[Path]:
    package = sorted(p for p in (ROOT / "crush_ls").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [ROOT / name for name in SOURCES] + package


def _key(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def local_wheel() -> Path:
    """The path of crush_ls-*.whl built from this checkout (a copy of it: the checkout stays clean)."""
    files = _files()
    target = CACHE / _key(files)
    wheels = sorted(target.glob("crush_ls-*.whl"))
    if wheels:
        return wheels[0]
    with tempfile.TemporaryDirectory(prefix="crush-wheel-") as tmp:
        copy = Path(tmp) / "src"
        for path in files:
            (copy / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy / path.relative_to(ROOT))
        built = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(built), str(copy)],
                       check=True, stdin=subprocess.DEVNULL, timeout=600)
        target.mkdir(parents=True, exist_ok=True)
        [wheel] = built.glob("crush_ls-*.whl")
        shutil.copy2(wheel, target / wheel.name)
    return target / wheel.name


def offline_pip_env(wheel: Path) -> dict[str, str]:
    """pip settings for an editor's installer: crush-ls's dependencies from a cached wheelhouse, no index.

    Resolving against the machine's package indexes takes most of an install's
    time; the editors' installers are what is tested, not the indexes.
    """
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    house = CACHE / ("deps-" + hashlib.sha256(pyproject).hexdigest()[:16])
    if not (house / ".complete").exists():
        shutil.rmtree(house, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(house), str(wheel)],
                       check=True, stdin=subprocess.DEVNULL, timeout=900)
        for built in house.glob("crush_ls-*.whl"):
            built.unlink()
        (house / ".complete").touch()
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": f"{house} {wheel.parent}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
