"""Layers that import cleanly: the policy layer and the commands that train nothing import no torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).parents[1] / "src")


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter on this checkout's source; its stdout."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_policy_layer_imports_no_torch():
    out = _python("import sys\nfrom lrpilot.policy import policy\n"
                  "policy('COS(k0=0.1, k1=0.001, l=50)').values(range(50))\n"
                  "print('torch' in sys.modules)")
    assert out.split() == ["False"]


def test_an_unknown_name_lists_the_lazy_ones_without_importing_them():
    out = _python("import sys\nfrom lrpilot.policy.base import lookup\nfrom lrpilot.errors import LRPilotError\n"
                  "try:\n    lookup('nope')\nexcept LRPilotError as e:\n    print(e)\n"
                  "print('torch' in sys.modules)")
    message, imported = out.strip().splitlines()
    assert all(name in message for name in ("FIX", "warmup", "autodrop", "factor", "stpt", "alr"))
    assert imported == "False"


def test_policy_scheduler_is_imported_on_first_use():
    out = _python("import sys, lrpilot\nprint('torch' in sys.modules)\n"
                  "print(lrpilot.PolicyScheduler.__module__, 'torch' in sys.modules)")
    assert out.split() == ["False", "lrpilot.controllers.scheduler", "True"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store holding one finished bench run of digits-lenet (written here, without training)."""
    from lrpilot.records import RunResult
    from lrpilot.store import Store

    path = tmp_path_factory.mktemp("store") / "results.db"
    with Store(path) as store:
        run = store.claim("digits-lenet", "FIX(k0=0.05)", 0, 645)
        store.finish(run, RunResult("digits-lenet", "FIX(k0=0.05)", 0, "ok", {"top1": 97.0, "ac": 0.9, "cd": 0.1,
                                    "cdac": 0.1, "ld": 0.01, "iters_at_best": 600, "n_param": 1},
                                    {"iterations": 645, "wall_s": 1.0}, {}))
    return path


@pytest.mark.parametrize("argv", [["--version"], ["policies"], ["rank", "--task", "digits-lenet"],
                                  ["report", "--task", "digits-lenet"], ["recommend", "--task", "digits-lenet"]])
def test_commands_that_train_nothing_import_no_torch(tmp_path, stored, argv):
    if argv[0] in ("rank", "report", "recommend"):
        argv = [*argv, "--db", str(stored)]
    if argv[0] == "report":
        argv = [*argv, "-o", str(tmp_path / "report.html")]
    out = _python("import contextlib, io, json, sys\nfrom lrpilot.cli import main\n"
                  f"with contextlib.redirect_stdout(io.StringIO()) as text:\n    rc = main({argv!r})\n"
                  "print(json.dumps([rc, 'torch' in sys.modules, text.getvalue()]))")
    rc, torch_imported, text = json.loads(out)
    assert rc == 0 and not torch_imported and text


def test_controllers_built_from_text_import_no_torch_until_they_start():
    out = _python("import sys\nfrom lrpilot.controllers.base import make_controller\n"
                  "for text in ('autodrop(k0=0.1, rho=0.2)', 'factor(k0=0.005, factors=5)', 'COS(k0=0.1, k1=0, l=9)'):\n"
                  "    print(make_controller(text))\n"
                  "print('torch' in sys.modules)")
    assert out.splitlines() == ["autodrop(k0=0.1, rho=0.2, saturation=relative, guard=1.1)",
                                "factor(k0=0.005, probe=lookahead, factors=5, guard=1.1)", "COS(k0=0.1, k1=0, l=9)", "False"]


def test_policies_lists_the_lazily_registered_controllers_and_searches():
    out = _python("import contextlib, io, json\nfrom lrpilot.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()) as text:\n    main(['policies', '--json'])\n"
                  "print(text.getvalue())")
    kinds = {r["name"]: r["kind"] for r in json.loads(out)}
    assert {n: kinds[n] for n in ("autodrop", "factor", "stpt", "alr")} == {
        "autodrop": "controller", "factor": "controller", "stpt": "search", "alr": "search"}


def test_the_decision_package_imports_neither_torch_nor_the_store_nor_scipy():
    """Nor scipy, which takes longer to import than a whole ``lrpilot rank`` (only a p within 1e-8 of alpha and
    the power of the words need it, on their call)."""
    out = _python("import sys\nimport lrpilot.decision.ranking, lrpilot.decision.rule, lrpilot.decision.stats\n"
                  "import lrpilot.decision.tables\n"
                  "print(*(any(m == n or m.startswith(n + '.') for m in sys.modules) for n in\n"
                  "        ('torch', 'sqlalchemy', 'scipy', 'lrpilot.store', 'lrpilot.grid', 'lrpilot.present')))")
    assert out.split() == ["False"] * 6


LAYERS = ("policy", "controllers", "search", "decision", "grid", "bench", "present")  # docs/architecture.md


def _lrpilot_imports(path: Path) -> list[tuple[int, str]]:
    """Every ``lrpilot.<part>`` a module imports, at its top or inside a function: (line, part)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else
                 [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("lrpilot.")]
    return found


def test_no_layer_imports_one_above_it_and_the_fronts_import_nothing_of_each_other():
    """The layers' one-way flow (docs/architecture.md), lazy imports included; the old paths' shims name their
    new modules as text, not as imports."""
    src = Path(__file__).resolve().parents[1] / "src" / "lrpilot"
    upward = [f"{path.relative_to(src)}:{line} imports lrpilot.{part}"
              for i, layer in enumerate(LAYERS) for path in sorted((src / layer).rglob("*.py"))
              for line, part in _lrpilot_imports(path) if part in LAYERS[i + 1:]]
    across = [f"{path.relative_to(src)}:{line} imports lrpilot.{part}"
              for front, other in (("dashboard", "report"), ("report", "dashboard"))
              for path in sorted((src / front).rglob("*.py")) for line, part in _lrpilot_imports(path) if part == other]
    assert upward == [] and across == []
