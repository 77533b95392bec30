"""The sequential-MNIST papers' recipes as settings: the optimizer, the first weights, the best checkpoint,
the progress of a long run; the defaults stay the tutorial's."""
import json
import os
import time
import types

import numpy as np
import pytest
from helpers import SETTINGS, assert_one_line_error, fresh_copy, run_main, tiny_config

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, metrics, phases, saved_run
from lstm_mnist.tf_setup import tf1


def first_weights(**settings):
    """Each layer's kernel and bias as the session starts."""
    model = script.build_graph(SETTINGS.make(settings))
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        return sess.run([(layer.kernel, layer.bias) for layer in model.layers])


@pytest.mark.parametrize("cell", ["basic", "fast"])
def test_the_recurrent_weights_start_orthogonal_or_as_the_identity_and_the_input_rows_as_the_cells(cell):
    sizes = {"cell": cell, "num_layers": 2, "n_hidden": 16}
    (own, _), _ = first_weights(**sizes)
    for recurrent_init in ("orthogonal", "identity"):
        for layer, (kernel, bias) in enumerate(first_weights(**sizes, recurrent_init=recurrent_init)):
            n_input = kernel.shape[0] - 16
            if layer == 0:  # the same seed: the x rows are the cell's own Glorot uniform ones
                np.testing.assert_array_equal(kernel[:n_input], own[:n_input])
            for gate, block in zip("ijfo", np.split(kernel[n_input:], 4, axis=1), strict=True):
                if recurrent_init == "identity" and gate == "j":
                    np.testing.assert_array_equal(block, np.eye(16))
                else:
                    np.testing.assert_allclose(block @ block.T, np.eye(16), atol=1e-5)
            assert not bias.any()


def test_chrono_initialization_spreads_the_keep_gates_time_scales_up_to_t():
    (kernel, bias), = first_weights(chrono_init=784, forget_bias=1.0, n_hidden=64)
    i, j, f, o = np.split(bias, 4)
    keep = f + 1.0  # the cell adds forget_bias at run time: the keep gate's bias is log U(1, 783)
    assert 0 <= keep.min() and keep.max() <= np.log(783) and keep.std() > 0.5
    np.testing.assert_allclose(i, -keep, atol=1e-6)
    assert not j.any() and not o.any()
    (default_kernel, _), = first_weights(n_hidden=64)
    np.testing.assert_array_equal(kernel, default_kernel)  # the weights stay the cell's


def test_rmsprop_trains_keeps_its_slots_in_the_checkpoint_and_a_resume_keeps_it(loaded_mnist, tmp_path, capsys):
    results = script.train(tiny_config(tmp_path, optimizer="rmsprop", rmsprop_momentum=0.5, training_iters=1000),
                           fresh_copy(loaded_mnist))
    saved = dict(tf1.train.list_variables(checkpoints.latest_checkpoint(results.run_dir)))
    # TF1's RMSProp keeps the mean square (RMSProp) and the momentum (RMSProp_1) of every variable
    assert {"rnn/basic_lstm_cell/kernel/RMSProp", "rnn/basic_lstm_cell/kernel/RMSProp_1"} <= set(saved)
    assert not any(name.endswith("/Adam") for name in saved)
    code, _, err = run_main(capsys, f"--resume={results.run_dir}", "--optimizer=adam")
    assert code == 2
    assert_one_line_error(err, "optimizer = adam differs from the saved run's rmsprop")


@pytest.mark.parametrize("setting,words", [
    ("--optimizer=sgd", 'optimizer = sgd is not allowed: must be "adam" or "rmsprop"'),
    ("--recurrent_init=eye", 'recurrent_init = eye is not allowed: must be "cell" or "orthogonal" or "identity"'),
    ("--rmsprop_decay=-0.1", "rmsprop_decay = -0.1 is not allowed: must be between 0 and 1"),
    ("--rmsprop_momentum=1", "rmsprop_momentum = 1.0 is not allowed"),
    ("--chrono_init=2", "chrono_init = 2 is not allowed: must be 0 (off) or >= 3"),
])
def test_a_bad_recipe_setting_is_one_line_and_writes_nothing(capsys, tmp_path, setting, words):
    code, out, err = run_main(capsys, setting, f"--out_dir={tmp_path}")
    assert code == 2 and out == ""
    assert_one_line_error(err, words)
    assert os.listdir(tmp_path) == []


