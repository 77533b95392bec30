"""Scoring a whole set in batches."""
import os
import signal

import numpy as np
import pytest
from conftest import SCRIPT, interrupt_after, start

import train_lstm_mnist as script
from lstm_mnist import errors, scoring, settings
from lstm_mnist.tf_setup import tf1


def test_evaluate_matches_one_big_run(mnist):
    cfg = settings.make()
    model = script.build_graph(cfg)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        score = scoring.evaluate(sess, model, mnist.validation, errors.StopRequests())
        whole = sess.run([model.cost, model.accuracy],
                         {model.x: mnist.validation.images.reshape(-1, 28, 28), model.y: mnist.validation.labels})
    assert np.isclose(score.loss, whole[0], rtol=1e-5) and np.isclose(score.accuracy, whole[1])


@pytest.mark.slow
def test_a_signal_while_scoring_the_test_set_is_not_lost(tmp_path):
    process = start(SCRIPT, "--training_iters=1500", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after(process, signal.SIGTERM, lambda lines: lines[-1].startswith("Testing Accuracy:"))
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert process.returncode == 143
    assert err == (f"Interrupted by SIGTERM while scoring the test set: training is finished and saved in {run_dir}; "
                   f"score it with: python predict.py {run_dir}\n")
    assert os.path.exists(os.path.join(run_dir, "model.ckpt-14.index"))
