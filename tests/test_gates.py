"""The gates (write, keep, read) after every row: from the graph, for both cells, against an LSTM written in NumPy."""
import re

import numpy as np
import pytest
from helpers import SETTINGS, tiny_checkpoint
from PIL import Image

import predict
from lstm_mnist import checkpoints, gates, saved_run
from lstm_mnist.tf_setup import tf


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(images, kernel, bias, forget_bias):
    """The LSTM equations, step by step, in NumPy (float64): the test's oracle, written from the
    equations (gate blocks i, j, f, o of [x_t, h_(t-1)] @ kernel + bias), not from the project's code."""
    n_hidden = bias.shape[0] // 4
    h = c = np.zeros((len(images), n_hidden))
    every = {name: [] for name in ("write", "keep", "read", "candidate", "cell", "output")}
    for x_t in np.transpose(images, (1, 0, 2)):
        i, j, f, o = np.split(np.concatenate([x_t, h], axis=1) @ kernel + bias, 4, axis=1)
        write, keep, read, candidate = sigmoid(i), sigmoid(f + forget_bias), sigmoid(o), np.tanh(j)
        c = keep * c + write * candidate
        h = read * np.tanh(c)
        for name, value in zip(every, (write, keep, read, candidate, c, h), strict=True):
            every[name].append(value)
    return {name: np.stack(values, axis=1) for name, values in every.items()}


def test_both_cells_give_every_layers_gates_of_a_numpy_lstm_on_a_trained_checkpoint(stacked_run, mnist):
    images = mnist.test.images[:40].reshape(-1, 28, 28)
    checkpoint = checkpoints.latest_checkpoint(stacked_run[1].run_dir)
    reader = tf.train.load_checkpoint(checkpoint)
    expected, inputs = [], images.astype(np.float64)
    for layer in range(2):  # the second layer reads the outputs of the first
        kernel, bias = (reader.get_tensor(f"rnn/multi_rnn_cell/cell_{layer}/basic_lstm_cell/{name}").astype(np.float64)
                        for name in ("kernel", "bias"))
        expected.append(numpy_lstm(inputs, kernel, bias, stacked_run[0].forget_bias))
        inputs = expected[-1]["output"]
    assert expected[0]["keep"].std() > 0.01 and np.abs(expected[1]["cell"]).max() > 0.1  # gates that vary, cells hold
    for cell in ("basic", "fast"):  # the basic cell's lower layer replayed, the fast cell's its own outputs
        cfg, _ = saved_run.open_saved_run(stacked_run[1].run_dir, {"cell": cell}, SETTINGS)
        sess, model = predict.restored_session(cfg, checkpoint)
        with sess:
            found = gates.gates_of(sess, model.gates, model.feed(images))
            statistics = sess.run([layer.statistics for layer in model.gates], model.feed(images))
        for layer in range(2):
            assert set(found[layer]) == set(expected[layer])
            for name, values in expected[layer].items():
                assert found[layer][name].shape == (40, 28, 16)
                np.testing.assert_allclose(found[layer][name], values, atol=1e-5, rtol=0,
                                           err_msg=f"{cell}, layer {layer}: {name}")
            for g, name in enumerate(gates.GATES):  # per unit, over the images and their rows
                gate, one_step = expected[layer][name], 1 / (40 * 28)  # float32 may put a step on the other side
                np.testing.assert_allclose(statistics[layer][g, 2], gate.mean(axis=(0, 1)), atol=1e-5)
                np.testing.assert_allclose(statistics[layer][g, 0], (gate < 0.1).mean(axis=(0, 1)), atol=one_step)
                np.testing.assert_allclose(statistics[layer][g, 1], (gate > 0.9).mean(axis=(0, 1)), atol=one_step)


def test_a_stack_has_a_gates_line_per_layer():
    statistics = np.full((3, 3, 4), 0.5)
    assert gates.gates_line(statistics, 35, 2, 3).startswith("Gates (layer 2 of 3): the cell writes 0.50, keeps ")


def test_the_gates_line_says_how_open_each_gate_is_and_how_often_saturated():
    statistics = np.zeros((3, 3, 4))
    statistics[:, 2] = [[0.5] * 4, [0.8, 0.9, 0.7, 0.8], [0.25] * 4]  # the mean of each gate, unit by unit
    statistics[1, 1] = [0.5, 0.5, 0, 0]  # the keep gate of two units is open half the time
    statistics[2, 0] = [0, 0, 0, 0.04]  # the read gate of one unit is shut 4% of the time
    assert gates.gates_line(statistics, 1000) == (
        "Gates: the cell writes 0.50, keeps 0.80 and reads 0.25 on average (0 shut, 1 open); saturated (below 0.1 "
        "or above 0.9): 0.0%, 25.0% and 1.0% of the time (1000 test images)")


def test_a_run_with_plots_has_the_gates_line_after_the_reading_line_and_gates_png(tiny_run, mnist):
    cfg, results, lines = tiny_run
    reading = [k for k, line in enumerate(lines) if line.startswith("Reading: ")]
    assert len(reading) == 1 and lines[reading[0] + 1].startswith("Gates: ")
    found = re.fullmatch(r"Gates: the cell writes (\S+), keeps (\S+) and reads (\S+) on average .* of the time "
                         r"\(1000 test images\)", lines[reading[0] + 1])
    sess, model = predict.restored_session(cfg, tiny_checkpoint(tiny_run))
    with sess:
        statistics = sess.run(model.gates[0].statistics, model.feed(mnist.test.images[:1000]))
    assert [float(m) for m in found.groups()] == pytest.approx(statistics[:, 2].mean(axis=1), abs=0.005)
    with Image.open(f"{results.run_dir}/gates.png") as png:
        assert png.format == "PNG" and png.size == (1400, 870)
