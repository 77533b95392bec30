"""The trained sequential-MNIST models shipped in models/: each is the model its run trained and recorded."""
import glob
import os

import pytest
from helpers import SETTINGS

import predict
from lstm_mnist import checkpoints, saved_run, scoring

SHIPPED = sorted(glob.glob(os.path.join(saved_run.ROOT, "models", "*", "config.json")))


@pytest.mark.slow
@pytest.mark.parametrize("folder", [os.path.dirname(path) for path in SHIPPED],
                         ids=[os.path.basename(os.path.dirname(path)) for path in SHIPPED])
def test_a_shipped_models_best_checkpoint_gives_the_validation_accuracy_its_run_recorded(folder, mnist):
    best = checkpoints.read_best(folder)
    cfg, checkpoint = saved_run.open_saved_run(os.path.join(folder, best["checkpoint"]), {}, SETTINGS)
    assert cfg.validation_size == mnist.validation.num_examples and checkpoint.endswith(best["checkpoint"])
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        validation = scoring.evaluate(sess, model, mnist.validation)
    assert round(validation.accuracy, 4) == best["validation_accuracy"]
    assert checkpoints.latest_checkpoint(folder)  # and the latest, which predict.py scores and --resume goes on from
