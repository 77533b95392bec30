"""config.py: the tutorial's hyperparameters, by its names."""
import pytest
from helpers import SETTINGS

import train_lstm_mnist


def test_config_values_are_the_tutorials():
    values = SETTINGS.defaults
    assert {name: values[name] for name in ("n_input", "n_steps", "n_hidden", "n_classes", "learning_rate",
                                            "training_iters", "batch_size", "display_step")} == {
        "n_input": 28, "n_steps": 28, "n_hidden": 128, "n_classes": 10, "learning_rate": 0.001,
        "training_iters": 100000, "batch_size": 100, "display_step": 10}
    assert list(values)[:4] == ["n_input", "n_steps", "n_hidden", "n_classes"]  # config.py's order


def test_help_lists_every_setting_with_default_and_comment(capsys):
    with pytest.raises(SystemExit) as exit:  # argparse's own exit, as the command ends after --help
        train_lstm_mnist.main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for name in SETTINGS.defaults:
        assert f"--{name}" in out
    assert "Adam learning rate" in out and "(default: 0.001)" in out
    assert "--resume RUN_DIR|CKPT" in out
