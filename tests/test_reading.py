"""Watching the LSTM read: the answer after every row, in the graph, the log and reading.png."""
import numpy as np
import pytest
from helpers import SETTINGS

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, reading
from lstm_mnist.tf_setup import tf1


def test_row_of_final_answer_is_where_the_answer_settles():
    step_predicted = np.array([[1, 1, 1, 1], [2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 1], [1, 1, 1, 2], [3, 1, 3, 3]])
    assert reading.row_of_final_answer(step_predicted).tolist() == [1, 2, 3, 4, 4, 3]


@pytest.mark.parametrize("cell", ["basic", "fast"])
def test_the_answer_after_the_last_row_is_the_models_answer(mnist, cell):
    model = script.build_graph(SETTINGS.make({"cell": cell}))
    images = mnist.test.images[:50].reshape(-1, 28, 28)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        steps, final = sess.run([model.step_probabilities, model.probabilities], {model.x: images})
        first_rows = sess.run(model.step_probabilities, {model.x: np.where(np.arange(28)[:, None] < 10,
                                                                              images, 0)})
    assert steps.shape == (50, 28, 10)
    np.testing.assert_allclose(steps.sum(axis=2), 1, rtol=1e-5)
    np.testing.assert_allclose(steps[:, -1], final, rtol=1e-4, atol=1e-6)
    # After row 10 the model has seen rows 1-10 alone: blanking the rest cannot change it.
    np.testing.assert_allclose(first_rows[:, :10], steps[:, :10], rtol=1e-4, atol=1e-6)
    assert not np.allclose(first_rows[:, -1], steps[:, -1])


def test_the_reading_line_matches_the_models_answers(tiny_run, mnist):
    cfg, results, lines = tiny_run
    (line,) = [line for line in lines if line.startswith("Reading: ")]
    sess, model = predict.restored_session(cfg, checkpoints.find_checkpoint(results.run_dir)[0])
    with sess:
        step_predicted = sess.run(model.step_predicted, {model.x: mnist.test.images.reshape(-1, 28, 28)})
    assert np.array_equal(step_predicted[:, -1], results.predicted)
    rows = reading.row_of_final_answer(step_predicted)
    assert line == (f"Reading: the final answer is reached, and kept, after row {rows.mean():.1f} of 28 on average "
                    f"(10000 test images)")
