"""The run folder: its name, its lock, and what a run that stops early leaves in it."""
import fcntl
import os
import re
import shutil
import signal

import numpy as np
import pytest
from helpers import assert_one_line_error, fill, fresh_copy, run_main, tiny_checkpoint, tiny_config

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, context, errors, run_folder
from lstm_mnist.tf_setup import tf1


def test_run_folder_is_named_by_time_and_printed_last(tiny_run):
    cfg, metrics, lines = tiny_run
    assert re.fullmatch(r"\d{8}-\d{6}", os.path.basename(metrics.run_dir))
    assert lines[-1] == f"Run folder: {metrics.run_dir}"


def test_second_run_in_the_same_second_gets_its_own_folder(tmp_path):
    first, second = run_folder.create_run_dir(str(tmp_path)), run_folder.create_run_dir(str(tmp_path))
    assert first != second and os.path.isdir(first) and os.path.isdir(second)


def test_a_moved_run_folder_still_resumes_and_scores(tiny_run, tmp_path, capsys):
    _, metrics, lines = tiny_run
    moved = str(tmp_path / "moved")
    shutil.copytree(metrics.run_dir, moved)
    assert predict.main([moved]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Model: {tiny_checkpoint(tiny_run, moved)}"
    assert out[1:] == [line for line in lines if line.startswith(("Testing Accuracy:", "Full test set:", "Reading:"))]


def test_out_dir_that_cannot_be_created_fails_at_once(capsys, tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    code, out, err = run_main(capsys, f"--out_dir={tmp_path / 'blocker' / 'runs'}")
    assert code == 2 and "Iter" not in out
    assert_one_line_error(err, "out_dir = ", "cannot create a run folder", "writable out_dir")


def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(loaded_mnist, tiny_run, tiny_run_copy,
                                                                          tmp_path, capsys):
    # Resume a sane run at a learning rate that blows up at once.
    run_dir = tiny_run_copy
    good, _ = checkpoints.find_checkpoint(run_dir)
    assert good == tiny_checkpoint(tiny_run, run_dir)
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
    def interrupted(self, session):
        raise errors.Interrupted(signal.SIGINT, context.current().signals.what)
    monkeypatch.setattr(script.runs.Run, "start", interrupted)
    with pytest.raises(errors.Interrupted, match="before training started: nothing was saved"):
        script.train(tiny_config(tmp_path), mnist)
    assert os.listdir(tmp_path / "runs") == []


def test_a_finite_but_exploded_loss_stops_the_run(capsys, tmp_path):
    code, _, err = run_main(capsys, "--learning_rate=1e30", "--training_iters=3000", "--display_step=1",
                            f"--out_dir={tmp_path}", "--plots=0")
    assert code == 1
    assert_one_line_error(err, "(above max_loss = 10000)", "training diverged", "lower learning_rate")


def test_a_full_disk_before_training_is_one_line_and_leaves_nothing(small_disk, mnist, capsys):
    fill(small_disk)
    with pytest.raises(errors.TrainingError, match=r"cannot write .*config\.json: No space left on device; free some "
                                                   r"space \(or make it writable\), then start the run again "
                                                   r"\(nothing was trained; the new run folder is removed\)$"):
        script.train(tiny_config(small_disk), mnist)
    assert os.listdir(small_disk / "runs") == []
