"""A run folder's config.json, which records a run's settings, and what a resumed run may change.

A saved run is opened with the settings of its config.json (config.py's where the run predates
a setting), the command line's overrides applied, except those that would change what its
checkpoints mean (FIXED_ON_RESUME).
"""
import importlib.metadata
import json
import os
import platform

import numpy as np

from lstm_mnist import checkpoints
from lstm_mnist.errors import ConfigError, cannot_write
from lstm_mnist.files import write_atomically
from lstm_mnist.settings import Refused

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project: the folder above this package
PATH_SETTINGS = ("data_dir", "out_dir")  # saved relative to ROOT when inside it
# What a checkpoint's step and weights mean: a resumed run cannot change these.
FIXED_ON_RESUME = ("n_input", "n_steps", "n_hidden", "n_classes", "num_layers", "batch_size", "task",
                   "permutation_seed", "optimizer")


def portable_path(path):
    """A path inside the project relative to it, so that a moved checkout or a run folder
    copied to another machine finds its own data; any other path absolute."""
    path = os.path.abspath(path)
    inside = os.path.relpath(path, ROOT)
    return path if inside == ".." or inside.startswith(".." + os.sep) else inside


def versions():
    """The versions that made a run, for config.json (TensorFlow's read without importing it)."""
    return {"tensorflow": importlib.metadata.version("tensorflow"), "numpy": np.__version__,
            "python": platform.python_version()}


def save_settings(run_dir, cfg, cluster=None, then="then resume from the last checkpoint"):
    """config.json: the settings, the versions, and the cluster (distributed.py) if there is one.
    A failure to write it is a TrainingError whose message ends with `then`, what to do next."""
    values = {name: portable_path(value) if name in PATH_SETTINGS else value for name, value in vars(cfg).items()}
    record = {"config": values, "versions": versions()}
    if cluster:
        record["cluster"] = cluster
    path = os.path.join(run_dir, "config.json")
    try:
        write_atomically(path, json.dumps(record, indent=2) + "\n")
    except OSError as e:
        raise cannot_write(path, e, then) from e


def saved_settings(run_dir, settings):
    """The settings a run was made with, as {name: value}: the names and types of `settings`
    (settings.Settings), the run's values (the defaults where the run predates a setting)."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)["config"]
        if not isinstance(saved, dict):
            raise TypeError(f"its config is a {type(saved).__name__}, not a table of settings")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: cannot read the run's settings ({e}); is {run_dir} a run folder?") from e
    values = dict(settings.defaults)
    for name, default in values.items():
        value = saved.get(name, default)
        if type(default) is float and type(value) is int:
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{path}: {name} is {value!r}, expected {type(default).__name__} like {default!r}; "
                              f"correct or remove it")
        values[name] = os.path.join(ROOT, value) if name in PATH_SETTINGS else value
    return values


def check_resume_overrides(overrides, saved):
    for name in FIXED_ON_RESUME:
        if name in overrides and overrides[name] != saved[name]:
            raise ConfigError(f"{name} = {overrides[name]} differs from the saved run's {saved[name]}: a checkpoint's "
                              f"weights and steps are made with the run's {', '.join(FIXED_ON_RESUME)}; leave "
                              f"{name} out, or start a new run to change it")


def open_saved_run(path, overrides, settings):
    """(settings, checkpoint) of a saved run folder (its latest checkpoint) or checkpoint: the
    settings of its config.json with `overrides` applied, checked by `settings` (settings.Settings).
    A config.json whose values break the rules (edited by hand) is refused naming it."""
    checkpoint, run_dir = checkpoints.find_checkpoint(path)
    saved = saved_settings(run_dir, settings)
    check_resume_overrides(overrides, saved)
    try:
        return settings.make(overrides, saved=saved), checkpoint
    except Refused as e:
        if set(e.names) & set(overrides):
            raise
        raise ConfigError(f"{os.path.join(run_dir, 'config.json')}: {e}; correct it there, or give the value "
                          f"as --name=value") from e
