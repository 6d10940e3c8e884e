"""`pip install lrpilot` into a project that already has another torch (inside lrpilot's range) keeps that torch.

A real torch wheel other than the one on this disk is gigabytes, so the project's torch is a stand-in: a
wheel named ``torch`` at version :data:`OTHER_TORCH` holding only its metadata and a ``torch/__init__.py``.
pip sees an installed distribution ``torch 2.6.0``, as it would a real one. lrpilot's other dependencies
come from the package index (pip's cache after the first run).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OTHER_TORCH = "2.6.0"


def stand_in_torch(folder: Path, version: str) -> Path:
    """A metadata-only wheel ``torch-<version>-py3-none-any.whl`` in ``folder``."""
    info = f"torch-{version}.dist-info"
    files = {
        "torch/__init__.py": f'__version__ = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: lrpilot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(text)},{len(text.encode())}" for name, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def _source_copy(folder: Path) -> Path:
    """The files pip builds lrpilot from, copied (a build in the checkout would leave build/ and egg-info)."""
    dest = folder / "lrpilot-src"
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def _run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="the venv's layout below is POSIX's")
def test_install_keeps_the_projects_torch(tmp_path):
    venv.create(tmp_path / "env", with_pip=True)
    py = tmp_path / "env" / "bin" / "python"
    pip = (py, "-m", "pip", "install", "-q", "--disable-pip-version-check")
    _run(*pip, "--no-index", stand_in_torch(tmp_path, OTHER_TORCH))
    report = tmp_path / "report.json"
    _run(*pip, "--report", report, _source_copy(tmp_path))

    installed = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "lrpilot" in installed and "numpy" in installed
    assert "torch" not in installed
    check = "import importlib.metadata as m, lrpilot; print(m.version('torch'), lrpilot.__version__ == m.version('lrpilot'))"
    assert _run(py, "-c", check).split() == [OTHER_TORCH, "True"]
