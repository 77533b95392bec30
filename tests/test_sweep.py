"""sweep.py: a real Optuna study in a real SQLite file, trials as real child processes, bounded in time."""
import csv
import glob
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, assert_one_line_error, run_main

import sweep
from lstm_mnist import tuning

SWEEP = os.path.join(ROOT, "sweep.py")
TINY = ["--training_iters=2100", "--eval_every=5", "--checkpoint_every=10", "--display_step=10"]  # 20 steps a trial
LIMIT_S = 600


def space_file(tmp_path, text, name="space.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_sweep(tmp_path, *args):
    result = subprocess.run([sys.executable, SWEEP, f"--out_dir={tmp_path}", *TINY, *args], capture_output=True,
                            text=True, timeout=LIMIT_S, cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


def study(tmp_path, name="sweep"):
    return sweep.open_study(name, f"sqlite:///{tmp_path / name / 'study.db'}", create=False)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """Three trials of a small space, then a rerun that adds two: the study, its folder and the outputs."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    space = space_file(tmp_path, "learning_rate = log_uniform(1e-3, 1e-2)\nn_hidden = choice(16, 32)\n")
    first = run_sweep(tmp_path, "--trials=3", "--jobs=2", f"--space={space}")
    second = run_sweep(tmp_path, "--trials=2", f"--space={space}")
    return tmp_path, first, second


@pytest.mark.slow
def test_a_small_sweep_fills_the_study_the_run_folders_the_table_and_the_plots(small_sweep):
    tmp_path, (code, out, err), _ = small_sweep
    assert code == 0, err
    folder = tmp_path / "sweep"
    trials = study(tmp_path).get_trials()
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        run_dir = folder / f"trial-{trial.number:04d}"
        assert (run_dir / "config.json").exists() and (run_dir / "metrics.csv").exists()
        assert glob.glob(str(run_dir / "model.ckpt-20.index"))  # a normal run, to its last step
        result = tuning.read_result(str(run_dir))
        assert result["state"] == "COMPLETE" and result["steps"] == 20
        assert trial.value == result["validation_accuracy"] == trial.intermediate_values[20]
        assert set(trial.params) == {"learning_rate", "n_hidden"}
    rows = list(csv.DictReader(open(folder / "results.csv")))
    assert [float(r["validation_accuracy"]) for r in rows] == sorted((float(r["validation_accuracy"]) for r in rows),
                                                                      reverse=True)
    for name in ("history.png", "parallel.png", "importances.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Threads: 1 intra-op, 1 inter-op for each of 2 trial(s) at a time (2 cores)" in out
    assert "Full test set:" in out and "Testing Accuracy:" in out
    assert out.count("Full test set:") == 1  # the test set is scored once, for the best trial


@pytest.mark.slow
def test_a_rerun_continues_the_study_and_adds_trials(small_sweep):
    tmp_path, (code, out, _), (code2, out2, err2) = small_sweep
    assert code2 == 0, err2
    assert "Study sweep: 0 trials so far" in out and "Study sweep: 3 trials so far" in out2
    assert out2.count("\nTrial ") >= 2


@pytest.mark.slow
def test_the_hparams_summaries_read_back_with_tensorboards_own_reader(small_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    tmp_path = small_sweep[0]
    folder = tmp_path / "sweep"
    root = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    root.Reload()
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        root.SummaryMetadata("_hparams_/experiment").plugin_data.content).experiment
    assert {info.name for info in experiment.hparam_infos} == {"learning_rate", "n_hidden"}
    assert [m.name.tag for m in experiment.metric_infos] == ["validation/accuracy"]
    trial = EventAccumulator(str(folder / "trial-0000"), size_guidance={"tensors": 0})
    trial.Reload()
    start = plugin_data_pb2.HParamsPluginData.FromString(
        trial.SummaryMetadata("_hparams_/session_start_info").plugin_data.content).session_start_info
    assert set(start.hparams) == {"learning_rate", "n_hidden"}
    assert "validation/accuracy" in trial.Tags()["scalars"]


@pytest.mark.slow
def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    space = space_file(tmp_path, "forget_bias = uniform(0.9, 1.1)\n")
    code, out, err = run_sweep(tmp_path, "--trials=2", "--jobs=2", f"--space={space}", "--learning_rate=1e38")
    assert code == 0, err  # both trials ran, and failed
    assert len(re.findall(r"^Trial \d+: failed: minibatch loss is nan at Iter \d+", out, flags=re.M)) == 2, out
    code, out, err = run_sweep(tmp_path, "--trials=1", f"--space={space}")
    assert code == 0, err
    trials = study(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "COMPLETE"]
    assert all("training diverged" in t.user_attrs["reason"] for t in trials[:2])
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "results.csv")))
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL", "FAIL"] and "training diverged" in rows[1]["reason"]


@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_and_says_so(tmp_path):
    # Six trials at a rate that learns reach a median; then one at a rate that learns nothing is stopped early.
    space = space_file(tmp_path, "forget_bias = uniform(0.9, 1.1)\n")
    code, _, err = run_sweep(tmp_path, "--trials=6", "--jobs=2", f"--space={space}", "--learning_rate=0.01")
    assert code == 0, err
    code, out, err = run_sweep(tmp_path, "--trials=1", f"--space={space}", "--learning_rate=1e-9")
    assert code == 0, err
    trial = study(tmp_path).get_trials()[-1]
    assert trial.state.name == "PRUNED", out
    result = tuning.read_result(trial.user_attrs["run_dir"])
    assert result["state"] == "PRUNED" and "pruned after Iter" in result["reason"] and result["steps"] < 20
    assert re.search(r"^Trial 6: pruned, validation accuracy 0\.\d+ at step \d+: pruned after Iter", out, re.M)
    assert "PRUNED" in open(tmp_path / "sweep" / "results.csv").read()


@pytest.mark.slow
def test_a_space_the_study_cannot_take_fails_its_trial_in_one_line(tmp_path):
    first = space_file(tmp_path, "n_hidden = choice(16, 32)\n")
    assert run_sweep(tmp_path, "--trials=1", f"--space={first}")[0] == 0
    other = space_file(tmp_path, "n_hidden = choice(16, 64)\n", "other.py")  # Optuna keeps a choice's values
    code, out, err = run_sweep(tmp_path, "--trials=1", f"--space={other}")
    assert code == 0, err
    trial = study(tmp_path).get_trials()[-1]
    assert trial.state.name == "FAIL" and "does not support dynamic value space" in trial.user_attrs["reason"]
    assert re.search(r"^Trial 1: failed: the space cannot be drawn in this study", out, re.M), out


@pytest.mark.slow
def test_two_sweeps_on_one_study_never_run_the_same_trial(tmp_path):
    space = space_file(tmp_path, "learning_rate = log_uniform(1e-3, 1e-2)\n")
    command = [sys.executable, SWEEP, f"--out_dir={tmp_path}", *TINY, "--trials=2", f"--space={space}"]
    os.makedirs(tmp_path / "sweep")
    sweep.open_study("sweep", f"sqlite:///{tmp_path / 'sweep' / 'study.db'}")  # created once, then shared
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                 for _ in range(2)]
    for process in processes:
        process.communicate(timeout=LIMIT_S)
        assert process.returncode == 0
    trials = study(tmp_path).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert sorted(os.path.basename(t.user_attrs["run_dir"]) for t in trials) == [f"trial-000{n}" for n in range(4)]


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


@pytest.mark.slow
def test_ctrl_c_stops_the_running_trial_as_the_script_stops_and_a_rerun_continues(tmp_path):
    space = space_file(tmp_path, "forget_bias = uniform(0.9, 1.1)\n")
    process = subprocess.Popen([sys.executable, SWEEP, f"--out_dir={tmp_path}", "--training_iters=100000",
                                "--display_step=10", "--checkpoint_every=1000", "--trials=3", f"--space={space}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    metrics = tmp_path / "sweep" / "trial-0000" / "metrics.csv"
    started = time.monotonic()
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # trial 0 is training
        assert process.poll() is None and time.monotonic() - started < LIMIT_S, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=LIMIT_S)
    assert process.returncode == 130, err
    assert err.splitlines()[-1] == ("Interrupted by SIGINT while sweeping: the running trials stopped and were "
                                    "recorded as failed, every completed one is kept; run the same command again "
                                    "to continue the study")
    (trial,) = study(tmp_path).get_trials()
    assert trial.state.name == "FAIL"
    saved = re.fullmatch(r"Interrupted by SIGINT after Iter \d+ \(step (\d+)\): checkpoint saved to (\S+)",
                         trial.user_attrs["reason"])
    assert saved and os.path.exists(saved.group(2) + ".index")  # stopped the way the script stops
    code, out, err = run_sweep(tmp_path, "--trials=1", f"--space={space}")
    assert code == 0, err
    assert [t.state.name for t in study(tmp_path).get_trials()] == ["FAIL", "COMPLETE"]


def test_a_journal_file_holds_a_study_as_a_database_does(tmp_path):
    created = sweep.open_study("shared", f"journal:{tmp_path / 'study.log'}")
    created.enqueue_trial({"learning_rate": 0.001})
    loaded = sweep.open_study("shared", f"journal:{tmp_path / 'study.log'}", create=False)
    assert loaded.study_name == "shared" and len(loaded.trials) == 1 and os.path.getsize(tmp_path / "study.log")
