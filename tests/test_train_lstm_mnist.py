"""The tutorial, faithfully: its graph, its loop, its log lines, in-process and as a real command."""
import os
import re
import subprocess
import sys
import time

import pytest
from helpers import ITER_LINE, SCRIPT, SETTINGS, SHAPE_LINES, fresh_copy, tiny_config

import train_lstm_mnist as script
from lstm_mnist import settings
from lstm_mnist.tf_setup import tf1


def test_graph_has_the_tutorials_names_shapes_and_variables():
    model = script.build_graph(SETTINGS.make())
    for name in ("x", "y", "weights", "biases", "outputs", "pred", "cost", "optimizer",
                 "correct_pred", "accuracy", "init"):
        assert getattr(model, name) is not None, name
    assert model.outputs.shape.as_list() == [None, 28, 128]
    assert model.pred.shape.as_list() == [None, 10]
    assert model.x.name == "x:0" and model.y.name == "y:0"
    with model.graph.as_default():
        shapes = {v.name: v.shape.as_list() for v in tf1.trainable_variables()}
    assert sorted(shapes.values()) == sorted([[28 + 128, 4 * 128], [4 * 128], [128, 10], [10]])
    assert "rnn/basic_lstm_cell/kernel:0" in shapes  # as the tutorial's checkpoints named it
    (layer,) = model.layers
    assert layer.kernel.name == "rnn/basic_lstm_cell/kernel:0" and layer.outputs is model.outputs


def test_tiny_training_run_in_process(mnist, capsys, tmp_path):
    cfg = tiny_config(tmp_path)
    results = script.train(cfg, mnist)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == SHAPE_LINES
    iters = [line for line in lines if line.startswith("Iter ")]
    assert [int(ITER_LINE.match(line).group(1)) for line in iters] == [1000, 2000]
    assert results.steps == settings.last_step(cfg)
    assert results.full_test_accuracy > 0.2  # a few steps: well above chance (0.1), far from trained
    assert f"Testing Accuracy: {results.test_accuracy}" in lines


def test_overrides_change_the_run(mnist, capsys, tmp_path):
    script.train(tiny_config(tmp_path, training_iters=1000, batch_size=50, display_step=5, test_len=64), mnist)
    out = capsys.readouterr().out
    assert re.findall(r"^Iter (\d+),", out, flags=re.M) == ["250", "500", "750"]


