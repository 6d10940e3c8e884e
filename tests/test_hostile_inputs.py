"""Hostile inputs over every subcommand: each is refused as ONE stderr line that names the bad value, exit status 2,
no traceback, and nothing written (not even the SQLite store file); an internal bug is one line and exit status 1.

The CLI runs in-process (``lrpilot.cli.main``): the cases are tables over the subcommands and their flags (numbers,
devices, output paths, policy texts, policy files and user tasks the tests write) plus hypothesis strategies.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrpilot.cli as cli
from lrpilot.cli import main
from lrpilot.errors import LRPilotError
from lrpilot.policy import policy

TASK = "digits-mlp"


def _listing(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def here(tmp_path, monkeypatch):
    """The test's folder: the working directory and the default store (LRPILOT_DB) are in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRPILOT_DB", str(tmp_path / "results.db"))
    monkeypatch.delenv("LRPILOT_DEBUG", raising=False)
    return tmp_path


def refused(argv, fragments, capsys, folder, status=2, out: list | None = None) -> str:
    """Run ``argv``: exit ``status``, one stderr line naming each fragment, no traceback, no new file (``out``
    gets what it printed on stdout)."""
    before = _listing(folder)
    assert main(argv) == status
    captured = capsys.readouterr()
    err = captured.err
    if out is not None:
        out.append(captured.out)
    assert err.count("\n") == 1 and err.endswith("\n"), err[:2000]
    assert "Traceback" not in err
    assert err.startswith(f"lrpilot {argv[0]}: "), err
    for fragment in ([fragments] if isinstance(fragments, str) else fragments):
        assert fragment in err, err[:2000]
    assert len(err) < 1500, err[:300]  # echoed input is capped
    assert _listing(folder) == before
    return err


# --- numbers ------------------------------------------------------------------------------------------------------

BASE = {
    "plot": ["plot", "FIX(k0=0.1)"],
    "train": ["train", "--task", TASK],
    "bench": ["bench", "--task", TASK, "--policies", "FIX(k0=0.1)"],
    "rank": ["rank", "--task", TASK],
    "range-test": ["range-test", "--task", TASK],
    "recommend": ["recommend", "--task", TASK],
    "report": ["report", "--task", TASK],
    "tune": ["tune", "--task", TASK],
}

WHOLE_FLAGS = [("plot", "--steps"), ("train", "--steps"), ("train", "--eval-every"), ("train", "--workers"),
               ("bench", "--repeats"), ("bench", "--steps"), ("bench", "--eval-every"), ("bench", "--workers"),
               ("rank", "--top"), ("range-test", "--repeats"), ("range-test", "--steps"),
               ("range-test", "--sweep-steps"), ("range-test", "--workers"), ("recommend", "--top"),
               ("recommend", "--workers"), ("report", "--top"), ("tune", "--repeats"), ("tune", "--workers")]
WHOLE_BAD = ["0", "-1", "1e20", "100000000000000000000", "18446744073709551616", "inf", "nan", "abc", "", "1.5",
             "9" * 5000]
REAL_FLAGS = [("train", "--epochs"), ("train", "--diverge-factor"), ("bench", "--epochs"), ("range-test", "--epochs"),
              ("range-test", "--start"), ("range-test", "--lr-min"), ("range-test", "--lr-max"),
              ("range-test", "--tolerance"), ("tune", "--budget")]
REAL_BAD = ["inf", "-inf", "nan", "abc", "", "-1", "1e999", "9" * 5000]
CAPPED = [("train", "--epochs"), ("bench", "--epochs"), ("range-test", "--epochs"), ("range-test", "--start"),
          ("range-test", "--lr-min"), ("range-test", "--lr-max"), ("tune", "--budget")]


def _named(value: str) -> str:
    """What of ``value`` the error line shows: all of a short plain value, the start of a long one."""
    return value[:40]


