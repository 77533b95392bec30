"""A run's settings: config.py's names and values (the defaults), overrides, and the rules they must keep.

config.py is the one source of names, defaults and types; the entry point hands it over as a
module (Settings.of(config)). A run's settings are an argparse.Namespace, checked against the
rules below before any work starts: every problem is a ConfigError naming the setting.
"""
import argparse
import difflib
import math
import re

from lstm_mnist import hardware, tasks
from lstm_mnist.errors import ConfigError
from lstm_mnist.model import RECURRENT_INITS


class Settings:
    """The settings an entry point offers: {name: default} in config.py's order, and {name: comment}."""

    def __init__(self, defaults, comments=None):
        self.defaults, self.comments = dict(defaults), dict(comments or {})

    @classmethod
    def of(cls, module):
        """The settings of a module like config.py: its plain values, and the comments of its
        `name = value  # comment` lines."""
        defaults = {name: value for name, value in vars(module).items()
                    if not name.startswith("_") and isinstance(value, (bool, int, float, str))}
        with open(module.__file__, encoding="utf-8") as f:
            comments = dict(re.findall(r"^(\w+)\s*=.*?#\s*(.*)$", f.read(), flags=re.M))
        return cls(defaults, comments)

    def make(self, overrides=None, saved=None):
        """The settings of a run, checked: the defaults, or `saved` (a saved run's), with `overrides` applied."""
        values = dict(saved if saved is not None else self.defaults)
        overrides = overrides or {}
        for name, value in overrides.items():
            if name not in values:
                raise ConfigError(f"unknown setting {name}{did_you_mean(name, values)}")
            values[name] = value
        if tasks.shape_of(values["task"]) and not {"n_steps", "n_input"} & set(overrides):
            values.update(tasks.ONE_PIXEL)  # --task=pixels alone reads one pixel a step
        cfg = argparse.Namespace(**values)
        check(cfg, self.defaults)
        return cfg


