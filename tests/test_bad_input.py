"""Bad input at the command line never costs a run: `gandiag train` and `gandiag demo`
refuse it before training, exit 2 with one line that names the fix, write nothing (least
of all outside the output folder) and leave the runs already stored untouched."""

import os
import re

import pytest
from torch import nn

import gandiag
from gandiag.cli import main
from gandiag.train.trainer import Trainer


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store holding one finished run, and the folder that run wrote into."""
    base = tmp_path_factory.mktemp("stored")
    store, out = base / "gandiag.sqlite", base / "out" / "nested"
    assert main(["train", "--steps", "4", "--log-every", "2", "--name", "kept", "--device", "cpu",
                 "--out", str(out), "--store", str(store)]) == 0
    return store, out


def runs_in(store):
    """What a store holds, as plain values: (id, name, status, last step) and a run's losses."""
    runs = [(r.id, r.name, r.status, r.last_step) for r in gandiag.list_runs(store)]
    with gandiag.open_run("kept", store) as run:
        losses = run.scalars("D/loss")[1].tolist()
    return runs, losses


def tree(folder):
    """Every file and folder under `folder`, with sizes and change times."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            stat = os.stat(path)
            found[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def workspace(tmp_path, monkeypatch, stored):
    """A working folder two levels down (so '../../x' would land inside tmp_path), with a
    file where a folder belongs, and training made to fail loudly if it ever starts."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "afile").write_text("keep me")
    monkeypatch.chdir(work)

    def must_not_train(self, steps=None):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(Trainer, "fit", must_not_train)
    return tmp_path


def run_refused(argv, capsys, root, store):
    """Run the command and check the refusal: exit 2, one stderr line, nothing written."""
    before_tree, before_runs = tree(root), runs_in(store)
    code = main(argv + ["--store", str(store)])
    after_tree = tree(root)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"gandiag {argv[0]}: error: "), err
    assert after_tree == before_tree  # nothing written, inside or outside the output folder
    assert runs_in(store) == before_runs
    return err


@pytest.mark.parametrize("argv, fix", [
    (["--out", "afile"], "expected a folder, got 'afile', which is a file; pass a folder path"),
    (["--out", "afile/sub"], "but 'afile' on its way is a file; pass a folder path"),
    (["--name", "x" * 300], "expected at most 239 bytes.*choose a shorter name"),
    (["--name", "../../escape"], "run name.*contains '/'.*use letters, digits, '-', '_', '.'"),
    (["--name", "/tmp/escape"], "use letters, digits"),
    (["--name", ""], "expected a non-empty name, got ''; use letters"),
    (["--stabilise", "pack=2.7"], "stabiliser pack: expected an integer, got '2.7'.*pack=2"),
    (["--stabilise", "spectral_norm=flase"], "true/1/yes/on or false/0/no/off.*spectral_norm=false"),
    (["--stabilise", "spectral_norm=yes-please"], "got 'yes-please'; write spectral_norm=true"),
    (["--stabilise", "r1=lots"], "stabiliser r1: expected a finite number, got 'lots'"),
])
def test_train_refuses_bad_input_before_training(workspace, stored, capsys, argv, fix):
    err = run_refused(["train", "--steps", "4", "--device", "cpu", *argv], capsys, workspace, stored[0])
    assert re.search(fix, err), err


def test_a_folder_where_a_run_file_goes_is_refused(workspace, stored, capsys):
    (workspace / "a" / "b" / "out" / "r.pt").mkdir(parents=True)
    err = run_refused(["train", "--out", "out", "--name", "r", "--device", "cpu"], capsys,
                      workspace, stored[0])
    assert "r.pt' would be written as a file but is a folder; pick another run name" in err


def test_demo_refuses_a_file_as_its_output_folder(workspace, stored, capsys):
    err = run_refused(["demo", "--steps", "4", "--out", "afile", "--device", "cpu"], capsys,
                      workspace, stored[0])
    assert "output folder (--out): expected a folder, got 'afile', which is a file" in err


def test_a_good_run_writes_only_its_folder_and_the_store(stored):
    store, out = stored
    assert sorted(os.listdir(out)) == ["kept-report.html", "kept.json", "kept.pt"]
    assert sorted(os.listdir(out.parent.parent)) == sorted(["out", store.name, *[
        name for name in os.listdir(out.parent.parent) if name.startswith(store.name + "-")]])
    runs, losses = runs_in(store)
    assert [r[1:] for r in runs] == [("kept", "finished", 4)] and len(losses) == 4


def test_attach_to_a_g_without_parameters_does_not_crash():
    # attach only watches; a parameterless G (nn.Identity) is unusual but not an error there.
    with gandiag.attach(nn.Identity(), nn.Linear(2, 1)) as monitor:
        pass
    assert monitor.step == 0
    with pytest.raises(TypeError, match="expected G to be an nn.Module, got a function"):
        gandiag.attach(lambda z: z, nn.Linear(2, 1))


def test_an_unwritable_output_folder_is_refused(workspace, stored, capsys, monkeypatch):
    locked = workspace / "a" / "b" / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: let the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: not str(p).endswith("locked") and real_access(p, mode))
    try:
        err = run_refused(["train", "--out", "locked/sub", "--device", "cpu"], capsys, workspace, stored[0])
    finally:
        locked.chmod(0o700)
    assert "expected a folder this process may write in" in err and "('locked' is not writable)" in err
