"""Task references: plain data that travels to workers, built once per process; the meta a task declares."""

import pytest
import torch

from lrpilot.store.meta import task_row
from lrpilot.tasks import ClassificationTask, TaskRef, get_task

from tests.pickling import pickled_copy

COUNTED = '''
import torch
from lrpilot.tasks import ClassificationTask

BUILT = []

class TinyNet(torch.nn.Linear):
    def __init__(self):
        super().__init__(3, 2)

def make(data_dir=None):
    BUILT.append(data_dir)
    split = (torch.randn(8, 3), torch.arange(8) % 2)
    return ClassificationTask("counted-task", split, split, TinyNet, 2, batch_size=4)
'''


@pytest.fixture
def counted(tmp_path, monkeypatch):
    (tmp_path / "counted_tasks.py").write_text(COUNTED)
    monkeypatch.syspath_prepend(str(tmp_path))
    import counted_tasks

    yield counted_tasks


def test_a_task_ref_is_built_once_per_process(counted):
    ref = TaskRef("counted_tasks:make", "/data")
    task = ref.build()
    assert TaskRef("counted_tasks:make", "/data").build() is task and counted.BUILT == ["/data"]
    assert pickled_copy(ref) == ref and pickled_copy(ref).build() is task
    assert TaskRef("counted_tasks:make").build() is not task and counted.BUILT == ["/data", None]


def test_of_takes_a_name_or_a_reference():
    ref = TaskRef("digits-mlp", "/d")
    assert TaskRef.of(ref) is ref and TaskRef.of("digits-mlp", "/d") == ref and TaskRef.of("nqm").data_dir is None


@pytest.mark.parametrize("name, dataset, model", [
    ("digits-lenet", "digits", "lenet"), ("digits-mlp", "digits", "mlp"), ("mnist1d-mlp", "mnist1d", "mlp"),
    ("mnist1d-cnn", "mnist1d", "cnn"), ("nqm", "nqm", "quadratic-200"),
])
def test_built_in_tasks_declare_their_data_set_and_model(name, dataset, model):
    meta = get_task(name).meta
    assert (meta["dataset"], meta["model"]) == (dataset, model)


@pytest.mark.parametrize("name, dataset, model", [
    ("mnist-lenet", "mnist", "lenet"), ("cifar10-cnn3", "cifar10", "cnn3"),
    ("cifar10-resnet20", "cifar10", "resnet20"), ("cifar10-resnet32", "cifar10", "resnet32"),
])
def test_tasks_on_data_folders_declare_theirs(name, dataset, model, mnist_dir, cifar_dir):
    meta = get_task(name, data_dir=str(mnist_dir if name.startswith("mnist") else cifar_dir)).meta
    assert (meta["dataset"], meta["model"]) == (dataset, model)


def test_a_users_task_defaults_to_its_name_and_model_class(counted):
    row = task_row(TaskRef("counted_tasks:make").build())
    assert (row["dataset"], row["model"], row["num_classes"], row["input_shape"]) == ("counted-task", "TinyNet", 2, [3])
    split = (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    lam = ClassificationTask("a-b", split, split, lambda: torch.nn.Linear(3, 2), 2)
    assert lam.meta["dataset"] == "a-b" and lam.meta["model"] is None  # no name to take from a lambda
    given = ClassificationTask("a-b", split, split, counted.TinyNet, 2, meta={"dataset": "ab", "model": "tiny"})
    assert (given.meta["dataset"], given.meta["model"]) == ("ab", "tiny")
