"""Module paths moved by the re-cut keep working for one release: the same objects, with a DeprecationWarning."""

import importlib
import pickle

import pytest

MOVED = [("lrpilot.bench.stats", "lrpilot.decision.stats", "power"),
         ("lrpilot.bench.decision", "lrpilot.decision.rule", "decide"),
         ("lrpilot.bench.rank", "lrpilot.decision.ranking", "rank"),
         ("lrpilot.bench.rank", "lrpilot.decision.tables", "describe"),
         ("lrpilot.present.tables", "lrpilot.decision.tables", "describe"),
         ("lrpilot.bench.runner", "lrpilot.grid.runner", "bench"),
         ("lrpilot.bench.runner", "lrpilot.grid.jobs", "Job"),
         ("lrpilot.bench.racing", "lrpilot.grid.racing", "Halving"),
         ("lrpilot.dashboard.views", "lrpilot.present.views", "Views"),
         ("lrpilot.dashboard.figures", "lrpilot.present.figures", "curves_svg"),
         ("lrpilot.dashboard.render", "lrpilot.present.render", "render"),
         ("lrpilot.report.plots", "lrpilot.present.plots", "plot_policies")]


@pytest.mark.parametrize("old, new, name", MOVED)
def test_an_old_path_warns_and_gives_the_same_object(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import {name} from {new} "):
        assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_a_name_the_old_path_never_had_is_an_attribute_error():
    with pytest.raises(AttributeError, match="lrpilot.bench.stats' has no attribute 'nope'"):
        importlib.import_module("lrpilot.bench.stats").nope


def test_an_object_pickled_under_its_old_path_loads():
    from lrpilot.grid.racing import Halving

    old = pickle.dumps(Halving(eta=4), protocol=0).replace(b"lrpilot.grid.racing", b"lrpilot.bench.racing")
    with pytest.warns(DeprecationWarning, match="lrpilot.bench.racing is deprecated"):
        assert pickle.loads(old) == Halving(eta=4)
