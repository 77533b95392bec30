"""Scoring a whole set in batches."""
import os
import re
import signal

import numpy as np
import pytest
from helpers import SCRIPT, SETTINGS, interrupt_after, start, tiny_config, write_dataset

import train_lstm_mnist as script
from lstm_mnist import context, errors, scoring, signals
from lstm_mnist.tf_setup import tf1


def test_evaluate_matches_one_big_run(mnist):
    cfg = SETTINGS.make()
    model = script.build_graph(cfg)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        score = scoring.evaluate(sess, model, mnist.validation)
        whole = sess.run([model.cost, model.accuracy],
                         {model.x: mnist.validation.images.reshape(-1, 28, 28), model.y: mnist.validation.labels})
    assert np.isclose(score.loss, whole[0], rtol=1e-5) and np.isclose(score.accuracy, whole[1])


class SignalAfterRuns:
    """A session that sends this process SIGINT once `n` of its runs have returned."""

    def __init__(self, sess, n):
        self.sess, self.n, self.runs = sess, n, 0

    def run(self, *args, **kwargs):
        result = self.sess.run(*args, **kwargs)
        self.runs += 1
        if self.runs == self.n:
            os.kill(os.getpid(), signal.SIGINT)
        return result


def test_a_long_sequence_says_how_far_along_it_is_and_a_signal_stops_it_between_batches(tmp_path, monkeypatch,
                                                                                          capsys):
    write_dataset(str(tmp_path), n_train=100, n_test=400)
    cfg = tiny_config(tmp_path, task="pixels", n_hidden=8, data_dir=str(tmp_path), validation_size=0)
    test_set = script.load_mnist(cfg).test
    monkeypatch.setattr(scoring, "EVAL_BATCH", 100)
    monkeypatch.setattr(scoring, "PROGRESS_EVERY_S", 0)  # a line after every batch but the last
    model = script.build_graph(cfg)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        scoring.evaluate(sess, model, test_set, doing="validating")
        lines = capsys.readouterr().out.splitlines()
        assert [re.sub(r"\d+ s$", "T s", line) for line in lines] == [
            f"  validating: {n} of 400 images, T s" for n in (100, 200, 300)]
        with signals.handled() as stops, context.opened(stops):
            context.now("while scoring")
            counting = SignalAfterRuns(sess, 2)
            with pytest.raises(errors.Interrupted, match="^Interrupted by SIGINT while scoring$"):
                scoring.evaluate(counting, model, test_set)
    assert counting.runs == 2  # it stopped at the next batch, not at the end of the set


@pytest.mark.slow
def test_a_signal_while_scoring_the_test_set_is_not_lost(tmp_path):
    process = start(SCRIPT, "--training_iters=1500", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after(process, signal.SIGTERM, lambda lines: lines[-1].startswith("Testing Accuracy:"))
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert process.returncode == 143
    assert err == (f"Interrupted by SIGTERM while scoring the test set: training is finished and saved in {run_dir}; "
                   f"score it with: python predict.py {run_dir}\n")
    assert os.path.exists(os.path.join(run_dir, "model.ckpt-14.index"))
