"""num_layers: stacked LSTM layers (TF1's MultiRNNCell), through everything a run offers, both cells."""
import os
import re

import numpy as np
import pytest
from helpers import SETTINGS, assert_one_line_error, fresh_copy, run_main, tiny_config

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, errors, scoring
from lstm_mnist.tf_setup import tf


def test_a_stack_names_its_variables_as_multi_rnn_cell_does(stacked_run):
    reader = tf.train.load_checkpoint(checkpoints.latest_checkpoint(stacked_run[1].run_dir))
    saved = reader.get_variable_to_shape_map()
    assert saved["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"] == [28 + 16, 64]
    assert saved["rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel"] == [16 + 16, 64]
    assert "rnn/basic_lstm_cell/kernel" not in saved


def test_a_stack_logs_like_the_tutorial_with_a_gates_line_and_picture_per_layer(stacked_run):
    _, results, lines = stacked_run
    assert sum(line.startswith("Iter ") for line in lines) == 1 and "Optimization Finished!" in lines
    reading = next(k for k, line in enumerate(lines) if line.startswith("Reading: "))
    assert re.match(r"Gates \(layer 1 of 2\): the cell writes ", lines[reading + 1])
    assert re.match(r"Gates \(layer 2 of 2\): the cell writes ", lines[reading + 2])
    assert os.path.isfile(os.path.join(results.run_dir, "gates.png"))
    assert os.path.isfile(os.path.join(results.run_dir, "gates-layer2.png"))


def test_a_stack_of_fast_cells_resumes_exactly_like_an_uninterrupted_run(loaded_mnist, tmp_path, capsys):
    # (the tutorial's cell: test_checkpoints; its layers as the fast cell's: test_fast_lstm)
    sizes = {"num_layers": 2, "n_hidden": 16, "cell": "fast", "eval_every": 10, "checkpoint_every": 10}
    first = script.train(tiny_config(tmp_path, training_iters=1000, **sizes), fresh_copy(loaded_mnist))
    resumed = script.train(tiny_config(tmp_path, training_iters=2500, **sizes), fresh_copy(loaded_mnist),
                           resume=first.run_dir)
    capsys.readouterr()
    straight = script.train(tiny_config(tmp_path, training_iters=2500, **sizes), fresh_copy(loaded_mnist))
    assert resumed.steps == straight.steps == 24
    assert resumed.full_test_loss == straight.full_test_loss  # the same weights, to the last bit
    np.testing.assert_array_equal(resumed.predicted, straight.predicted)


def test_a_stack_is_not_restored_into_another_number_of_layers(stacked_run, tiny_run, capsys):
    code, _, err = run_main(capsys, "--resume=" + stacked_run[1].run_dir, "--num_layers=3")
    assert code == 2
    assert_one_line_error(err, "num_layers = 3 differs from the saved run's 2")
    cfg = SETTINGS.make({**vars(tiny_run[0]), "num_layers": 2})
    with pytest.raises(errors.ConfigError, match="holds no rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel .*"
                                                 "another num_layers than the settings' 2"):
        predict.restored_session(cfg, checkpoints.latest_checkpoint(tiny_run[1].run_dir))


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two"])
def test_a_bad_num_layers_is_one_line(capsys, tmp_path, value):
    code, out, err = run_main(capsys, f"--num_layers={value}", f"--out_dir={tmp_path}")
    assert code == 2 and out == ""
    assert_one_line_error(err, f"--num_layers={value}" if value in ("1.5", "two") else f"num_layers = {value}")
    assert os.listdir(tmp_path) == []


def test_the_scored_set_is_the_models_own_answer_at_every_step(stacked_run, mnist):
    cfg, results, _ = stacked_run
    sess, model = predict.restored_session(cfg, checkpoints.latest_checkpoint(results.run_dir))
    with sess:
        score = scoring.evaluate(sess, model, mnist.test, every_row=True)
    np.testing.assert_array_equal(score.step_predicted[:, -1], score.predicted)  # the top layer's last step
