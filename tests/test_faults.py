"""Bad input is refused before any work; faults after the start lose nothing."""
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, fresh_copy, tiny_config

import data
import train_lstm_mnist as script

SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")


def run_main(capsys, *args):
    code = script.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err, *words):
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err


# ------------------------------------------------------------- bad settings

@pytest.mark.parametrize("override,words", [
    ("--batch_size=0", ["batch_size = 0", ">= 1"]),
    ("--n_steps=14", ["n_steps * n_input = 14 * 28", "784"]),
    ("--n_input=0", ["n_input = 0", ">= 1"]),
    ("--n_classes=9", ["n_classes = 9", "10"]),
    ("--n_hidden=0", ["n_hidden = 0", ">= 1"]),
    ("--learning_rate=0", ["learning_rate = 0.0", "> 0 and finite"]),
    ("--learning_rate=inf", ["learning_rate = inf", "> 0 and finite"]),
    ("--learning_rate=nan", ["learning_rate = nan", "> 0 and finite"]),
    ("--display_step=0", ["display_step = 0", ">= 1"]),
    ("--training_iters=100", ["training_iters = 100", "at least one step"]),
    ("--test_len=0", ["test_len = 0", "between 1 and the test-set size"]),
    ("--test_len=10001", ["test_len = 10001", "test-set size (10000)"]),
    ("--validation_size=-1", ["validation_size = -1", "between 0 and 60000"]),
    ("--validation_size=60001", ["validation_size = 60001", "between 0 and 60000"]),
    ("--checkpoint_every=0", ["checkpoint_every = 0", ">= 1"]),
])
def test_bad_setting_is_refused_before_anything_is_written(capsys, tmp_path, override, words):
    out_dir = tmp_path / "runs"
    code, out, err = run_main(capsys, override, f"--out_dir={out_dir}")
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)
    assert not out_dir.exists()


def test_data_dir_that_is_a_file(capsys, tmp_path):
    (tmp_path / "mnist").write_text("not a folder")
    code, _, err = run_main(capsys, f"--data_dir={tmp_path / 'mnist'}", f"--out_dir={tmp_path / 'runs'}")
    assert code == 2
    assert_one_line_error(err, str(tmp_path / "mnist"), "is a file")


