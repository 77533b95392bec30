"""config.py: the tutorial's hyperparameters, by its names."""
import os
import subprocess
import sys

from conftest import ROOT

from lstm_mnist import settings


def test_config_values_are_the_tutorials():
    values = settings.config_values()
    assert {name: values[name] for name in ("n_input", "n_steps", "n_hidden", "n_classes", "learning_rate",
                                            "training_iters", "batch_size", "display_step")} == {
        "n_input": 28, "n_steps": 28, "n_hidden": 128, "n_classes": 10, "learning_rate": 0.001,
        "training_iters": 100000, "batch_size": 100, "display_step": 10}
    assert list(values)[:4] == ["n_input", "n_steps", "n_hidden", "n_classes"]  # config.py's order


def test_help_lists_every_setting_with_default_and_comment():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train_lstm_mnist.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for name in settings.config_values():
        assert f"--{name}" in result.stdout
    assert "Adam learning rate" in result.stdout and "(default: 0.001)" in result.stdout
    assert "--resume RUN_DIR|CKPT" in result.stdout