@pytest.mark.parametrize("command, flag", WHOLE_FLAGS)
@pytest.mark.parametrize("value", WHOLE_BAD, ids=lambda v: v[:12] or "empty")
def test_whole_number_flags_refuse_bad_values(command, flag, value, here, capsys):
    refused([*BASE[command], f"{flag}={value}"], [flag, _named(value)], capsys, here)


@pytest.mark.parametrize("command, flag", REAL_FLAGS)
@pytest.mark.parametrize("value", REAL_BAD, ids=lambda v: v[:12] or "empty")
def test_real_number_flags_refuse_bad_values(command, flag, value, here, capsys):
    if flag == "--tolerance" and value == "0":
        pytest.skip("a tolerance of 0 is allowed")
    refused([*BASE[command], f"{flag}={value}"], [flag, _named(value)], capsys, here)


@pytest.mark.parametrize("command, flag", CAPPED)
@pytest.mark.parametrize("value", ["1e308", "0", "1e7"])
def test_budgets_and_rates_are_capped(command, flag, value, here, capsys):
    refused([*BASE[command], f"{flag}={value}"], [flag, value], capsys, here)


@pytest.mark.parametrize("value", ["-1", "18446744073709551616", "9223372036854775808", "1e30", "x", "", "0.5"])
def test_seeds_fit_int64_and_torch(value, here, capsys):
    refused([*BASE["train"], f"--seed={value}"], ["--seed", value], capsys, here)


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63, max_value=10**60)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_out_of_range_seed_is_refused(here, capsys, seed):
    refused([*BASE["train"], f"--seed={seed}"], ["--seed", str(seed)[:40]], capsys, here)


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=2**63, max_value=10**60),
                 st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer()
                                                                       or x <= 0 or x >= 2**63)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_bad_step_count_is_refused(here, capsys, steps):
    refused([*BASE["bench"], f"--steps={steps}"], ["--steps"], capsys, here)


# --- devices ------------------------------------------------------------------------------------------------------

def _devices() -> list[str]:
    import torch

    bad = ["", " ", "bogus", "meta", "xla", "cpu:x", "cuda:99", "CUDA!"]
    if not torch.cuda.is_available():
        bad.append("cuda")
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        bad.append("mps")
    return bad


@pytest.mark.parametrize("command", ["train", "bench"])
@pytest.mark.parametrize("device", _devices(), ids=lambda v: v.strip() or "empty")
def test_devices_this_torch_lacks_are_refused_before_any_work(command, device, here, capsys):
    err = refused([*BASE[command], f"--device={device}"], ["--device"], capsys, here)
    if device.strip():
        assert device in err
    if device == "cuda":
        assert "CUDA" in err


# --- output paths -------------------------------------------------------------------------------------------------

@pytest.fixture
def blockers(tmp_path_factory):
    """A folder outside the test's: a plain file, a folder, and a read-only folder."""
    root = tmp_path_factory.mktemp("blockers")
    (root / "afile").write_text("x")
    (root / "adir").mkdir()
    (root / "adir" / "checkpoint.pt").mkdir()
    (root / "empty").mkdir()
    ro = root / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    yield root
    ro.chmod(0o755)


OUTPUTS = [  # (argv before the path, suffix the path needs)
    (["plot", "FIX(k0=0.1)", "-o"], ".png"),
    (["report", "--task", TASK, "-o"], ".html"),
    (["tune", "--task", TASK, "-o"], ".md"),
    (["train", "--task", TASK, "--steps", "2", "--json"], ".json"),
    (["rank", "--task", TASK, "--csv"], ".csv"),
]


def _bad_paths(root, suffix):
    long = "n" * 300 + suffix
    return {
        "parent-is-a-file": (str(root / "afile" / f"x{suffix}"), "afile"),
        "deep-under-a-file": (str(root / "afile" / "a" / "b" / f"x{suffix}"), "afile"),
        "a-directory": (str(root / "adir"), "adir"),
        "name-too-long": (str(root / long), "longer than the file system allows"),
        "folder-name-too-long": (str(root / ("d" * 300) / f"x{suffix}"), "longer than the file system allows"),
        "nul-byte": (f"x\0y{suffix}", "name"),
        "empty": ("", "''"),
    }