def did_you_mean(argument, names):
    name = argument.lstrip("-").split("=")[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    return f" (did you mean --{close[0]}?)" if close else ""


# (setting, test, what is allowed): checked before anything runs.
RULES = [
    ("batch_size", lambda c: c.batch_size >= 1, ">= 1"),
    ("n_steps", lambda c: c.n_steps >= 1, ">= 1"),
    ("n_input", lambda c: c.n_input >= 1, ">= 1"),
    ("n_steps * n_input", lambda c: c.n_steps * c.n_input == 784, "784, the pixels of one 28x28 image"),
    ("n_steps * n_input", lambda c: tasks.shape_of(c.task) in (None, (c.n_steps, c.n_input)),
     "784 * 1 for the pixels and permuted tasks, one pixel a step (leave n_steps and n_input out)"),
    ("permutation_seed", lambda c: 0 <= c.permutation_seed < 2**32, "between 0 and 2**32 - 1"),
    ("clip_norm", lambda c: c.clip_norm >= 0 and math.isfinite(c.clip_norm), ">= 0 and finite (0: no clipping)"),
    ("n_classes", lambda c: c.n_classes == 10, "10, the MNIST digits"),
    ("n_hidden", lambda c: c.n_hidden >= 1, ">= 1"),
    ("num_layers", lambda c: c.num_layers >= 1, ">= 1"),
    ("learning_rate", lambda c: c.learning_rate > 0 and math.isfinite(c.learning_rate), "> 0 and finite"),
    ("forget_bias", lambda c: math.isfinite(c.forget_bias), "a finite number"),
    ("seed", lambda c: 0 <= c.seed < 2**32, "between 0 and 2**32 - 1 (numpy's range for a seed)"),
    ("max_loss", lambda c: c.max_loss >= 0, ">= 0 (0: no limit)"),
    ("cluster_timeout", lambda c: c.cluster_timeout >= 1, ">= 1"),
    ("display_step", lambda c: c.display_step >= 1, ">= 1"),
    ("training_iters", lambda c: c.training_iters > c.batch_size,
     "> batch_size, so that at least one step runs (step * batch_size < training_iters)"),
    ("test_len", lambda c: c.test_len >= 1, "between 1 and the test-set size"),
    ("eval_every", lambda c: c.eval_every >= 0, ">= 0 (0: never)"),
    ("checkpoint_every", lambda c: c.checkpoint_every >= 1, ">= 1"),
    ("keep_checkpoints", lambda c: c.keep_checkpoints >= 1, ">= 1"),
    ("cell", lambda c: c.cell in ("basic", "fast"), '"basic" or "fast"'),
    ("precision", lambda c: c.precision in ("fp32", "bf16"), '"fp32" or "bf16"'),
    ("precision", lambda c: c.precision == "fp32" or c.cell == "fast", '"fp32" with cell = "basic" (bf16 is the '
                                                                        'fast cell\'s: add --cell=fast)'),
    ("optimizer", lambda c: c.optimizer in ("adam", "rmsprop"), '"adam" or "rmsprop"'),
    ("rmsprop_decay", lambda c: 0 <= c.rmsprop_decay < 1, "between 0 and 1 (1 excluded)"),
    ("rmsprop_momentum", lambda c: 0 <= c.rmsprop_momentum < 1, "between 0 and 1 (1 excluded)"),
    ("recurrent_init", lambda c: c.recurrent_init in RECURRENT_INITS, " or ".join(f'"{name}"' for name in
                                                                                   RECURRENT_INITS)),
    ("chrono_init", lambda c: c.chrono_init == 0 or c.chrono_init >= 3, "0 (off) or >= 3, the longest time scale "
                                                                         "in steps (the sequence's length: n_steps)"),
    ("intra_op_threads", lambda c: c.intra_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
    ("inter_op_threads", lambda c: c.inter_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
]


class Refused(ConfigError):
    """A setting's value breaks a rule; `names` are the settings the rule is about."""

    def __init__(self, name, value, allowed):
        super().__init__(f"{name} = {value} is not allowed: must be {allowed}")
        self.names = name.split(" * ")



def check(cfg, defaults):
    """Every rule, then what the machine can do (hardware.py); `defaults` are config.py's values."""
    if cfg.task not in tasks.TASKS:
        close = difflib.get_close_matches(cfg.task, tasks.TASKS, n=1, cutoff=0.6)
        raise Refused("task", cfg.task, '"rows", "pixels" or "permuted"' +
                     (f' (did you mean "{close[0]}"?)' if close else ""))
    for name, ok, allowed in RULES:
        if not ok(cfg):
            raise Refused(name, " * ".join(str(getattr(cfg, n)) for n in name.split(" * ")), allowed)
    if cfg.task != "permuted" and cfg.permutation_seed != defaults["permutation_seed"]:
        raise Refused("permutation_seed", cfg.permutation_seed,
                      f"{defaults['permutation_seed']} (config.py's) unless task = \"permuted\": it orders that task's "
                      f"pixels alone")
    hardware.check(cfg)


def last_step(cfg):
    """The last step the tutorial's loop runs: `while step * batch_size < training_iters`."""
    return (cfg.training_iters - 1) // cfg.batch_size


def check_with_data(cfg, mnist):
    """The rules that depend on the data: run once it is loaded. (validation_size is
    checked by data.read_data_sets, which needs it to split the training file.)"""
    if mnist.train.num_examples == 0:
        raise Refused("validation_size", cfg.validation_size, f"below {mnist.validation.num_examples}, the images "
                                                             f"of the training file, to leave some to train on")
    pixels = mnist.train.images.shape[1]
    if cfg.n_steps * cfg.n_input != pixels:
        raise Refused("n_steps * n_input", f"{cfg.n_steps} * {cfg.n_input}", f"{pixels}, the pixels of one image")
    if cfg.batch_size > mnist.train.num_examples:
        raise Refused("batch_size", cfg.batch_size, f"at most the training images ({mnist.train.num_examples})")
    if cfg.test_len > mnist.test.num_examples:
        raise Refused("test_len", cfg.test_len, f"between 1 and the test-set size ({mnist.test.num_examples})")
