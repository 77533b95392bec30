"""sweep.py: a real Optuna study in a real SQLite file, trials as real child processes, bounded in time."""
import contextlib
import csv
import glob
import io
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import pytest
from helpers import ROOT, SETTINGS, assert_one_line_error, run_main

import sweep
from lstm_mnist import tuning

SWEEP = os.path.join(ROOT, "sweep.py")
# 20 steps a trial, validated every 5 on 1,000 images
TINY = ["--training_iters=2100", "--validation_size=1000", "--eval_every=5", "--checkpoint_every=10",
        "--display_step=10"]
LIMIT_S = 600
SPACE = "forget_bias = uniform(0.9, 1.1)\nn_hidden = choice(16, 32)\n"


def space_file(tmp_path, text, name="space.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_sweep(tmp_path, *args):
    """sweep.py's main in this process (its trials are processes of their own, as always; the tests that
    need the sweep itself as a process start it so): (exit code, stdout, stderr)."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in range(2))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sweep.main([f"--out_dir={tmp_path}", *TINY, *args])
    return code, out.buffer.getvalue().decode(), err.buffer.getvalue().decode()


def study(tmp_path, name="sweep"):
    return sweep.open_study(name, f"sqlite:///{tmp_path / name / 'study.db'}", create=False)


@pytest.fixture(scope="module")
def shared_study(tmp_path_factory):
    """One study that every end-to-end check below adds to, in this order (11 trial processes in all,
    where a study for each check took 24): a sweep stopped by Ctrl-C while its first trial trains (a
    process; before any trial is complete, so the pruner cannot end that trial first); three trials, two
    at a time; two sweeps side by side (processes); two diverging trials; a space the study cannot take;
    a trial that learns nothing, which the median pruner stops; then a sweep stopped by Ctrl-C while it
    reports (a process)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    space = space_file(tmp_path, SPACE)
    fixed = "--learning_rate=0.01"  # every trial learns in 20 steps, so a hopeless one stands out
    runs = {"interrupted": interrupted_sweep(tmp_path, space)}
    runs["first"] = run_sweep(tmp_path, "--trials=3", "--jobs=2", f"--space={space}", fixed)
    side_by_side = [start_sweep(tmp_path, "--trials=1", f"--space={space}", fixed) for _ in range(2)]
    outputs = [process.communicate(timeout=LIMIT_S) for process in side_by_side]
    runs["side by side"] = [(p.returncode, *output) for p, output in zip(side_by_side, outputs, strict=True)]
    runs["diverging"] = run_sweep(tmp_path, "--trials=2", "--jobs=2", f"--space={space}", "--learning_rate=1e38",
                                  "--eval_every=10")  # its loss is logged before the pruner first judges it
    other = space_file(tmp_path, SPACE.replace("choice(16, 32)", "choice(16, 64)"), "other.py")
    runs["other space"] = run_sweep(tmp_path, "--trials=1", f"--space={other}", fixed)
    runs["hopeless"] = run_sweep(tmp_path, "--trials=1", f"--space={space}", "--learning_rate=1e-9")
    runs["interrupted while reporting"] = sweep_interrupted_at(tmp_path, "Best: trial", "--trials=1",
                                                               f"--space={space}", fixed)
    return tmp_path, runs, study(tmp_path).get_trials()


def sweep_interrupted_at(tmp_path, words, *args):
    """A sweep sent Ctrl-C once it prints a line that begins with `words`: (exit code, stdout, stderr)."""
    process = start_sweep(tmp_path, *args)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(words):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=LIMIT_S)
    return process.returncode, "".join(lines) + out, err


