"""The gates (write, keep, read) after every row: from the graph, for both cells, against an LSTM written in NumPy."""
import re

import numpy as np
import pytest
from helpers import SETTINGS, tiny_checkpoint
from PIL import Image

import predict
import train_lstm_mnist as script
from lstm_mnist import gates
from lstm_mnist.tf_setup import tf, tf1


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


def checkpoint_gates(tiny_run, cell, images):
    cfg = SETTINGS.make({**tiny_run[0].__dict__, "cell": cell})
    sess, model = predict.restored_session(cfg, tiny_checkpoint(tiny_run))
    with sess:
        feed = model.feed(images)
        return gates.gates_of(sess, model.gates, feed)[0], sess.run(model.gates[0].statistics, feed)


def test_both_cells_give_the_gates_of_a_numpy_lstm_on_a_trained_checkpoint(tiny_run, mnist):
    images = mnist.test.images[:40].reshape(-1, 28, 28).astype(np.float64)
    reader = tf.train.load_checkpoint(tiny_checkpoint(tiny_run))
    kernel, bias = (reader.get_tensor(f"rnn/basic_lstm_cell/{name}") for name in ("kernel", "bias"))
    expected = numpy_lstm(images, kernel.astype(np.float64), bias.astype(np.float64), tiny_run[0].forget_bias)
    assert expected["keep"].std() > 0.01 and np.abs(expected["cell"]).max() > 0.1  # gates that vary, a cell that holds
    for cell in ("basic", "fast"):
        found, statistics = checkpoint_gates(tiny_run, cell, images)
        assert set(found) == set(expected)
        for name, values in expected.items():
            assert found[name].shape == (40, 28, tiny_run[0].n_hidden)
            np.testing.assert_allclose(found[name], values, atol=1e-5, rtol=0, err_msg=f"{cell}: {name}")
        for g, name in enumerate(gates.GATES):  # per unit, over the images and their rows
            np.testing.assert_allclose(statistics[g, 2], expected[name].mean(axis=(0, 1)), atol=1e-5)
            np.testing.assert_array_equal(statistics[g, 0], (expected[name] < 0.1).mean(axis=(0, 1)))
            np.testing.assert_array_equal(statistics[g, 1], (expected[name] > 0.9).mean(axis=(0, 1)))


def test_every_layer_of_a_stack_gives_the_gates_of_a_numpy_lstm_stacked_both_cells(mnist):
    images = mnist.test.images[:6].reshape(-1, 28, 28)
    for cell in ("basic", "fast"):
        model = script.build_graph(SETTINGS.make({"num_layers": 2, "n_hidden": 16, "cell": cell}))
        with tf1.Session(graph=model.graph) as sess:
            sess.run(model.init)
            found = gates.gates_of(sess, model.gates, model.feed(images))
            statistics = sess.run([layer.statistics for layer in model.gates], model.feed(images))
            weights = sess.run([(layer.kernel, layer.bias) for layer in model.layers])
        inputs = images.astype(np.float64)
        for layer, (kernel, bias) in enumerate(weights):  # layer 1 reads the outputs of layer 0
            expected = numpy_lstm(inputs, kernel.astype(np.float64), bias.astype(np.float64), 1.0)
            for name, values in expected.items():
                np.testing.assert_allclose(found[layer][name], values, atol=1e-5, err_msg=f"{cell} {layer}: {name}")
            np.testing.assert_allclose(statistics[layer][1, 2], expected["keep"].mean(axis=(0, 1)), atol=1e-5)
            inputs = expected["output"]
        assert np.abs(found[1]["output"] - found[0]["output"]).max() > 0.01  # two layers, not one twice


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
    _, statistics = checkpoint_gates(tiny_run, cfg.cell, mnist.test.images[:1000])
    assert [float(m) for m in found.groups()] == pytest.approx(statistics[:, 2].mean(axis=1), abs=0.005)
    with Image.open(f"{results.run_dir}/gates.png") as png:
        assert png.format == "PNG" and png.size == (1400, 870)