def test_the_best_checkpoint_is_kept_and_the_test_set_is_scored_at_it(loaded_mnist, tmp_path, capsys):
    cfg = tiny_config(tmp_path, keep_best=True, eval_every=5, training_iters=1000, validation_size=500)
    first = script.train(cfg, fresh_copy(loaded_mnist))
    best_before = json.load(open(os.path.join(first.run_dir, "best.json")))
    capsys.readouterr()
    results = script.train(tiny_config(tmp_path, keep_best=True, eval_every=5, training_iters=2000,
                                       validation_size=500), fresh_copy(loaded_mnist), resume=first.run_dir)
    lines = capsys.readouterr().out.splitlines()
    rows = [row for row in metrics.read_metrics(os.path.join(results.run_dir, "metrics.csv"))
            if row["validation_accuracy"]]
    best_row = max(rows, key=lambda row: float(row["validation_accuracy"]))  # the first of the best
    best = json.load(open(os.path.join(results.run_dir, "best.json")))
    assert best["step"] == int(best_row["step"]) and f"{best['validation_accuracy']:.5f}" == \
        best_row["validation_accuracy"]
    step, score = results.best
    assert step == best["step"] > best_before["step"]  # bettered after the resume: the older one is gone
    assert sorted(name for name in os.listdir(results.run_dir) if name.startswith("best.ckpt-")) == \
        [f"{best['checkpoint']}.data-00000-of-00001", f"{best['checkpoint']}.index"]
    said = [line for line in lines if line.startswith("Best validation accuracy: ")]
    assert said == [f"Best validation accuracy: {best_row['validation_accuracy']} at Iter {step * 100} (step {step}); "
                    f"there, the full test set: average loss {score.loss:.4f}, accuracy {score.accuracy:.4f} "
                    f"(10000 images, {os.path.join(results.run_dir, best['checkpoint'])})"]
    assert lines.index(said[0]) == 1 + next(k for k, line in enumerate(lines) if line.startswith("Reading: "))
    again = predict.score(*saved_run.open_saved_run(os.path.join(results.run_dir, best["checkpoint"]), {}, SETTINGS))
    assert again.accuracy == score.accuracy  # the very model: predict.py scores it alike


def test_metrics_give_the_training_time_and_an_older_metrics_csv_still_reads(tmp_path, tiny_run):
    rows = metrics.read_metrics(os.path.join(tiny_run[1].run_dir, "metrics.csv"))
    seconds = [float(row["seconds"]) for row in rows]
    assert seconds == sorted(seconds) and 0 < seconds[-1] <= tiny_run[1].train_seconds + 1
    older = tmp_path / "metrics.csv"
    older.write_text("step,examples,minibatch_loss,minibatch_accuracy,validation_accuracy\n10,1000,2.1,0.2,\n")
    assert metrics.read_metrics(str(older)) == [{"step": "10", "examples": "1000", "minibatch_loss": "2.1",
                                                 "minibatch_accuracy": "0.2", "validation_accuracy": "",
                                                 "seconds": ""}]


def test_time_to_accuracy_is_the_first_validation_at_or_above_each_threshold(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,examples,minibatch_loss,minibatch_accuracy,validation_accuracy,seconds\n"
                    "10,320,2.1,0.2,,1.5\n20,640,1.2,0.5,0.50000,3.0\n30,960,0.9,0.7,0.91000,4.5\n"
                    "40,1280,0.8,0.8,0.89000,6.0\n50,1600,0.5,0.9,0.95000,7.5\n")
    reached = metrics.time_to_accuracy(metrics.read_metrics(str(path)), [0.5, 0.9, 0.95, 0.98])
    assert {threshold: row and row["step"] for threshold, row in reached.items()} == \
        {0.5: "20", 0.9: "30", 0.95: "50", 0.98: None}


def test_a_long_run_says_how_far_along_it_is_and_when_it_should_end(mnist, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(phases.Progress, "FIRST_S", 0)
    monkeypatch.setattr(phases.Progress, "EVERY_S", 0)
    progress = phases.Progress(train_examples=1000)
    short = types.SimpleNamespace(times=types.SimpleNamespace(started=time.perf_counter() - 1), done=0, last_step=20,
                                  cfg=types.SimpleNamespace(batch_size=100))
    for number in range(2, 21):  # 20 steps at about 1 s each: under LONG_S, nothing to say
        progress.after_run(short, None, types.SimpleNamespace(number=number))
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(phases.Progress, "LONG_S", 0)
    script.train(tiny_config(tmp_path, training_iters=2000), mnist)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Progress: ")]
    assert len(lines) == 18 and lines[0].startswith("Progress: step 2 of 19 (11%, epoch 0.0 of 0.0), ")
    assert lines[-1].startswith("Progress: step 19 of 19 (100%, ") and "about 0 s to go (ends around " in lines[-1]
    assert phases.duration(45) == "45 s" and phases.duration(720) == "12 min" and phases.duration(11100) == "3 h 05 min"