@pytest.mark.parametrize("prefix, suffix", OUTPUTS, ids=lambda v: v[0] if isinstance(v, list) else v)
@pytest.mark.parametrize("kind", list(_bad_paths(__import__("pathlib").Path("/r"), ".x")))
def test_output_paths_are_checked_before_any_work(prefix, suffix, kind, blockers, here, capsys):
    path, fragment = _bad_paths(blockers, suffix)[kind]
    refused([*prefix, path], fragment, capsys, here)


@pytest.mark.parametrize("prefix, suffix", OUTPUTS, ids=lambda v: v[0] if isinstance(v, list) else v)
def test_a_read_only_folder_is_refused(prefix, suffix, blockers, here, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    refused([*prefix, str(blockers / "readonly" / f"x{suffix}")], "permission denied", capsys, here)


@pytest.mark.parametrize("prefix, suffix", OUTPUTS, ids=lambda v: v[0] if isinstance(v, list) else v)
def test_an_unwritable_folder_is_refused_even_as_root(prefix, suffix, blockers, here, capsys, monkeypatch):
    target = str(blockers / "readonly")
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda p, mode: False if str(p) == target else real(p, mode))
    refused([*prefix, f"{target}/x{suffix}"], ["permission denied", "readonly"], capsys, here)


@pytest.mark.parametrize("prefix, name", [(["plot", "FIX(k0=0.1)", "-o"], "policies.txt"),
                                          (["plot", "FIX(k0=0.1)", "-o"], "noext"),
                                          (["report", "--task", TASK, "-o"], "report.txt"),
                                          (["report", "--task", TASK, "-o"], "report.htm"),
                                          (["tune", "--task", TASK, "-o"], "report.txt"),
                                          (["tune", "--task", TASK, "-o"], "report.pdf")])
def test_output_suffixes_are_checked_before_any_work(prefix, name, here, capsys):
    refused([*prefix, name], name, capsys, here)


@pytest.mark.parametrize("kind", ["a-file", "under-a-file", "name-too-long"])
def test_checkpoint_folders_are_checked(kind, blockers, here, capsys):
    path, fragment = {"a-file": (str(blockers / "afile"), "afile"),
                      "under-a-file": (str(blockers / "afile" / "ck"), "afile"),
                      "name-too-long": (str(blockers / ("c" * 300)), "longer than")}[kind]
    refused([*BASE["train"], "--steps", "2", "--checkpoint", path], fragment, capsys, here)


@pytest.mark.parametrize("kind", ["missing-folder", "no-checkpoint-file", "checkpoint-is-a-folder", "no-dir-flag"])
def test_resume_refuses_instead_of_starting_afresh(kind, blockers, here, capsys):
    folder, fragment = {"missing-folder": (str(blockers / "gone"), "gone"),
                        "no-checkpoint-file": (str(blockers / "empty"), "checkpoint.pt"),
                        "checkpoint-is-a-folder": (str(blockers / "adir"), "checkpoint.pt"),
                        "no-dir-flag": (None, "--checkpoint")}[kind]
    argv = [*BASE["train"], "--steps", "2", "--resume"] + ([] if folder is None else ["--checkpoint", folder])
    refused(argv, fragment, capsys, here)


# --- policy texts -------------------------------------------------------------------------------------------------