def start_sweep(tmp_path, *args):
    return subprocess.Popen([sys.executable, SWEEP, f"--out_dir={tmp_path}", *TINY, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def interrupted_sweep(tmp_path, space):
    """A long sweep, sent Ctrl-C once its next trial is training: (exit code, stdout, stderr)."""
    process = start_sweep(tmp_path, "--trials=3", f"--space={space}", "--learning_rate=0.01",
                          "--training_iters=100000", "--checkpoint_every=1000")
    metrics = tmp_path / "sweep" / "trial-0000" / "metrics.csv"
    started = time.monotonic()
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # the trial is training
        assert process.poll() is None and time.monotonic() - started < LIMIT_S, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=LIMIT_S)
    return process.returncode, out, err


# How many trials each sweep of the shared study adds, in the order they run (the interrupted one asks
# for three, but stops during its first).
TRIALS_ADDED = {"interrupted": 1, "first": 3, "side by side": 2, "diverging": 2, "other space": 1, "hopeless": 1,
                "interrupted while reporting": 1}


def trials_of(shared_study, run):
    """The trials that one of the shared study's sweeps added."""
    names = list(TRIALS_ADDED)
    first = sum(TRIALS_ADDED[name] for name in names[:names.index(run)])
    return shared_study[2][first:first + TRIALS_ADDED[run]]


@pytest.mark.slow
def test_a_small_sweep_fills_the_study_the_run_folders_the_table_and_the_plots(shared_study):
    tmp_path, runs, all_trials = shared_study
    code, out, err = runs["first"]
    assert code == 0, err
    folder = tmp_path / "sweep"
    trials = trials_of(shared_study, "first")
    assert len(all_trials) == sum(TRIALS_ADDED.values()) and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        run_dir = folder / f"trial-{trial.number:04d}"
        assert (run_dir / "config.json").exists() and (run_dir / "metrics.csv").exists()
        assert glob.glob(str(run_dir / "model.ckpt-20.index"))  # a normal run, to its last step
        result = tuning.read_result(str(run_dir))
        assert result["state"] == "COMPLETE" and result["steps"] == 20
        assert trial.value == result["validation_accuracy"] == trial.intermediate_values[20]
        assert set(trial.params) == {"forget_bias", "n_hidden"}
    rows = list(csv.DictReader(open(folder / "results.csv")))  # as the last sweep left it: every trial
    assert len(rows) == sum(TRIALS_ADDED.values())
    scored = [float(r["validation_accuracy"]) for r in rows if r["validation_accuracy"]]
    assert scored == sorted(scored, reverse=True) and all(not r["validation_accuracy"] for r in rows[len(scored):])
    for name in ("history.png", "parallel.png", "importances.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Threads: 1 intra-op, 1 inter-op for each of 2 trial(s) at a time (2 cores)" in out
    assert "Full test set:" in out and "Testing Accuracy:" in out
    assert out.count("Full test set:") == 1  # the test set is scored once, for the best trial


@pytest.mark.slow
def test_two_sweeps_side_by_side_continue_the_study_and_never_run_the_same_trial(shared_study):
    _, runs, _ = shared_study
    assert "Study sweep: 1 trials so far" in runs["first"][1]
    for code, out, err in runs["side by side"]:
        assert code == 0, err
        assert re.search(r"^Study sweep: [45] trials so far", out, re.M) and out.count("\nTrial ") == 1
    trials = trials_of(shared_study, "side by side")
    assert [t.number for t in trials] == [4, 5]
    assert all(t.state.name == "COMPLETE" for t in trials)  # the pruner judges none before five are complete
    assert sorted(os.path.basename(t.user_attrs["run_dir"]) for t in trials) == ["trial-0004", "trial-0005"]


@pytest.mark.slow
def test_the_hparams_summaries_read_back_with_tensorboards_own_reader(shared_study):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    folder = shared_study[0] / "sweep"
    root = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    root.Reload()
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        root.SummaryMetadata("_hparams_/experiment").plugin_data.content).experiment
    assert {info.name for info in experiment.hparam_infos} == {"forget_bias", "n_hidden"}
    assert [m.name.tag for m in experiment.metric_infos] == ["validation/accuracy"]
    trial = EventAccumulator(str(folder / "trial-0001"), size_guidance={"tensors": 0})
    trial.Reload()
    start = plugin_data_pb2.HParamsPluginData.FromString(
        trial.SummaryMetadata("_hparams_/session_start_info").plugin_data.content).session_start_info
    assert set(start.hparams) == {"forget_bias", "n_hidden"}
    assert "validation/accuracy" in trial.Tags()["scalars"]


@pytest.mark.slow
def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(shared_study):
    tmp_path, runs, _ = shared_study
    code, out, err = runs["diverging"]
    assert code == 1, err  # both trials ran, and failed: the sweep says so
    assert err.splitlines()[-1].startswith("error: every trial of this sweep failed (2); why is in the table")
    assert len(re.findall(r"^Trial \d+: failed: minibatch loss is nan at Iter \d+", out, flags=re.M)) == 2, out
    trials = trials_of(shared_study, "diverging")
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    assert all("training diverged" in t.user_attrs["reason"] for t in trials)
    rows = {int(row["trial"]): row for row in csv.DictReader(open(tmp_path / "sweep" / "results.csv"))}
    assert all(rows[t.number]["state"] == "FAIL" and "training diverged" in rows[t.number]["reason"] for t in trials)
    assert trials_of(shared_study, "other space")[0].number == 8  # the study goes on after them


@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_and_says_so(shared_study):
    tmp_path, runs, _ = shared_study
    code, out, err = runs["hopeless"]
    assert code == 0, err
    (trial,) = trials_of(shared_study, "hopeless")
    assert trial.state.name == "PRUNED", out
    result = tuning.read_result(trial.user_attrs["run_dir"])
    assert result["state"] == "PRUNED" and "pruned after Iter" in result["reason"] and result["steps"] < 20
    assert re.search(r"^Trial 9: pruned, validation accuracy 0\.\d+ at step \d+: pruned after Iter", out, re.M)
    assert "PRUNED" in open(tmp_path / "sweep" / "results.csv").read()


@pytest.mark.slow
def test_a_space_the_study_cannot_take_fails_its_trial_in_one_line(shared_study):
    code, out, err = shared_study[1]["other space"]
    assert code == 1, err  # its one trial failed
    (trial,) = trials_of(shared_study, "other space")  # Optuna keeps a choice's values: (16, 32), not (16, 64)
    assert trial.state.name == "FAIL" and "does not support dynamic value space" in trial.user_attrs["reason"]
    assert re.search(r"^Trial 8: failed: the space cannot be drawn in this study", out, re.M), out


@pytest.mark.slow
def test_ctrl_c_stops_the_running_trial_as_the_script_stops_and_a_rerun_continues(shared_study):
    assert "Study sweep: 1 trials so far" in shared_study[1]["first"][1]  # the rerun: below
    code, out, err = shared_study[1]["interrupted"]
    assert code == 130, err
    assert err.splitlines()[-1] == ("Interrupted by SIGINT while sweeping: the running trials stopped and were "
                                    "recorded as failed, every completed one is kept; run the same command again "
                                    "to continue the study")
    (trial,) = trials_of(shared_study, "interrupted")  # one of the three: the others never started
    assert trial.state.name == "FAIL"
    # What the trial says to do is what the sweep says: not the script's --resume, which sweep.py refuses.
    assert "--resume" not in out + err
    assert "Resume with: the same sweep.py command again: it continues the study with new trials" in out
    saved = re.fullmatch(r"Interrupted by SIGINT after Iter \d+ \(step (\d+)\): checkpoint saved to (\S+)",
                         trial.user_attrs["reason"])
    assert saved and os.path.exists(saved.group(2) + ".index")  # stopped the way the script stops
    assert all(t.state.name == "COMPLETE" for t in trials_of(shared_study, "first"))  # the study went on


@pytest.mark.slow
def test_ctrl_c_while_the_sweep_reports_stops_it_there_and_says_what_is_kept(shared_study):
    code, out, err = shared_study[1]["interrupted while reporting"]
    assert code == 130, err
    # At once: before the best trial's test set (the sweep's own words), or during it (predict's).
    assert re.fullmatch(r"Interrupted by SIGINT while (reporting: no trial runs, every trial is recorded in the "
                        r"study; run the same command again to continue the study|scoring the test set: nothing is "
                        r"written, nothing to lose)", err.splitlines()[-1]), err
    assert "stopping the running trials" not in err  # none runs: the sweep said so before, at this point
    (trial,) = trials_of(shared_study, "interrupted while reporting")
    assert trial.state.name in ("COMPLETE", "PRUNED")  # recorded as it ended, before the report began


@pytest.mark.parametrize("text,words", [
    ("learning_rat = log_uniform(1e-4, 1e-2)\n", ["learning_rat is not a setting", "did you mean --learning_rate"]),
    ("learning_rate = log_uniform(0, 1e-2)\n", ["learning_rate: log_uniform() needs low > 0"]),
    ("n_hidden = uniform(10, 100)\n", ["n_hidden: uniform() does not fit a int setting"]),
    ("n_hidden = int_range(100, 10)\n", ["n_hidden: low (100) must be below high (10)"]),
    ("cell = choice('basic', 3)\n", ["cell: 3 is not a str"]),
    ("learning_rate = 0.1\n", ["learning_rate = 0.1; give a range"]),
    ("out_dir = choice('a', 'b')\n", ["out_dir cannot be searched"]),
    ("learning_rate = log_uniform(1e-4,\n", ["not a space file (SyntaxError"]),
    ("learning_rate = normal(0, 1)\n", ["not a space file (NameError: name 'normal' is not defined)"]),
    ("\n", ["no setting in it"]),
    ("n_hidden = int_range(16, 64, step='8')\n", ["n_hidden: int_range()'s step must be a whole number >= 1 (got "
                                                 "'8')"]),
    ("n_hidden = int_range(16, 64, step=0)\n", ["int_range()'s step must be a whole number >= 1 (got 0)"]),
    ("n_hidden = int_range(16, 64, step=-8)\n", ["int_range()'s step must be a whole number >= 1 (got -8)"]),
    ("n_hidden = int_range(16.5, 64)\n", ["int_range() needs whole numbers, low and high (got 16.5, 64)"]),
    ("batch_size = int_range(-10, -5)\n", ["batch_size can be drawn as -10, which a run refuses (batch_size = -10 "
                                           "is not allowed: must be >= 1)"]),
    ("batch_size = choice(100, 200000)\n", ["batch_size can be drawn as 200000, which a run refuses",
                                            "training_iters = 100000 is not allowed: must be > batch_size"]),
    ("learning_rate = uniform(-1.0, 1.0)\n", ["learning_rate can be drawn as -1.0, which a run refuses"]),
])
def test_a_bad_space_file_is_one_line_before_any_trial(tmp_path, capsys, text, words):
    code, out, err = run_main(capsys, "--trials=1", f"--space={space_file(tmp_path, text)}", f"--out_dir={tmp_path}",
                              main=sweep.main)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)
    assert not os.path.exists(tmp_path / "sweep")


