"""cell = "fast": the same LSTM as BasicLSTMCell, so the same numbers and interchangeable checkpoints."""
import re

import numpy as np
import pytest
from helpers import SETTINGS, fresh_copy, tiny_config

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, hardware, scoring, settings
from lstm_mnist.tf_setup import tf, tf1


def outputs_and_gradients(cell, weights, batch_x, batch_y, precision="fp32", **sizes):
    """(the weights, the trainable variables' names, [pred, each layer's h at every step, gradients of the cost
    w.r.t. every trainable variable]) for the settings' `sizes` (n_steps, n_input, n_hidden, num_layers)
    overridden: with `weights`, or (None) the graph's initial weights with a non-zero bias (normal, 0.5)."""
    cfg = SETTINGS.make({"cell": cell, "precision": precision, **sizes})
    model = script.build_graph(cfg)
    with model.graph.as_default():
        variables = tf1.trainable_variables()
        gradients = tf.gradients(model.cost, variables)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        if weights is None:
            weights = sess.run(variables)
            weights[3] = np.random.RandomState(0).normal(0, 0.5, weights[3].shape).astype(np.float32)
        for variable, value in zip(variables, weights, strict=True):
            variable.load(value, sess)
        feed = {model.x: batch_x.reshape(-1, cfg.n_steps, cfg.n_input), model.y: batch_y}
        every_layer = [layer.outputs for layer in model.layers]
        return weights, [v.name for v in variables], sess.run([model.pred, *every_layer, *gradients], feed)


@pytest.mark.parametrize("sizes", [{"num_layers": 2},  # 28 rows, one unroll; the gradient also flows down every h
                                   # a loop of 7 chunks of 7 (as 784 pixels are 28 of 28), through two layers
                                   {"n_steps": 49, "n_input": 16, "n_hidden": 8, "num_layers": 2}],
                         ids=["28 steps, 2 layers", "49 steps, 2 layers"])
def test_fast_cell_matches_basic_cell_forward_and_backward(mnist, sizes):
    batch_x, batch_y = mnist.train.next_batch(100)
    weights, basic_names, basic = outputs_and_gradients("basic", None, batch_x, batch_y, **sizes)
    _, fast_names, fast = outputs_and_gradients("fast", weights, batch_x, batch_y, **sizes)
    assert fast_names == basic_names
    layers = [f"outputs of layer {k}" for k in range(sizes.get("num_layers", 1))]
    for name, b, f in zip(["pred", *layers, *basic_names], basic, fast, strict=True):
        assert f.shape == b.shape
        # float32 in another order of operations: measured up to 1.7e-6 of each array's largest value
        assert np.abs(f - b).max() <= 4e-6 * np.abs(b).max(), name
    assert np.abs(basic[len(layers) + 3]).max() > 1e-3  # the bottom kernel's gradient is not trivially zero


def test_bf16_matmuls_stay_close_to_fp32_and_keep_float32_weights(mnist, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_lacks_bf16", lambda: False)  # emulated bfloat16 gives the same numbers
    batch_x, batch_y = mnist.train.next_batch(100)
    weights, names, fp32 = outputs_and_gradients("fast", None, batch_x, batch_y)
    bf16_names, bf16 = outputs_and_gradients("fast", weights, batch_x, batch_y, precision="bf16")[1:]
    assert bf16_names == names
    for name, exact, rounded in zip(["pred", "outputs", *names], fp32, bf16, strict=True):  # one layer
        assert rounded.dtype == np.float32 and rounded.shape == exact.shape
        scale = np.abs(exact).max()
        # bfloat16 keeps 8 significant bits (0.4%); 28 steps of rounding stay within a few percent
        assert np.abs(rounded - exact).max() <= 0.05 * scale, name
    assert np.abs(bf16[0] - fp32[0]).max() > 1e-4  # the matmuls did run in bfloat16


@pytest.mark.parametrize("saved_with,loaded_with", [("basic", "fast"), ("fast", "basic")])
def test_checkpoint_of_one_cell_loads_in_the_other(loaded_mnist, tmp_path, capsys, saved_with, loaded_with):
    mnist = fresh_copy(loaded_mnist)  # two layers: MultiRNNCell's variable names, and the fast cell's alike
    metrics = script.train(tiny_config(tmp_path, training_iters=1500, cell=saved_with, num_layers=2, n_hidden=32),
                           mnist)
    checkpoint, _ = checkpoints.find_checkpoint(metrics.run_dir)
    cfg = tiny_config(tmp_path, cell=loaded_with, num_layers=2, n_hidden=32)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        score = scoring.evaluate(sess, model, mnist.test)
    assert np.mean(score.predicted == metrics.predicted) > 0.999  # float32 rounding may flip a near-tie
    assert abs(score.accuracy - metrics.full_test_accuracy) < 1e-3


def test_fast_training_run_logs_like_the_tutorial(mnist, tmp_path, capsys):
    cfg = tiny_config(tmp_path, cell="fast")
    metrics = script.train(cfg, mnist)
    out = capsys.readouterr().out
    assert re.findall(r"^Iter (\d+), Minibatch Loss= \d+\.\d{6}, Training Accuracy= [01]\.\d{5}$", out,
                      flags=re.M) == ["1000", "2000"]
    assert metrics.steps == settings.last_step(cfg) and metrics.full_test_accuracy > 0.2


def test_fast_cell_takes_any_batch_size():
    model = script.build_graph(SETTINGS.make({"cell": "fast"}))
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        for n in (1, 7, 100):
            assert sess.run(model.pred, {model.x: np.zeros((n, 28, 28), np.float32)}).shape == (n, 10)
