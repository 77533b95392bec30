"""Checkpoints: saved, kept, found, restored, and what a damaged or foreign one does."""
import csv
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import SCRIPT, assert_one_line_error, fresh_copy, run_main, tiny_checkpoint, tiny_config

import data
import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, errors, scoring
from lstm_mnist.tf_setup import tf, tf1


def test_checkpoints_are_kept_as_configured(tiny_run):
    cfg, metrics, _ = tiny_run
    index_files = sorted(glob.glob(os.path.join(metrics.run_dir, "model.ckpt-*.index")))
    assert [int(re.search(r"-(\d+)\.index$", f).group(1)) for f in index_files] == [10, 20, 29]


def test_restore_gives_the_predictions_of_the_saved_model(tiny_run, mnist):
    cfg, metrics, _ = tiny_run
    checkpoint, _ = checkpoints.find_checkpoint(metrics.run_dir)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        score = scoring.evaluate(sess, model, mnist.test)
    assert np.array_equal(score.predicted, metrics.predicted)
    assert score.accuracy == metrics.full_test_accuracy


@pytest.mark.parametrize("layers", [1, 2])
def test_resume_continues_exactly_like_an_uninterrupted_run(loaded_mnist, tmp_path, capsys, layers):
    sizes = {"num_layers": layers, "n_hidden": 128 // layers, "eval_every": 10, "validation_size": 1000}
    first = script.train(tiny_config(tmp_path, training_iters=2000, **sizes), fresh_copy(loaded_mnist))
    capsys.readouterr()
    resumed = script.train(tiny_config(tmp_path, training_iters=4000, **sizes), fresh_copy(loaded_mnist),
                           resume=first.run_dir)
    resumed_lines = capsys.readouterr().out.splitlines()
    straight = script.train(tiny_config(tmp_path, training_iters=4000, **sizes), fresh_copy(loaded_mnist))
    straight_lines = capsys.readouterr().out.splitlines()

    def progress(lines):
        return [line for line in lines if line.startswith(("Iter ", "Validation", "Testing"))]
    assert resumed_lines[4] == f"Resuming {first.run_dir} after Iter 1900 (step 19)"
    before_resume = [line for line in straight_lines if "Iter 1000" in line]  # the Iter and Validation lines
    assert len(before_resume) == 2
    assert progress(resumed_lines) == [line for line in progress(straight_lines) if line not in before_resume]
    assert resumed.steps == straight.steps == 39
    assert resumed.full_test_loss == straight.full_test_loss  # the same weights, to the last bit
    with open(os.path.join(first.run_dir, "metrics.csv"), newline="") as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["10", "20", "30"]


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


def test_resume_of_a_checkpoint_from_the_older_data_py_is_one_line(mnist, tmp_path, capsys, monkeypatch):
    newer = data.DataSet.get_state

    def older(self):  # the data position as data.py saved it before epochs were re-permuted
        state = newer(self)
        del state["epoch_order"]
        return state
    monkeypatch.setattr(data.DataSet, "get_state", older)
    run_dir = script.train(tiny_config(tmp_path, training_iters=1500), mnist).run_dir
    monkeypatch.undo()
    capsys.readouterr()
    saved_config = open(os.path.join(run_dir, "config.json")).read()
    code, _, err = run_main(capsys, f"--resume={run_dir}", "--training_iters=3000")
    assert code == 2
    assert_one_line_error(err, "older data.py", "start a new run")
    assert open(os.path.join(run_dir, "config.json")).read() == saved_config


def test_a_checkpoint_of_other_sizes_is_one_line_naming_them(tiny_run_copy, capsys):
    path = os.path.join(tiny_run_copy, "config.json")
    record = json.load(open(path))
    record["config"]["n_hidden"] = 64  # as if config.json had been edited by hand
    json.dump(record, open(path, "w"))
    code, _, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 2
    assert_one_line_error(err, "holds Variable of shape [128, 10]", "make it [64, 10]", "the run's own settings")


def test_a_damaged_checkpoint_names_the_reason_and_an_older_one(tiny_run, tiny_run_copy, capsys):
    last, older = tiny_checkpoint(tiny_run, tiny_run_copy), tiny_checkpoint(tiny_run, tiny_run_copy, before=1)
    with open(last + ".data-00000-of-00001", "r+b") as f:
        f.truncate(1000)
    code, _, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 2
    assert_one_line_error(err, f"{last}: cannot restore this checkpoint (Read less bytes than requested)",
                          f"an older one may be intact: --resume={older}")


@pytest.mark.parametrize("index", [b"", b"\x00\xff\xfe garbage \x00", b'model_checkpoint_path: "/x/model.ckpt-9"'],
                         ids=["empty", "binary", "names-a-missing-file"])
def test_a_damaged_checkpoint_index_falls_back_to_the_newest_complete_checkpoint(tiny_run, tiny_run_copy, capsys,
                                                                               index):
    with open(os.path.join(tiny_run_copy, "checkpoint"), "wb") as f:
        f.write(index)
    code, out, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 0
    assert err == (f"warning: {os.path.join(tiny_run_copy, 'checkpoint')} is damaged or names a missing checkpoint; "
                   f"using the newest complete one, {tiny_checkpoint(tiny_run, tiny_run_copy)}\n")


def test_an_index_with_the_absolute_paths_of_another_folder_uses_this_folders_files(tiny_run, tiny_run_copy, capsys):
    older = tiny_checkpoint(tiny_run, tiny_run_copy, before=1)
    with open(os.path.join(tiny_run_copy, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "/old/place/{os.path.basename(older)}"\n'
                f'all_model_checkpoint_paths: "/old/place/{os.path.basename(older)}"\n')
    code, out, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"Model: {older}"


def test_resuming_keeps_keep_checkpoints_and_removes_half_written_files(loaded_mnist, tiny_run_copy, tmp_path,
                                                                         capsys):
    open(os.path.join(tiny_run_copy, "model.ckpt-30.data-00000-of-00001.tempstate123"), "wb").write(b"x" * 1000)
    for iters in (4000, 5000):
        script.train(tiny_config(tmp_path, training_iters=iters, checkpoint_every=10), fresh_copy(loaded_mnist),
                     resume=tiny_run_copy)
    assert len(checkpoints.complete_checkpoints(tiny_run_copy)) == 3
    assert not [name for name in os.listdir(tiny_run_copy) if "tempstate" in name]


@pytest.mark.slow
def test_a_full_disk_at_the_first_checkpoint_is_one_line(small_disk):
    process = subprocess.run([sys.executable, SCRIPT, "--training_iters=1500", "--checkpoint_every=10",
                              f"--out_dir={small_disk}", "--plots=0"], capture_output=True, text=True, timeout=300)
    assert process.returncode == 1
    (run_dir,) = [str(p) for p in small_disk.iterdir()]
    assert_one_line_error(process.stderr, f"could not write the checkpoint of step 10 in {run_dir}:",
                          "No space left on device", "the previous checkpoint (none) is intact")
    assert not [name for name in os.listdir(run_dir) if "tempstate" in name or name.endswith(".tmp")]