@pytest.mark.parametrize("args,words", [
    ([], ["--trials=N is needed"]),
    (["--trials=2", "--jobs=0"], ["--jobs=0 is not allowed"]),
    (["--trials=2", "--learning_rate=0.01"], ["--learning_rate is both fixed on the command line and searched"]),
    (["--trials=2", "--display_step=0"], ["display_step = 0 is not allowed"]),
    (["--trials=2", "--storage=postgresql://nobody@127.0.0.1:9/none"], ["--storage=postgresql://nobody@127.0.0.1:9/none"
                                                                        ": cannot open the study there"]),
    (["--trials=2", "--storage=sqlite://"], ["--storage=sqlite://: an in-memory database is not shared"]),
    (["--trials=2", "--storage=sqlite:///:memory:"], ["an in-memory database is not shared", "sqlite:///PATH"]),
    (["--trials=2", "--study=.."], ["--study=..: a study needs a name, which is also its folder"]),
    (["--trials=2", "--study="], ["--study=: a study needs a name"]),
])
def test_bad_flags_are_one_line(tmp_path, capsys, args, words):
    code, out, err = run_main(capsys, *args, f"--out_dir={tmp_path}", main=sweep.main)
    assert code == 2
    assert_one_line_error(err, *words)


def test_each_of_several_trials_side_by_side_gets_its_share_of_the_cores():
    assert tuning.threads_for(1, cores=2) == (1, 2)
    assert tuning.threads_for(2, cores=2) == (1, 1)
    assert tuning.threads_for(4, cores=16) == (1, 4)
    assert tuning.threads_for(8, cores=2) == (1, 1)


