"""train_lstm_mnist.py: its graph, its loop in-process, and the real command line."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, fresh_copy, tiny_config

import train_lstm_mnist as script

SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")
ITER_LINE = re.compile(r"^Iter (\d+), Minibatch Loss= \d+\.\d{6}, Training Accuracy= [01]\.\d{5}$")
SHAPE_LINES = ["Train Images:  (55000, 784)", "Train Labels  (55000, 10)",
               "Test Images:  (10000, 784)", "Test Labels:  (10000, 10)"]


def run_script(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def test_graph_shapes_and_trainable_variables():
    model = script.build_graph(script.default_config())
    assert model.outputs.shape.as_list() == [None, 28, 128]
    assert model.pred.shape.as_list() == [None, 10]
    assert model.x.name == "x:0" and model.y.name == "y:0"
    with model.graph.as_default():
        shapes = {v.name: v.shape.as_list() for v in script.tf1.trainable_variables()}
    assert sorted(shapes.values()) == sorted([[28 + 128, 4 * 128], [4 * 128], [128, 10], [10]])
    assert any("basic_lstm_cell/kernel" in name for name in shapes)


def test_tiny_training_run_in_process(mnist, capsys, tmp_path):
    metrics = script.train(tiny_config(tmp_path), mnist)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == SHAPE_LINES
    iters = [line for line in lines if line.startswith("Iter ")]
    assert [int(ITER_LINE.match(line).group(1)) for line in iters] == [1000, 2000]
    assert metrics["steps"] == 29
    assert 0.0 <= metrics["full_test_accuracy"] <= 1.0
    assert f"Testing Accuracy: {metrics['test_accuracy']}" in lines


def test_overrides_change_the_run(mnist, capsys, tmp_path):
    script.train(tiny_config(tmp_path, training_iters=1000, batch_size=50, display_step=5, test_len=64), mnist)
    out = capsys.readouterr().out
    assert re.findall(r"^Iter (\d+),", out, flags=re.M) == ["250", "500", "750"]


def test_script_end_to_end_from_another_folder(tmp_path):
    result = run_script("--training_iters=2000", f"--out_dir={tmp_path}", "--plots=no", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == SHAPE_LINES
    assert ITER_LINE.match(lines[4]) and lines[4].startswith("Iter 1000,")
    assert lines[5] == "Optimization Finished!"
    assert re.fullmatch(r"Testing Accuracy: [01]\.\d+", lines[6])
    assert re.fullmatch(r"Full test set: average loss \d+\.\d{4}, accuracy [01]\.\d{4} \(10000 images\)", lines[7])
    assert re.fullmatch(r"Training time: \d+\.\d s for 19 steps, \d+ examples/s \(with validation and checkpoints\)",
                        lines[8])
    assert lines[9] == f"Run folder: {tmp_path}/{os.listdir(tmp_path)[0]}" and len(lines) == 10
    assert result.stderr == ""


@pytest.mark.parametrize("args,expected", [
    (["--batch_size=abc"], "--batch_size=abc: expected int"),
    (["--learning_rate", "fast"], "--learning_rate=fast: expected float"),
    (["--no_such_thing=1"], "unknown setting --no_such_thing=1; valid names: n_input, n_steps"),
    (["--predict=digit.png"], "--predict needs --checkpoint"),
    (["--checkpoint=runs/x"], "--checkpoint names the model for --predict"),
    (["--resume=a", "--eval_only=b"], "not allowed with argument"),
])
def test_bad_command_line_is_one_line_and_exit_2(args, expected):
    with pytest.raises(script.ConfigError, match=re.escape(expected)):
        script.parse_args(args)


def test_bad_command_line_through_main(capsys):
    assert script.main(["--batch_size=abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --batch_size=abc")


def test_parse_args_types():
    cfg, _ = script.parse_args(["--learning_rate=1e-3", "--batch_size", "64", "--seed=7"])
    assert cfg.learning_rate == 1e-3 and cfg.batch_size == 64 and isinstance(cfg.batch_size, int)
    assert cfg.seed == 7 and cfg.n_hidden == 128


def test_help_lists_every_setting_with_default_and_comment():
    result = run_script("--help")
    assert result.returncode == 0
    for name in script.config_defaults():
        assert f"--{name}" in result.stdout
    assert "Adam learning rate" in result.stdout and "(default: 0.001)" in result.stdout


def test_evaluate_matches_one_big_run(mnist):
    cfg = script.default_config()
    model = script.build_graph(cfg)
    with script.tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        loss, acc, _ = script.evaluate(sess, model, mnist.validation, cfg)
        whole = sess.run([model.cost, model.accuracy],
                         {model.x: script.as_sequences(mnist.validation.images, cfg), model.y: mnist.validation.labels})
    assert np.isclose(loss, whole[0], rtol=1e-5) and np.isclose(acc, whole[1])


def test_default_loop_logs_exactly_what_the_tutorials_loop_logs(loaded_mnist, tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    script.train(cfg, fresh_copy(loaded_mnist))
    ours = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Iter", "Testing"))]

    # The tutorial's loop as written (two metric runs, TF's default threads), on the same graph, seed and data.
    mnist = fresh_copy(loaded_mnist)
    model = script.build_graph(cfg)
    x, y = model.x, model.y
    tutorial = []
    with script.tf1.Session(graph=model.graph) as sess:
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
