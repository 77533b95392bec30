"""Bad input is refused before any work; faults after the start lose nothing."""
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, assert_one_line_error, fresh_copy, run_main, tiny_config

import checkpoints
import data
import errors
import predict
import train_lstm_mnist as script
from tf_setup import tf, tf1

SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """A copy of the session's tiny run folder, for a test that changes it: its path."""
    copy = str(tmp_path / "run")
    shutil.copytree(tiny_run[1]["run_dir"], copy)
    return copy


# ---------------------------------------------------------------- bad paths

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
    def denied(path, mode="r", *args, **kwargs):  # root reads anything: the errno is simulated
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(data, "open", denied, raising=False)
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
    assert_one_line_error(err, f"{data.TRAIN_IMAGES} holds 60000 images but {data.TRAIN_LABELS} holds 10000 labels",
                          "different sets")


# --------------------------------------------------------------- interrupts

def start(*command):
    return subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def interrupt_after(process, signum, printed):
    """Send `signum` once `printed(lines so far)` holds; (all stdout lines, stderr)."""
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if printed(lines):
                process.send_signal(signum)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return lines + out.splitlines(), err


def logged_steps(count):
    return lambda lines: sum(x.startswith("Iter ") for x in lines) == count


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signum):
    process = start(SCRIPT, "--training_iters=8000", "--display_step=2", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after(process, signum, logged_steps(3))
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
        assert iters == list(range(200, 8000, 200))  # every logged step of an uninterrupted run, once
        assert os.path.exists(os.path.join(run_dir, "model.ckpt-79.index"))


@pytest.mark.slow
def test_a_signal_while_scoring_the_test_set_is_not_lost(tmp_path):
    process = start(SCRIPT, "--training_iters=1500", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after(process, signal.SIGTERM, lambda lines: lines[-1].startswith("Testing Accuracy:"))
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert process.returncode == 143
    assert err == (f"Interrupted by SIGTERM while scoring the test set: training is finished and saved in {run_dir}; "
                   f"score it with: python predict.py {run_dir}\n")
    assert os.path.exists(os.path.join(run_dir, "model.ckpt-14.index"))


@pytest.mark.slow
def test_ctrl_c_while_writing_plots_says_what_is_saved(tmp_path):
    process = start(SCRIPT, "--training_iters=1500", f"--out_dir={tmp_path}")
    lines, err = interrupt_after(process, signal.SIGINT, lambda lines: lines[-1].startswith("Training time:"))
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert process.returncode == 130
    assert err == f"Interrupted by SIGINT while writing plots: the model, metrics and events are saved in {run_dir}\n"


@pytest.mark.slow
def test_ctrl_c_while_predict_scores(tiny_run):
    process = start(os.path.join(ROOT, "predict.py"), tiny_run[1]["run_dir"])
    lines, err = interrupt_after(process, signal.SIGINT, lambda lines: lines[-1].startswith("Model:"))
    assert process.returncode == 130
    assert err == "Interrupted by SIGINT while scoring the test set: nothing is written, nothing to lose\n"


# ------------------------------------------------------------- divergence

def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(loaded_mnist, tiny_run_copy, tmp_path,
                                                                          capsys):
    # Resume a sane run at a learning rate that blows up at once.
    run_dir = tiny_run_copy
    good, _ = checkpoints.find_checkpoint(run_dir)
    assert good.endswith("model.ckpt-29")
    cfg = tiny_config(tmp_path, learning_rate=1e38, display_step=1, training_iters=4000)
    with pytest.raises(errors.TrainingError) as err:
        script.train(cfg, fresh_copy(loaded_mnist), resume=run_dir)
    assert str(err.value) == ("minibatch loss is nan at Iter 3000 (step 30): training diverged; "
                              f"last good checkpoint: {good}; lower learning_rate (now 1e+38)")
    assert checkpoints.find_checkpoint(run_dir)[0] == good
    sess, model = predict.restored_session(cfg, good)
    with sess, model.graph.as_default():
        weights = sess.run(tf1.trainable_variables())
    assert all(np.all(np.isfinite(w)) for w in weights)


def test_non_finite_loss_through_main_is_one_line_and_non_zero(tmp_path, capsys):
    code, _, err = run_main(capsys, "--learning_rate=1e38", "--training_iters=3000", f"--out_dir={tmp_path}",
                            "--plots=0")
    assert code == 1
    assert_one_line_error(err, "minibatch loss is nan", "lower learning_rate")


# ------------------------------------------------------------ checkpoint faults

def test_full_disk_while_saving_is_reported_and_the_previous_checkpoint_stays(mnist, tmp_path, monkeypatch):
    real_save = tf1.train.Saver.save
    calls = []

    def save_then_fill_the_disk(self, sess, path, **kwargs):
        calls.append(path)
        if len(calls) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real_save(self, sess, path, **kwargs)

    monkeypatch.setattr(tf1.train.Saver, "save", save_then_fill_the_disk)
    cfg = tiny_config(tmp_path, checkpoint_every=10)
    with pytest.raises(errors.TrainingError) as err:
        script.train(cfg, mnist)
    (run_dir,) = [str(p) for p in (tmp_path / "runs").iterdir()]
    first = os.path.join(run_dir, "model.ckpt-10")
    assert str(err.value) == (f"could not write the checkpoint of step 20 in {run_dir}: No space left on device; "
                              f"the previous checkpoint ({first}) is intact")
    monkeypatch.undo()
    sess, model = predict.restored_session(cfg, checkpoints.find_checkpoint(run_dir)[0])
    with sess:
        assert sess.run(model.global_step) == 10


def test_resume_from_a_folder_without_checkpoint(tmp_path, capsys):
    code, _, err = run_main(capsys, f"--resume={tmp_path}")
    assert code == 2
    assert_one_line_error(err, str(tmp_path), "no usable checkpoint")


def test_resume_from_a_corrupt_checkpoint(tiny_run_copy, capsys):
    run_dir = tiny_run_copy
    checkpoint, _ = checkpoints.find_checkpoint(run_dir)
    with open(checkpoint + ".data-00000-of-00001", "r+b") as f:
        f.truncate(1000)
    saved_config = open(os.path.join(run_dir, "config.json")).read()
    code, _, err = run_main(capsys, f"--resume={run_dir}", "--training_iters=4000")
    assert code == 2
    assert_one_line_error(err, checkpoint, "cannot restore this checkpoint")
    assert open(os.path.join(run_dir, "config.json")).read() == saved_config


@pytest.mark.parametrize("path", ["nothing", ""], ids=["missing", "empty"])
def test_predict_or_resume_of_a_missing_path(tmp_path, capsys, path):
    for main, args in ((predict.main, [str(tmp_path / path) if path else ""]),
                       (script.main, [f"--resume={tmp_path / path if path else ''}"])):
        code, out, err = run_main(capsys, *args, main=main)
        assert code == 2 and out == ""
        assert_one_line_error(err, "neither a run folder nor a checkpoint" if path else "an empty path")


def test_predict_of_a_file_that_is_not_an_image(tiny_run, tmp_path, capsys):
    (tmp_path / "digit.png").write_text("not a picture")
    code, _, err = run_main(capsys, tiny_run[1]["run_dir"], str(tmp_path / "digit.png"), main=predict.main)
    assert code == 2
    assert_one_line_error(err, "digit.png: cannot read this image")


# --------------------------------------------------------------- determinism

def test_same_seed_same_log(loaded_mnist, tmp_path, capsys):
    def iter_lines(seed):
        script.train(tiny_config(tmp_path, seed=seed, training_iters=2000), fresh_copy(loaded_mnist))
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Iter", "Testing"))]
    first = iter_lines(1)
    assert iter_lines(1) == first
    assert iter_lines(2) != first


def test_resume_of_a_checkpoint_from_the_older_data_py_is_one_line(mnist, tmp_path, capsys, monkeypatch):
    newer = data.DataSet.get_state

    def older(self):  # the data position as data.py saved it before epochs were re-permuted
        state = newer(self)
        del state["epoch_order"]
        return state
    monkeypatch.setattr(data.DataSet, "get_state", older)
    run_dir = script.train(tiny_config(tmp_path, training_iters=1500), mnist)["run_dir"]
    monkeypatch.undo()
    capsys.readouterr()
    saved_config = open(os.path.join(run_dir, "config.json")).read()
    code, _, err = run_main(capsys, f"--resume={run_dir}", "--training_iters=3000")
    assert code == 2
    assert_one_line_error(err, "older data.py", "start a new run")
    assert open(os.path.join(run_dir, "config.json")).read() == saved_config