def test_a_journal_file_holds_a_study_as_a_database_does(tmp_path):
    created = sweep.open_study("shared", f"journal:{tmp_path / 'study.log'}")
    created.enqueue_trial({"learning_rate": 0.001})
    loaded = sweep.open_study("shared", f"journal:{tmp_path / 'study.log'}", create=False)
    assert loaded.study_name == "shared" and len(loaded.trials) == 1 and os.path.getsize(tmp_path / "study.log")


def test_a_space_file_may_import_what_its_ranges_use(tmp_path):
    space = tuning.load_space(space_file(tmp_path, "import math\nlearning_rate = log_uniform(math.exp(-9), 1e-2)\n"),
                              SETTINGS)
    assert list(space) == ["learning_rate"] and space["learning_rate"].values == (math.exp(-9), 1e-2)


def test_the_shipped_space_draws_only_values_a_run_takes():
    path = os.path.join(ROOT, "space.py")
    space = tuning.load_space(path, SETTINGS)
    tuning.check_space_values(space, {}, path, SETTINGS)
    assert space["num_layers"].values == (1, 2) and {"learning_rate", "n_hidden"} <= set(space)


def test_sweeps_that_create_the_same_new_study_at_once_all_open_it(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    opened, failures, together = [], [], threading.Barrier(6)

    def open_it():
        together.wait()
        try:
            opened.append(sweep.open_study("sweep", storage).study_name)
        except Exception as e:  # the test reports what any of them raised
            failures.append(e)
    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LIMIT_S)
    assert not failures and opened == ["sweep"] * 6, failures