@pytest.mark.slow
def test_script_end_to_end_from_another_folder(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, SCRIPT, "--training_iters=2000", f"--out_dir={tmp_path}", "--plots=no"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == SHAPE_LINES
    assert ITER_LINE.match(lines[4]) and lines[4].startswith("Iter 1000,")
    assert lines[5] == "Optimization Finished!"
    assert re.fullmatch(r"Testing Accuracy: [01]\.\d+", lines[6])
    assert re.fullmatch(r"Full test set: average loss \d+\.\d{4}, accuracy [01]\.\d{4} \(10000 images\)", lines[7])
    assert re.fullmatch(r"Reading: the final answer is reached, and kept, after row \d+\.\d of 28 on average "
                        r"\(10000 test images\)", lines[8])
    assert re.fullmatch(r"Training time: \d+\.\d s for 19 steps, \d+ examples/s \(with validation and checkpoints\)",
                        lines[9])
    assert re.fullmatch(r"Steady state: \d+ examples/s over steps 2-19 \(left out: the first step \d+\.\d\d s, "
                        r"validation \d+\.\d\d s, checkpoints \d+\.\d\d s\)", lines[10])
    phases = re.fullmatch(r"Time: (\d+\.\d) s so far: start-up (\d+\.\d) s, data (\d+\.\d) s, graph (\d+\.\d) s, "
                          r"session (\d+\.\d) s, training (\d+\.\d) s, scoring (\d+\.\d) s", lines[11])
    assert phases, lines[11]
    total, *parts = [float(seconds) for seconds in phases.groups()]
    assert abs(total - sum(parts)) <= 0.05 * len(parts) and total <= wall
    assert float(phases.group(6)) == float(re.search(r"(\d+\.\d) s for", lines[9]).group(1))  # training
    assert lines[12] == f"Run folder: {os.listdir(tmp_path)[0]}" and len(lines) == 13  # relative to where it ran
    assert result.stderr == ""


def test_default_loop_logs_exactly_what_the_tutorials_loop_logs(loaded_mnist, tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    script.train(cfg, fresh_copy(loaded_mnist))
    ours = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Iter", "Testing"))]

    # The tutorial's loop as written (two metric runs, TF's default threads), on the same graph, seed and data.
    mnist = fresh_copy(loaded_mnist)
    model = script.build_graph(cfg)
    x, y = model.x, model.y
    tutorial = []
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        step = 1
        while step * cfg.batch_size < cfg.training_iters:
            batch_x, batch_y = mnist.train.next_batch(cfg.batch_size)
            batch_x = batch_x.reshape((cfg.batch_size, cfg.n_steps, cfg.n_input))
            sess.run(model.optimizer, feed_dict={x: batch_x, y: batch_y})
            if step % cfg.display_step == 0:
                acc = sess.run(model.accuracy, feed_dict={x: batch_x, y: batch_y})
                loss = sess.run(model.cost, feed_dict={x: batch_x, y: batch_y})
                tutorial.append("Iter " + str(step * cfg.batch_size) + ", Minibatch Loss= "  # as written
                                + "{:.6f}".format(loss) + ", Training Accuracy= " + "{:.5f}".format(acc))  # noqa: UP032
            step += 1
        test_data = mnist.test.images[:cfg.test_len].reshape((-1, cfg.n_steps, cfg.n_input))
        test_label = mnist.test.labels[:cfg.test_len]
        tutorial.append(f"Testing Accuracy: {sess.run(model.accuracy, feed_dict={x: test_data, y: test_label})}")
    assert ours == tutorial and len(ours) == 3


def test_the_script_reads_as_the_tutorial():
    """The tutorial's names appear in the script in the tutorial's order, graph then loop."""
    source = open(SCRIPT).read()
    anchors = ["read_data_sets(", 'print("Train Images: "', "x = tf1.placeholder", "y = tf1.placeholder",
               "weights = {", "biases = {", "tf1.nn.rnn_cell.BasicLSTMCell(cfg.n_hidden, forget_bias=cfg.forget_bias)",
               "lstm_cell = ", "outputs, states = tf1.nn.dynamic_rnn(lstm_cell, inputs=sequence, dtype=tf.float32)",
               "pred = tf.matmul", "cost = tf.reduce_mean", "tf1.train.AdamOptimizer(learning_rate=cfg.learning_rate)",
               "optimizer = clipping.minimize(place.optimizer(trainer)",
               "correct_pred = tf.equal", "accuracy = tf.reduce_mean", "return Model(",
               "sess.run(model.init)", "while run.going(step * cfg.batch_size < cfg.training_iters)",
               "mnist.train.next_batch(cfg.batch_size)", "sess.run(optimizer, feed_dict={x: batch_x, y: batch_y})",
               "if step % cfg.display_step == 0:", 'print(f"Iter {step * cfg.batch_size}, Minibatch Loss= ',
               "step += 1", 'print("Optimization Finished!")', 'print("Testing Accuracy:", test_accuracy)']
    positions = [source.find(anchor) for anchor in anchors]
    assert -1 not in positions, anchors[positions.index(-1)]
    assert positions == sorted(positions)
    assert len(source.splitlines()) <= 250


def test_same_seed_same_log(loaded_mnist, tmp_path, capsys):
    def iter_lines(seed):
        script.train(tiny_config(tmp_path, seed=seed, training_iters=2000), fresh_copy(loaded_mnist))
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Iter", "Testing"))]
    first = iter_lines(1)
    assert iter_lines(1) == first
    assert iter_lines(2) != first