TEXTS = {
    "int-400-digits": ("FIX(k0=" + "9" * 400 + ")", "400 digits"),
    "int-5000-digits": ("FIX(k0=" + "9" * 5000 + ")", "5000 digits"),
    "nested-3000": ("clamp(" * 3000 + "FIX(k0=0.1)" + ", min=0.001)" * 3000, "too long"),
    "nested-60": ("clamp(" * 60 + "FIX(k0=0.1)" + ", min=0.001)" * 60, "nested more than 50"),
    "lists-60": ("NSTEP(k0=0.1, gamma=0.1, l=" + "[" * 60 + "1" + "]" * 60 + ")", "nested more than 50"),
    "20k-chars": ("FIX(k0=0.1" + " " * 20000 + ")", "too long"),
    "5MB": ("x" * 5_000_000, "too long"),
    "huge-exponent": ("FIX(k0=1e999)", "k0=inf"),
    "long-exponent": ("FIX(k0=1e" + "9" * 50 + ")", "too long"),
    "unclosed": ("FIX(k0=0.1", "FIX(k0=0.1"),
    "garbage": ("§§§", "§§§"),
    "nan": ("FIX(k0=nan)", "k0=nan"),
    "unknown": ("NOPE(k0=1)", "NOPE"),
    "empty": (" ", "empty policy"),
}


@pytest.mark.parametrize("command", ["plot", "train", "bench"])
@pytest.mark.parametrize("case", list(TEXTS))
def test_hostile_policy_texts_are_one_line(command, case, here, capsys):
    text, fragment = TEXTS[case]
    argv = {"plot": ["plot", text], "train": [*BASE["train"], "--steps", "2", "--policy", text],
            "bench": ["bench", "--task", TASK, "--steps", "2", "--policies", text]}[command]
    refused(argv, fragment, capsys, here)


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None)
def test_any_text_parses_or_is_one_capped_error(text):
    try:
        policy(text)
    except LRPilotError as e:
        message = str(e)
        assert "\n" not in message.strip() and len(message) < 1200


# --- policy files -------------------------------------------------------------------------------------------------