def test_a_trial_whose_process_died_unrecorded_is_failed_by_the_next_sweep(tmp_path, capsys):
    study = sweep.open_study("sweep", f"sqlite:///{tmp_path / 'study.db'}")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive, elsewhere = study.ask(), study.ask(), study.ask()
    dead.set_user_attr("process", f"{socket.gethostname()}:{ended.stdout.strip()}")
    alive.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
    elsewhere.set_user_attr("process", "another-machine:1")
    sweep.fail_abandoned_trials(study)
    states = [t.state.name for t in study.get_trials()]
    assert states == ["FAIL", "RUNNING", "RUNNING"]
    assert study.get_trials()[0].user_attrs["reason"] == "its process ended before it could record how the trial ended"
    assert capsys.readouterr().out == "Trial 0: failed: its process ended before it could record how (found by this " \
                                      "sweep)\n"


def test_an_existing_study_on_a_read_only_disk_says_so(small_disk, capsys):
    storage = f"sqlite:///{small_disk / 'study.db'}"
    create = f"import optuna; optuna.create_study(study_name='disk', storage={storage!r})"
    subprocess.run([sys.executable, "-c", create], check=True, timeout=LIMIT_S)  # its end closes the database
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, out, err = run_main(capsys, "--trials=1", f"--out_dir={small_disk.parent}", "--study=disk",
                              f"--storage={storage}", main=sweep.main)
    assert code == 2
    assert_one_line_error(err, "cannot open the study there (attempt to write a readonly database); the database "
                               "cannot be written: make it (and its folder) writable")


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_fails_its_trial_in_one_line_and_leaves_nothing_running(small_disk):
    # The trial's folder fills the disk; the study lives on another (with it on the full disk too, what is left
    # for the study's record after the failed checkpoint depends on the graph's size and the units drawn).
    storage = f"sqlite:///{small_disk.parent / 'study.db'}"
    code, out, err = run_sweep(small_disk, "--trials=1", f"--space={space_file(small_disk.parent, SPACE)}",
                               f"--storage={storage}")
    assert code == 1
    assert "Traceback" not in out + err + "".join(p.read_text() for p in (small_disk / "sweep").glob("trial-*.log"))
    assert re.search(r"^Trial 0: failed: (could not write the checkpoint|cannot write).*No space left on device",
                     out, re.M), out
    assert err.splitlines()[-1].startswith("error: every trial of this sweep failed (1)")
    assert err.splitlines()[-1].endswith("run the same command again to continue the study")
    assert [t.state.name for t in sweep.open_study("sweep", storage, create=False).get_trials()] == ["FAIL"]


class FullStudy:
    """A study whose storage cannot be read or written (its disk is full)."""

    def get_trials(self, deepcopy=False, states=None):
        raise OSError(28, "No space left on device")


def test_a_trial_the_study_could_not_record_is_said_once_and_fails_the_sweep(tmp_path, capsys, monkeypatch):
    gone = f"Trial 4: Traceback ... killed; the study could not be read or written ([Errno 28] No space left on " \
           f"device); {sweep.UNRECORDED}"
    for said, printed in ((f"Trial 4: complete, but could not be recorded (disk I/O error); {sweep.UNRECORDED}", None),
                          ("Traceback ... killed", gone)):
        log = tmp_path / "launch-1.log"  # renamed trial-0004.log once read
        log.write_text(f"Trial 4: asked\n{said}\n")
        child = sweep.Child.__new__(sweep.Child)  # a trial process that has ended
        child.log_path, child.log, child.process = str(log), open(log), types.SimpleNamespace(returncode=1)
        assert sweep.finished(FullStudy(), child) == "UNRECORDED"
        assert capsys.readouterr().out == (printed or said) + "\n"  # the clause said once
    monkeypatch.setattr(sweep, "run_trials", lambda *args: ["COMPLETE", "UNRECORDED"])
    monkeypatch.setattr(sweep, "report", lambda *args: None)
    code, _, err = run_main(capsys, "--trials=2", f"--out_dir={tmp_path}", main=sweep.main)
    assert code == 1
    assert_one_line_error(err, "could not take how 1 trial(s) ended (a full disk?): free some space",
                          "the next sweep on this machine records them as failed")


def test_plots_that_could_not_be_written_are_not_said_missing_for_want_of_trials(tmp_path, capsys, monkeypatch):
    study = sweep.open_study("plots", f"sqlite:///{tmp_path / 'study.db'}")
    for value in (0.1, 0.2):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-2)
        study.tell(trial, value)
    monkeypatch.setattr(sweep, "replaced_atomically", lambda *args: open(tmp_path / "no" / "such" / "folder", "wb"))
    sweep.write_plots(study, str(tmp_path))
    out = capsys.readouterr().out
    assert out == f"Plots: none written (see the warnings above) in {tmp_path}\n"
