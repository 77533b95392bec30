"""Bad input is refused before any work; faults after the start lose nothing."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, assert_one_line_error, fresh_copy, run_main, tiny_config

import data
import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, errors
from lstm_mnist.tf_setup import tf, tf1

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
    lines, err = interrupt_after(process, signal.SIGINT, lambda lines: lines[-1].startswith("Steady state:"))
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


# ------------------------------------------------------- resuming a saved run

def test_a_resume_with_another_architecture_is_one_line_and_the_run_folder_stays_usable(tiny_run_copy, capsys):
    run_dir = tiny_run_copy
    before = {name: open(os.path.join(run_dir, name), "rb").read() for name in ("config.json", "metrics.csv")}
    code, out, err = run_main(capsys, f"--resume={run_dir}", "--n_hidden=64", "--training_iters=4000")
    assert code == 2 and out == ""
    assert_one_line_error(err, "n_hidden = 64 differs from the saved run's 128")
    assert {name: open(os.path.join(run_dir, name), "rb").read() for name in before} == before
    assert run_main(capsys, run_dir, main=predict.main)[0] == 0


def test_a_checkpoint_of_other_sizes_is_one_line_naming_them(tiny_run_copy, capsys):
    path = os.path.join(tiny_run_copy, "config.json")
    record = json.load(open(path))
    record["config"]["n_hidden"] = 64  # as if config.json had been edited by hand
    json.dump(record, open(path, "w"))
    code, _, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 2
    assert_one_line_error(err, "holds Variable of shape [128, 10]", "make it [64, 10]", "the run's own settings")


def test_a_damaged_checkpoint_names_the_reason_and_an_older_one(tiny_run_copy, capsys):
    with open(os.path.join(tiny_run_copy, "model.ckpt-29.data-00000-of-00001"), "r+b") as f:
        f.truncate(1000)
    code, _, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 2
    assert_one_line_error(err, "model.ckpt-29: cannot restore this checkpoint (Read less bytes than requested)",
                          f"an older one may be intact: --resume={os.path.join(tiny_run_copy, 'model.ckpt-20')}")


@pytest.mark.parametrize("index", [b"", b"\x00\xff\xfe garbage \x00", b'model_checkpoint_path: "/x/model.ckpt-9"'],
                         ids=["empty", "binary", "names-a-missing-file"])
def test_a_damaged_checkpoint_index_falls_back_to_the_newest_complete_checkpoint(tiny_run_copy, capsys, index):
    with open(os.path.join(tiny_run_copy, "checkpoint"), "wb") as f:
        f.write(index)
    code, out, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 0
    assert err == (f"warning: {os.path.join(tiny_run_copy, 'checkpoint')} is damaged or names a missing checkpoint; "
                   f"using the newest complete one, {os.path.join(tiny_run_copy, 'model.ckpt-29')}\n")


def test_an_index_with_the_absolute_paths_of_another_folder_uses_this_folders_files(tiny_run_copy, capsys):
    with open(os.path.join(tiny_run_copy, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "/old/place/model.ckpt-20"\n'
                'all_model_checkpoint_paths: "/old/place/model.ckpt-20"\n')
    code, out, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"Model: {os.path.join(tiny_run_copy, 'model.ckpt-20')}"


def test_damaged_metrics_rows_are_dropped_with_one_warning(loaded_mnist, tiny_run_copy, tmp_path, capsys):
    path = os.path.join(tiny_run_copy, "metrics.csv")
    rows = open(path).read().splitlines()
    open(path, "w").write("\n".join([rows[0], rows[1], "20,2000,not-a-number,0.5,", "\x00\x01binary", rows[2]]) + "\n")
    cfg = tiny_config(tmp_path, training_iters=4000, eval_every=10, plots=True)
    results = script.train(cfg, fresh_copy(loaded_mnist), resume=tiny_run_copy)
    assert results["steps"] == 39
    assert capsys.readouterr().err == f"warning: {path} is damaged: kept its 2 intact rows, dropped the rest\n"
    assert [row.split(",")[0] for row in open(path).read().splitlines()] == ["step", "10", "20", "30"]


def test_resuming_keeps_keep_checkpoints_and_removes_half_written_files(loaded_mnist, tiny_run_copy, tmp_path,
                                                                         capsys):
    open(os.path.join(tiny_run_copy, "model.ckpt-30.data-00000-of-00001.tempstate123"), "wb").write(b"x" * 1000)
    for iters in (4000, 5000):
        script.train(tiny_config(tmp_path, training_iters=iters, checkpoint_every=10), fresh_copy(loaded_mnist),
                     resume=tiny_run_copy)
    assert len(checkpoints.complete_checkpoints(tiny_run_copy)) == 3
    assert not [name for name in os.listdir(tiny_run_copy) if "tempstate" in name]


def test_a_second_run_on_the_same_folder_is_refused(tiny_run_copy, capsys):
    with open(os.path.join(tiny_run_copy, ".lock"), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.truncate(0)
        held.write("pid 4242\n")
        held.flush()
        code, out, err = run_main(capsys, f"--resume={tiny_run_copy}", "--training_iters=4000")
    assert code == 2 and "Iter" not in out
    assert_one_line_error(err, f"{tiny_run_copy} is in use by another training run (pid 4242)")


def test_a_new_run_stopped_before_training_leaves_no_folder(mnist, tmp_path, monkeypatch):
    def interrupted(self, sess):
        raise errors.Interrupted(signal.SIGINT, errors.STOPS.what)
    monkeypatch.setattr(script.run_folder.TrainingRun, "start", interrupted)
    with pytest.raises(errors.Interrupted, match="before training started: nothing was saved"):
        script.train(tiny_config(tmp_path), mnist)
    assert os.listdir(tmp_path / "runs") == []


def test_a_finite_but_exploded_loss_stops_the_run(capsys, tmp_path):
    code, _, err = run_main(capsys, "--learning_rate=1e30", "--training_iters=3000", "--display_step=1",
                            f"--out_dir={tmp_path}", "--plots=0")
    assert code == 1
    assert_one_line_error(err, "(above max_loss = 10000)", "training diverged", "lower learning_rate")


def test_a_second_signal_during_steps_is_left_to_the_default_action(capsys):
    stops = errors.StopRequests()
    stops.defer("stopping after this step")
    with errors.signals_handled():
        stops.handle(signal.SIGINT, None)
        assert stops.requested == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert capsys.readouterr().err == "SIGINT: stopping after this step\n"


def test_a_signal_is_noted_where_it_lands_and_raised_at_the_next_check():
    """Raised from the handler, Interrupted landed inside TensorFlow's session code, which swallowed
    it (exit 0) or crashed (SIGSEGV) in a third of the tries: the handler must only note it."""
    with errors.signals_handled() as stops:
        stops.now("while testing: nothing to lose")
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode, here
        for _ in range(3):
            pass
        assert isinstance(stops.pending, errors.Interrupted)  # noted, not raised
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        with pytest.raises(errors.Interrupted, match="^Interrupted by SIGTERM while testing: nothing to lose$"):
            stops.now("the next phase")  # every change of phase checks first
        with pytest.raises(errors.Interrupted):
            stops.check()
    with errors.signals_handled() as stops:
        assert stops.pending is None and signal.getsignal(signal.SIGTERM) == stops.handle  # the next run starts clean


@pytest.mark.slow
def test_ctrl_c_while_tensorflow_imports_is_one_line():
    process = start("-c", "import lstm_mnist.tf_setup")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err == "Interrupted by SIGINT while importing TensorFlow: nothing was started\n"


# ------------------------------------------------------------- a full disk

@pytest.fixture
def small_disk(tmp_path):
    """A real, tiny filesystem (tmpfs of 1 MiB) to fill; skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); "
                    f"test_full_disk_while_saving_is_reported_and_the_previous_checkpoint_stays simulates the errno")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder, leave=0):
    """Fill the filesystem of `folder` up to `leave` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


@pytest.mark.slow
def test_a_full_disk_at_the_first_checkpoint_is_one_line(small_disk):
    process = subprocess.run([sys.executable, SCRIPT, "--training_iters=1500", "--checkpoint_every=10",
                              f"--out_dir={small_disk}", "--plots=0"], capture_output=True, text=True, timeout=300)
    assert process.returncode == 1
    (run_dir,) = [str(p) for p in small_disk.iterdir()]
    assert_one_line_error(process.stderr, f"could not write the checkpoint of step 10 in {run_dir}:",
                          "No space left on device", "the previous checkpoint (none) is intact")
    assert not [name for name in os.listdir(run_dir) if "tempstate" in name or name.endswith(".tmp")]


def test_a_full_disk_before_training_is_one_line_and_leaves_nothing(small_disk, mnist, capsys):
    fill(small_disk)
    with pytest.raises(errors.TrainingError, match=r"cannot write .*config\.json: No space left on device"):
        script.train(tiny_config(small_disk), mnist)
    assert os.listdir(small_disk / "runs") == []


def test_a_full_disk_at_the_plots_is_a_warning_and_the_run_is_kept(mnist, tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):  # filling a disk exactly between training and the plots is not practical
        raise OSError(28, "No space left on device")
    from lstm_mnist import plots

    monkeypatch.setattr(plots.plt.Figure, "savefig", no_space)
    results = script.train(tiny_config(tmp_path, training_iters=1500, plots=True), mnist)
    out, err = capsys.readouterr()
    assert err == (f"warning: could not write the plots in {results['run_dir']} (No space left on device); "
                   f"the model, metrics and events are saved\n")
    assert out.splitlines()[-1] == f"Run folder: {results['run_dir']}"
    assert not [name for name in os.listdir(results["run_dir"]) if name.endswith((".png", ".tmp"))]