def test_out_dir_that_cannot_be_created_fails_at_once(capsys, tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    code, out, err = run_main(capsys, f"--out_dir={tmp_path / 'blocker' / 'runs'}")
    assert code == 2 and "Iter" not in out
    assert_one_line_error(err, "out_dir = ", "cannot create a run folder", "writable out_dir")


# ---------------------------------------------------------------- data faults

def test_unreadable_data_file(monkeypatch):
    def denied(path, mode="rb"):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(data.gzip, "open", denied)
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte\.gz: cannot read: Permission denied"):
        data.read_data_sets(MNIST_DIR)


def test_folder_in_place_of_a_data_file(tmp_path):
    (tmp_path / "t10k-labels-idx1-ubyte.gz").mkdir()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz: cannot read: Is a directory"):
        data.read_labels(str(tmp_path / "t10k-labels-idx1-ubyte.gz"))


def test_labels_file_from_the_other_set(tmp_path, capsys):
    for name in (data.TRAIN_IMAGES, data.TEST_IMAGES, data.TEST_LABELS):
        shutil.copy(os.path.join(MNIST_DIR, name + ".gz"), tmp_path)
    shutil.copy(os.path.join(MNIST_DIR, data.TEST_LABELS + ".gz"), tmp_path / (data.TRAIN_LABELS + ".gz"))
    code, _, err = run_main(capsys, f"--data_dir={tmp_path}", f"--out_dir={tmp_path / 'runs'}")
    assert code == 2
    assert_one_line_error(err, data.TRAIN_LABELS, "sha256 mismatch")


# --------------------------------------------------------------- interrupts

def start_script(*args):
    return subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def interrupt_after_logged_steps(process, signum, logged=3):
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if sum(x.startswith("Iter ") for x in lines) == logged:
            process.send_signal(signum)
            break
    out, err = process.communicate(timeout=120)
    return lines + out.splitlines(), err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signum):
    process = start_script("--training_iters=20000", "--display_step=2", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after_logged_steps(process, signum)
    assert process.returncode == 128 + signum
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    saved = re.search(rf"Interrupted by {signal.Signals(signum).name} after Iter \d+ \(step (\d+)\): "
                      rf"checkpoint saved to (\S+)\nResume with: python \S+ --resume={re.escape(run_dir)}\n$", err)
    assert saved, err
    step = int(saved.group(1))
    assert saved.group(2) == os.path.join(run_dir, f"model.ckpt-{step}")
    assert os.path.exists(saved.group(2) + ".index")
    assert step >= 6 and "Optimization Finished!" not in lines

    if signum == signal.SIGINT:
        resumed = subprocess.run([sys.executable, SCRIPT, f"--resume={run_dir}"], capture_output=True, text=True,
                                 cwd=ROOT, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        out = resumed.stdout.splitlines()
        assert f"Resuming {run_dir} after Iter {step * 100} (step {step})" in out
        iters = [int(m.group(1)) for m in map(re.compile(r"^Iter (\d+),").match, lines + out) if m]
        assert iters == list(range(200, 20000, 200))  # every logged step of an uninterrupted run, once
        assert os.path.exists(os.path.join(run_dir, "model.ckpt-199.index"))


# ------------------------------------------------------------- divergence

def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(loaded_mnist, tmp_path, capsys):
    # Train sanely to a checkpoint, then resume at a learning rate that blows up at once.
    run_dir = script.train(tiny_config(tmp_path, training_iters=1500), fresh_copy(loaded_mnist))["run_dir"]
    good, _ = script.find_checkpoint(run_dir)
    assert good.endswith("model.ckpt-14")
    cfg = tiny_config(tmp_path, learning_rate=1e38, display_step=1)
    with pytest.raises(script.TrainingError) as err:
        script.train(cfg, fresh_copy(loaded_mnist), resume_dir=run_dir)
    assert str(err.value) == ("minibatch loss is nan at Iter 1500 (step 15): training diverged; "
                              f"last good checkpoint: {good}; lower learning_rate (now 1e+38)")
    assert script.find_checkpoint(run_dir)[0] == good
    sess, model = script.restored_session(cfg, good)
    with sess, model.graph.as_default():
        weights = sess.run(script.tf1.trainable_variables())
    assert all(np.all(np.isfinite(w)) for w in weights)


def test_non_finite_loss_through_main_is_one_line_and_non_zero(tmp_path, capsys):
    code, _, err = run_main(capsys, "--learning_rate=1e38", "--training_iters=3000", f"--out_dir={tmp_path}",
                            "--plots=0")
    assert code == 1
    assert_one_line_error(err, "minibatch loss is nan", "lower learning_rate")


# ------------------------------------------------------------ checkpoint faults

def test_full_disk_while_saving_is_reported_and_the_previous_checkpoint_stays(mnist, tmp_path, monkeypatch):
    real_save = script.tf1.train.Saver.save
    calls = []

    def save_then_fill_the_disk(self, sess, path, **kwargs):
        calls.append(path)
        if len(calls) > 1:
            raise script.tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real_save(self, sess, path, **kwargs)

    monkeypatch.setattr(script.tf1.train.Saver, "save", save_then_fill_the_disk)
    cfg = tiny_config(tmp_path, checkpoint_every=10)
    with pytest.raises(script.TrainingError) as err:
        script.train(cfg, mnist)
    (run_dir,) = [str(p) for p in (tmp_path / "runs").iterdir()]
    first = os.path.join(run_dir, "model.ckpt-10")
    assert str(err.value) == (f"could not write the checkpoint of step 20 in {run_dir}: No space left on device; "
                              f"the previous checkpoint ({first}) is intact")
    monkeypatch.undo()
    sess, model = script.restored_session(cfg, script.find_checkpoint(run_dir)[0])
    with sess:
        assert sess.run(model.global_step) == 10


def test_resume_from_a_folder_without_checkpoint(tmp_path, capsys):
    code, _, err = run_main(capsys, f"--resume={tmp_path}")
    assert code == 2
    assert_one_line_error(err, str(tmp_path), "no usable checkpoint")


def test_resume_from_a_corrupt_checkpoint(mnist, tmp_path, capsys):
    run_dir = script.train(tiny_config(tmp_path, training_iters=1500), mnist)["run_dir"]
    capsys.readouterr()
    checkpoint, _ = script.find_checkpoint(run_dir)
    with open(checkpoint + ".data-00000-of-00001", "r+b") as f:
        f.truncate(1000)
    saved_config = open(os.path.join(run_dir, "config.json")).read()
    code, _, err = run_main(capsys, f"--resume={run_dir}", "--training_iters=3000")
    assert code == 2
    assert_one_line_error(err, checkpoint, "cannot restore this checkpoint")
    assert open(os.path.join(run_dir, "config.json")).read() == saved_config


def test_eval_only_of_a_missing_path(tmp_path, capsys):
    code, _, err = run_main(capsys, f"--eval_only={tmp_path / 'nothing'}")
    assert code == 2
    assert_one_line_error(err, "neither a run folder nor a checkpoint")


def test_predict_of_a_file_that_is_not_an_image(mnist, tmp_path, capsys):
    run_dir = script.train(tiny_config(tmp_path, training_iters=1500), mnist)["run_dir"]
    capsys.readouterr()
    (tmp_path / "digit.png").write_text("not a picture")
    code, _, err = run_main(capsys, f"--predict={tmp_path / 'digit.png'}", f"--checkpoint={run_dir}")
    assert code == 2
    assert_one_line_error(err, "digit.png: cannot read this image")


# --------------------------------------------------------------- determinism

def test_same_seed_same_log(loaded_mnist, tmp_path, capsys):
    def iter_lines(seed):
        script.train(tiny_config(tmp_path, seed=seed), fresh_copy(loaded_mnist))
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Iter", "Testing"))]
    first = iter_lines(1)
    assert iter_lines(1) == first
    assert iter_lines(2) != first