POLICY_FILES = {
    "latin-1": ("- FIX(k0=0.1) # caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "deep-yaml": (b"[" * 5000 + b"]" * 5000, "deep"),
    "deep-maps": (b"{a: " * 300 + b"1" + b"}" * 300, "deep"),
    "not-a-list": (b"policies: 3\n", "non-empty list"),
    "empty": (b"", "non-empty list"),
    "numbers": (b"[1, 2]\n", "non-empty list"),
    "bad-yaml": (b"[unclosed\n", "not valid YAML"),
    "bad-policy": (b"- FIX(k0=" + b"9" * 400 + b")\n", "400 digits"),
    "huge": (b"- FIX(k0=0.1)\n" * 100_000, "at most 1 MB"),
}


@pytest.mark.parametrize("case", list(POLICY_FILES))
def test_hostile_policy_files_are_one_line(case, tmp_path_factory, here, capsys):
    data, fragment = POLICY_FILES[case]
    path = tmp_path_factory.mktemp("pf") / f"{case}.yaml"
    path.write_bytes(data)
    refused(["bench", "--task", TASK, "--steps", "2", "--policy-file", str(path)], fragment, capsys, here)


@pytest.mark.parametrize("kind", ["missing", "a-folder"])
def test_policy_file_that_cannot_be_read(kind, blockers, here, capsys):
    path = str(blockers / ("nope.yaml" if kind == "missing" else "adir"))
    refused(["bench", "--task", TASK, "--policy-file", path], ["--policy-file", path], capsys, here)


# --- user tasks ---------------------------------------------------------------------------------------------------

_GOOD = """
import torch
from torch import nn
from lrpilot.tasks import ClassificationTask

def split(n, label=0, dim=4):
    return torch.zeros(n, dim), torch.full((n,), label, dtype=torch.int64)

def task(**kw):
    args = dict(name="mine", train=split(8), test=split(4), make_model_fn=lambda: nn.Linear(4, 3), num_classes=3)
    args.update(kw)
    return ClassificationTask(**args)
"""

USER_MODULES = {
    "hostile_raises": (_GOOD + "\ndef make():\n    raise ValueError('boom')\n", "make",
                       "your task `hostile_raises:make` raised ValueError: boom"),
    "hostile_import_raises": ("raise RuntimeError('import boom')\ndef make():\n    pass\n", "make",
                              "RuntimeError: import boom"),
    "hostile_syntax": ("def make(:\n    pass\n", "make", "SyntaxError"),
    "hostile_needs_args": (_GOOD + "\ndef make(width, depth):\n    return task()\n", "make", "width, depth"),
    "hostile_empty_train": (_GOOD + "\ndef make():\n    return task(train=split(0))\n", "make",
                            "train split is empty"),
    "hostile_empty_test": (_GOOD + "\ndef make():\n    return task(test=split(0))\n", "make", "test split is empty"),
    "hostile_label_high": (_GOOD + "\ndef make():\n    return task(train=split(8, label=3))\n", "make", "label 3"),
    "hostile_label_negative": (_GOOD + "\ndef make():\n    return task(test=split(4, label=-1))\n", "make",
                               "label -1"),
    "hostile_batch_zero": (_GOOD + "\ndef make():\n    return task(batch_size=0)\n", "make", "batch_size=0"),
    "hostile_float_labels": (_GOOD + "\ndef make():\n    return task(train=(torch.zeros(8, 4), torch.zeros(8)))\n",
                             "make", "labels are torch.float32"),
    "hostile_lengths": (_GOOD + "\ndef make():\n    return task(train=(torch.zeros(8, 4), torch.zeros(5, "
                        "dtype=torch.int64)))\n", "make", "(8, 4)"),
    "hostile_classes_zero": (_GOOD + "\ndef make():\n    return task(num_classes=0)\n", "make", "num_classes=0"),
    "hostile_not_a_task": ("def make():\n    return 42\n", "make", "returned int"),
    "hostile_exits": ("import sys\ndef make():\n    sys.exit(0)\n", "make", "is broken: it called sys.exit(0)"),
    "hostile_import_exits": ("import sys\nsys.exit(3)\ndef make():\n    pass\n", "make",
                             "is broken: it called sys.exit(3)"),
    "hostile_nan_input": (_GOOD + "\ndef make():\n    x, y = split(8)\n    x[5, 1] = float('nan')\n"
                          "    return task(train=(x, y))\n", "make", "example 5 has a non-finite input"),
    "hostile_not_callable": ("make = 3\n", "make", "no function 'make'"),
    "hostile_missing_fn": ("x = 1\n", "make", "no function 'make'"),
}
OTHER_NAMES = {
    "relative": (".hostile_raises:make", "relative module name"),
    "missing-module": ("hostile_no_such_module:make", "cannot import module"),
    "no-function": ("hostile_raises:", "package.module:function"),
    "two-colons": ("a:b:c", "package.module:function"),
    "bad-name": ("a b:c", "package.module:function"),
    "unknown-builtin": ("no-such-task", "unknown task"),
}


@pytest.fixture(scope="module")
def task_modules(tmp_path_factory):
    root = tmp_path_factory.mktemp("usertasks")
    for module, (source, _, _) in USER_MODULES.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for module in USER_MODULES:
        sys.modules.pop(module, None)


TASK_COMMANDS = {
    "train": lambda t: ["train", "--task", t, "--steps", "2"],
    "bench": lambda t: ["bench", "--task", t, "--steps", "2", "--policies", "FIX(k0=0.1)"],
    "range-test": lambda t: ["range-test", "--task", t, "--steps", "2"],
    "recommend": lambda t: ["recommend", "--task", t],
    "tune": lambda t: ["tune", "--task", t],
}


@pytest.mark.parametrize("command", list(TASK_COMMANDS))
@pytest.mark.parametrize("module", list(USER_MODULES))
def test_broken_user_tasks_are_one_line_before_the_store(command, module, task_modules, here, capsys):
    _, fn, fragment = USER_MODULES[module]
    name = f"{module}:{fn}"
    refused(TASK_COMMANDS[command](name), [name.split(":")[0], fragment], capsys, here)


@pytest.mark.parametrize("command", list(TASK_COMMANDS))
@pytest.mark.parametrize("case", list(OTHER_NAMES))
def test_bad_task_names_are_one_line(command, case, task_modules, here, capsys):
    name, fragment = OTHER_NAMES[case]
    refused(TASK_COMMANDS[command](name), fragment, capsys, here)


def test_debug_shows_the_user_tasks_traceback(task_modules, here, capsys):
    assert main(["train", "--task", "hostile_raises:make", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "raise ValueError('boom')" in err
    assert err.strip().splitlines()[-1].startswith("lrpilot train: error: your task `hostile_raises:make` raised")


# --- the last resort: an internal error is a bug, said in one line ---------------------------------------------------

def _boom(*_args, **_kwargs):
    raise RuntimeError("kaboom " + "x" * 1000)


@pytest.mark.parametrize("argv", [["tasks"], ["tasks", "--json"], ["policies"], ["policies", "--json"]])
def test_an_internal_error_is_one_line_exit_1(argv, here, capsys, monkeypatch):
    import lrpilot.policy  # noqa: F401
    import lrpilot.tasks  # noqa: F401

    monkeypatch.setattr(sys.modules["lrpilot.tasks"], "list_tasks", _boom)
    monkeypatch.setattr(sys.modules["lrpilot.policy"], "entries", _boom)
    err = refused(argv, ["bug in lrpilot", "RuntimeError: kaboom", "--debug"], capsys, here, status=1)
    assert len(err) < 400


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_of_an_internal_error(how, here, capsys, monkeypatch):
    import lrpilot.tasks  # noqa: F401

    monkeypatch.setattr(sys.modules["lrpilot.tasks"], "list_tasks", _boom)
    if how == "env":
        monkeypatch.setenv("LRPILOT_DEBUG", "1")
    assert main(["tasks", "--debug"] if how == "flag" else ["tasks"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "_boom" in err and "bug in lrpilot" in err


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_takes_debug(command):
    action = {a.dest for a in cli.build_parser()._subparsers._group_actions[0].choices[command]._actions}
    assert "debug" in action


def test_a_user_error_stays_one_line_exit_2_with_the_usage_hint(here, capsys):
    refused(["plot", "FIX(k0=0.1)", "--steps", "0"], "--steps 0", capsys, here)


# --- full, read-only and over-quota file systems: one user error, nothing partial, no finished result lost ----------

def _mount(folder, options: str) -> None:
    """Mount a real tmpfs on ``folder`` with ``options``, or skip saying why this machine cannot."""
    import subprocess

    folder.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs with {options} here ({r.stderr.strip()[:120] or 'not root'}); the "
                    "file-system checks need one")


def _unmount(folder) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def full_disk(tmp_path_factory):
    """A real 64 KiB tmpfs, filled to the last byte by one file."""
    root = tmp_path_factory.mktemp("disk") / "full"
    _mount(root, "size=64k")
    (root / "filler").write_bytes(b"\0" * 65536)  # tmpfs rounds to pages: 64 KiB is all of it
    yield root
    _unmount(root)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store holding one short bench run of TASK (for report and rank)."""
    from lrpilot.grid.runner import bench
    from lrpilot.execution.executors import InProcess
    from lrpilot.store import Store

    path = tmp_path_factory.mktemp("stored") / "runs.db"
    with Store(str(path)) as store:
        bench(store, TASK, ["FIX(k0=0.1)"], steps=20, executor=InProcess())
    return str(path)


FULL = {  # argv after the command, given the full disk's folder; what the error names
    "train-checkpoint": (lambda d: ["train", "--task", TASK, "--epochs", "2", "--checkpoint", f"{d}/ck"],
                         "the checkpoint"),
    "train-json": (lambda d: ["train", "--task", TASK, "--steps", "3", "--json", f"{d}/run.json"], "the --json file"),
    "plot": (lambda d: ["plot", "FIX(k0=0.1)", "-o", f"{d}/p.png"], "the plot"),
}
FULL_STORED = {
    "report-html": (lambda d: ["report", "--task", TASK, "-o", f"{d}/r.html"], "the report"),
    "report-md": (lambda d: ["report", "--task", TASK, "-o", f"{d}/r.md"], "the report"),
    "rank-csv": (lambda d: ["rank", "--task", TASK, "--csv", f"{d}/r.csv"], "the CSV file"),
}


@pytest.mark.parametrize("case", [*FULL, *FULL_STORED])
def test_a_full_disk_is_one_user_error_naming_the_file_and_the_free_space(case, full_disk, stored, here, capsys):
    argv, what = (FULL | FULL_STORED)[case]
    argv = argv(full_disk) + (["--db", stored] if case in FULL_STORED else [])
    err = refused(argv, [f"cannot write {what} '{full_disk}/", "the disk is full", f"0 B free in {full_disk}"],
                  capsys, full_disk)
    assert _listing(here) == []


def test_a_run_whose_json_file_does_not_fit_is_printed(full_disk, here, capsys):
    out: list[str] = []
    refused(FULL["train-json"][0](full_disk), ["the disk is full", "printed on stdout"], capsys, full_disk, out=out)
    import json

    run = json.loads(out[0][out[0].index("\n{") + 1:])
    assert run["status"] == "ok" and run["cost"]["iterations"] == 3 and run["curves"]["iteration"]


def test_a_finished_run_whose_last_checkpoint_does_not_fit_is_shown(full_disk, here, capsys):
    out: list[str] = []  # 3 iterations, less than an epoch: the only checkpoint is the finished run's
    refused(["train", "--task", TASK, "--steps", "3", "--checkpoint", f"{full_disk}/ck"],
            ["cannot write the checkpoint", "the disk is full"], capsys, full_disk, out=out)
    assert f"{TASK}  FIX(k0=0.05)  seed 0: ok" in out[0] and "3 iterations" in out[0]


@pytest.fixture
def read_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk") / "ro"
    _mount(root, "size=64k,ro")
    yield root
    _unmount(root)


def test_a_read_only_file_system_is_named(read_only, here, capsys):
    from lrpilot.files import atomic_path

    refused(["train", "--task", TASK, "--steps", "2", "--json", f"{read_only}/r.json"], "its file system is read-only",
            capsys, here)
    with pytest.raises(LRPilotError, match=f"cannot write the file '{read_only}/x.txt': the file system is read-only"):
        with atomic_path(read_only / "x.txt") as tmp:
            tmp.write_text("x")


def test_an_exceeded_quota_is_named(tmp_path_factory, here):
    from lrpilot.files import atomic_path

    root = tmp_path_factory.mktemp("disk") / "quota"
    _mount(root, "size=1m,usrquota,usrquota_block_hardlimit=8k")
    try:
        with pytest.raises(LRPilotError, match="the disk quota is exceeded"):
            with atomic_path(root / "x.bin") as tmp:
                tmp.write_bytes(b"\0" * 65536)
        assert _listing(root) == []
    finally:
        _unmount(root)


# --- data the model cannot train on: one error naming the first bad example; a bench stores it as "data" -----------

_MODEL_DATA = _GOOD + """
def make_label_outside():  # 8 classes declared, the model has 5 outputs
    x, y = split(8)
    y[5] = 7
    return task(train=(x, y), val=split(2), make_model_fn=lambda: nn.Linear(4, 5), num_classes=8)

def make_fixed():
    return task(train=split(8), val=split(2), make_model_fn=lambda: nn.Linear(4, 5), num_classes=8)

def make_wrong_shape():
    return task(make_model_fn=lambda: nn.Linear(6, 3))
"""


@pytest.fixture(scope="module")
def model_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("modeldata")
    (root / "hostile_model_data.py").write_text(_MODEL_DATA)
    sys.path.insert(0, str(root))
    yield "hostile_model_data"
    sys.path.remove(str(root))
    sys.modules.pop("hostile_model_data", None)


@pytest.mark.parametrize("factory, fragments", [
    ("make_label_outside", ["task 'mine'", "train split's example 5 has label 7, outside [0, 5)", "5 outputs"]),
    ("make_wrong_shape", ["task 'mine'", "does not take the train inputs of shape (4,)", "RuntimeError"]),
])
def test_data_the_model_cannot_train_on_is_one_error(factory, fragments, model_data, here, capsys):
    refused(["train", "--task", f"{model_data}:{factory}", "--steps", "2"], fragments, capsys, here)


def test_a_bench_stores_a_data_error_until_the_task_changes(model_data, here):
    from lrpilot.grid.runner import bench
    from lrpilot.execution.executors import InProcess
    from lrpilot.store import Store

    with Store(str(here / "runs.db")) as store:
        def once(factory):
            return bench(store, f"{model_data}:{factory}", ["FIX(k0=0.1)"], steps=2, executor=InProcess())

        assert once("make_label_outside").failed == 1
        (run,) = store.runs(task="mine")
        assert run.record["error_kind"] == "data" and "example 5 has label 7" in run.record["error"]
        assert once("make_label_outside").finished_before == 1  # the same data fails the same way: not retrained
        assert once("make_fixed").trained == 1  # the corrected task (another fingerprint) is
        assert [r.status for r in store.runs(task="mine")] == ["ok"]


def test_a_problem_checks_labels_against_the_models_outputs_and_its_inputs(here):
    import torch
    from torch.utils.data import TensorDataset

    from lrpilot import Problem
    from lrpilot.errors import DataError

    x, y = torch.zeros(10, 4), torch.arange(10) % 3
    model = lambda: torch.nn.Linear(4, 3)  # noqa: E731
    with pytest.raises(DataError, match=r"train split has label 7, outside \[0, 3\) at example 4 .*width 3"):
        Problem(model=model, train=TensorDataset(x, torch.where(torch.arange(10) == 4, 7, y)),
                val=TensorDataset(x, y), test=TensorDataset(x, y), num_classes=8, name="p")
    bad = x.clone()
    bad[6, 2] = float("inf")
    with pytest.raises(DataError, match="test split's example 6 has a non-finite input"):
        Problem(model=model, train=TensorDataset(x, y), test=TensorDataset(bad, y), name="p", batch_size=4)


# --- flags refused before the task loads, and the smaller points -----------------------------------------------------

@pytest.mark.parametrize("argv, fragments", [
    (["train", "--task", "no-such-task", "--diverge-factor", "1"], ["--diverge-factor 1 must be > 1"]),
    (["bench", "--task", "no-such-task", "--policies", "FIX(k0=0.1)", "--address", "h:1"],
     ["--address 'h:1' is for --executor ray"]),
    (["range-test", "--task", "no-such-task", "--sweep-steps", "5"], ["--sweep-steps 5 must be >= 10"]),
])
def test_flags_are_refused_before_the_task_loads(argv, fragments, here, capsys):
    refused(argv, fragments, capsys, here)  # an unknown task would be the error had the task been loaded first


def test_a_tune_budget_below_one_run_creates_no_store(here, capsys):
    refused(["tune", "--task", TASK, "--budget", "1e-9"], ["--budget 1e-09", "does not fit one run"], capsys, here)


def test_stpt_whose_warmup_is_the_whole_run_is_refused(here, capsys):
    refused(["train", "--task", TASK, "--steps", "3", "--policy", "stpt(k0=0.1, warmup=1000)"],
            ["stpt(k0=0.1, warmup=1000, choose=nearest)", "never search", "3 iterations"], capsys, here)


def test_plot_of_an_overflowing_policy_warns_nothing(here, capsys):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["plot", "EXP(k0=1e300, gamma=0.5)", "--log", "-o", "p.png"]) == 0
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert (here / "p.png").stat().st_size > 0


def test_the_lock_wait_notice_is_said_once(tmp_path):
    import sqlite3
    import subprocess

    from lrpilot.store import Store

    path = str(tmp_path / "locked.db")
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    code = f"from lrpilot.store import Store\nStore({path!r}, lock_timeout=5).claim('t', 'FIX(k0=0.1)', 0, 10)"
    try:  # a process of its own: no pytest handler catches its log records
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "stayed locked" in r.stderr and r.stderr.count("waiting for the lock") == 1, r.stderr[-2000:]
