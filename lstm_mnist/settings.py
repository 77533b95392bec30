"""A run's settings: config.py's values (or a saved run's), the command line's overrides, checked;
and a run folder's config.json, which records them.

config.py is the one source of names, defaults and types: `--name=value` is
parsed as the type of the default and checked against the rules below before
any work starts. Every problem is a ConfigError naming the setting.
"""
import argparse
import difflib
import json
import math
import os
import re
import sys

import numpy as np

import config
from lstm_mnist import checkpoints, tasks
from lstm_mnist.errors import ConfigError, cannot_write
from lstm_mnist.files import write_atomically
from lstm_mnist.tf_setup import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project: the folder above this package
PATH_SETTINGS = ("data_dir", "out_dir")  # saved relative to ROOT when inside it


def config_values():
    """config.py's settings, in file order: {name: value}."""
    return {name: value for name, value in vars(config).items()
            if not name.startswith("_") and isinstance(value, (bool, int, float, str))}


def config_comments():
    """{name: comment} from the `name = value  # comment` lines of config.py."""
    with open(config.__file__, encoding="utf-8") as f:
        return dict(re.findall(r"^(\w+)\s*=.*?#\s*(.*)$", f.read(), flags=re.M))


def parse_value(name, text, default):
    """`text` as the type of `default`; ConfigError naming the setting otherwise.
    An int may be written as any number that is exactly an integer (1e4)."""
    kind = type(default)
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(text) if text.strip().lstrip("+-").isdigit() else int(number)
        return kind(text)
    except (KeyError, ValueError, OverflowError):
        raise ConfigError(f"--{name}={text}: expected {kind.__name__} like the default {default!r}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises ConfigError instead of printing usage and exiting."""

    def error(self, message):
        raise ConfigError(message)


def parse_command_line(argv, description, add_arguments):
    """(overrides, arguments): the settings the command line gives, as {name: value} of
    config.py's types, and the entry point's own arguments (added by `add_arguments`)."""
    defaults = config_values()
    parser = ArgumentParser(description=description, allow_abbrev=False,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Every setting of config.py can be overridden as --name=value. "
                                   "Where a saved run is named, its config.json gives the defaults.")
    add_arguments(parser)
    comments = config_comments()
    group = parser.add_argument_group("settings (config.py)")
    for name, default in defaults.items():
        group.add_argument(f"--{name}", default=argparse.SUPPRESS, metavar=type(default).__name__.upper(),
                           type=lambda text, name=name, default=default: parse_value(name, text, default),
                           help=f"{comments.get(name, '')} (default: {default})")
    arguments, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}{did_you_mean(unknown[0], defaults)}; "
                          f"valid names: {', '.join(defaults)}")
    overrides = {name: vars(arguments).pop(name) for name in defaults if name in vars(arguments)}
    return overrides, arguments


def did_you_mean(argument, names):
    name = argument.lstrip("-").split("=")[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    return f" (did you mean --{close[0]}?)" if close else ""


def make(overrides=None, saved=None):
    """The settings of a run, checked: config.py's values, or `saved` (a saved run's),
    with `overrides` applied."""
    values = dict(saved if saved is not None else config_values())
    overrides = overrides or {}
    for name, value in overrides.items():
        if name not in values:
            raise ConfigError(f"unknown setting {name}")
        values[name] = value
    if tasks.shape_of(values["task"]) and not {"n_steps", "n_input"} & set(overrides):
        values.update(tasks.ONE_PIXEL)  # --task=pixels alone reads one pixel a step
    cfg = argparse.Namespace(**values)
    check(cfg)
    return cfg


# (setting, test, what is allowed): checked before anything runs.
RULES = [
    ("batch_size", lambda c: c.batch_size >= 1, ">= 1"),
    ("n_steps", lambda c: c.n_steps >= 1, ">= 1"),
    ("n_input", lambda c: c.n_input >= 1, ">= 1"),
    ("n_steps * n_input", lambda c: c.n_steps * c.n_input == 784, "784, the pixels of one 28x28 image"),
    ("n_steps * n_input", lambda c: tasks.shape_of(c.task) in (None, (c.n_steps, c.n_input)),
     "784 * 1 for the pixels and permuted tasks, one pixel a step (leave n_steps and n_input out)"),
    ("permutation_seed", lambda c: 0 <= c.permutation_seed < 2**32, "between 0 and 2**32 - 1"),
    ("permutation_seed", lambda c: c.task == "permuted" or c.permutation_seed == config.permutation_seed,
     f"{config.permutation_seed} (config.py's) unless task = \"permuted\": it orders that task's pixels alone"),
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
    ("intra_op_threads", lambda c: c.intra_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
    ("inter_op_threads", lambda c: c.inter_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
]


def refuse(name, value, allowed):
    return ConfigError(f"{name} = {value} is not allowed: must be {allowed}")


def check(cfg):
    if cfg.task not in tasks.TASKS:
        close = difflib.get_close_matches(cfg.task, tasks.TASKS, n=1, cutoff=0.6)
        raise refuse("task", cfg.task, '"rows", "pixels" or "permuted"' +
                     (f' (did you mean "{close[0]}"?)' if close else ""))
    for name, ok, allowed in RULES:
        if not ok(cfg):
            raise refuse(name, " * ".join(str(getattr(cfg, n)) for n in name.split(" * ")), allowed)
    check_memory(cfg)
    if cfg.precision == "bf16" and cpu_lacks_bf16():
        raise ConfigError('precision = bf16 needs a CPU with AVX512-BF16 or AMX, and this one has neither '
                          '(/proc/cpuinfo): without them bfloat16 is emulated, slower than float32; use '
                          '--precision=fp32')


def cpu_lacks_bf16(cpuinfo="/proc/cpuinfo"):
    """True where /proc/cpuinfo lists neither AVX512-BF16 nor AMX-BF16; False where it cannot tell."""
    try:
        with open(cpuinfo) as f:
            flags = set(re.search(r"^flags\s*:(.*)$", f.read(), flags=re.M).group(1).split())
    except (OSError, AttributeError):
        return False
    return not flags & {"avx512_bf16", "amx_bf16"}


def memory_estimate(cfg):
    """Bytes a training step needs, roughly: the weights four times over (themselves, their
    gradients, Adam's two slots) and each time step's activations kept for the backward pass."""
    weights = ((cfg.n_input + cfg.n_hidden + 1) * 4 * cfg.n_hidden
               + (cfg.num_layers - 1) * (2 * cfg.n_hidden + 1) * 4 * cfg.n_hidden + (cfg.n_hidden + 1) * cfg.n_classes)
    activations = cfg.batch_size * cfg.n_steps * (cfg.n_input + 12 * cfg.n_hidden * cfg.num_layers)
    return 4 * (4 * weights + 2 * activations)


def available_memory():
    """Bytes of memory free for this process (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            return 1024 * int(re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), flags=re.M).group(1))
    except (OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None


def check_memory(cfg):
    """Refuse sizes that cannot fit before TensorFlow tries (and the process is killed)."""
    needed, free = memory_estimate(cfg), available_memory()
    if free and needed > free:
        raise ConfigError(f"n_hidden = {cfg.n_hidden}, batch_size = {cfg.batch_size}: a training step needs "
                          f"about {needed / 2**30:.0f} GiB, more than the {free / 2**30:.0f} GiB free here; "
                          f"choose smaller sizes")


# What a checkpoint's step and weights mean: a resumed run cannot change these.
FIXED_ON_RESUME = ("n_input", "n_steps", "n_hidden", "n_classes", "num_layers", "batch_size", "task",
                   "permutation_seed")


def check_resume_overrides(overrides, saved):
    for name in FIXED_ON_RESUME:
        if name in overrides and overrides[name] != saved[name]:
            raise ConfigError(f"{name} = {overrides[name]} differs from the saved run's {saved[name]}: a checkpoint's "
                              f"weights and steps are made with the run's {', '.join(FIXED_ON_RESUME)}; leave "
                              f"{name} out, or start a new run to change it")


def last_step(cfg):
    """The last step the tutorial's loop runs: `while step * batch_size < training_iters`."""
    return (cfg.training_iters - 1) // cfg.batch_size


def check_with_data(cfg, mnist):
    """The rules that depend on the data: run once it is loaded. (validation_size is
    checked by data.read_data_sets, which needs it to split the training file.)"""
    if mnist.train.num_examples == 0:
        raise refuse("validation_size", cfg.validation_size, f"below {mnist.validation.num_examples}, the images "
                                                             f"of the training file, to leave some to train on")
    pixels = mnist.train.images.shape[1]
    if cfg.n_steps * cfg.n_input != pixels:
        raise refuse("n_steps * n_input", f"{cfg.n_steps} * {cfg.n_input}", f"{pixels}, the pixels of one image")
    if cfg.batch_size > mnist.train.num_examples:
        raise refuse("batch_size", cfg.batch_size, f"at most the training images ({mnist.train.num_examples})")
    if cfg.test_len > mnist.test.num_examples:
        raise refuse("test_len", cfg.test_len, f"between 1 and the test-set size ({mnist.test.num_examples})")


# ------------------------------------------------- a run folder's config.json

def portable_path(path):
    """A path inside the project relative to it, so that a moved checkout or a run folder
    copied to another machine finds its own data; any other path absolute."""
    path = os.path.abspath(path)
    inside = os.path.relpath(path, ROOT)
    return path if inside == ".." or inside.startswith(".." + os.sep) else inside


def save_settings(run_dir, cfg, cluster=None, then="then resume from the last checkpoint"):
    """config.json: the settings, the versions, and the cluster (distributed.py) if there is one.
    A failure to write it is a TrainingError whose message ends with `then`, what to do next."""
    values = {name: portable_path(value) if name in PATH_SETTINGS else value for name, value in vars(cfg).items()}
    record = {"config": values, "versions": {"tensorflow": tf.__version__, "numpy": np.__version__,
                                             "python": sys.version.split()[0]}}
    if cluster:
        record["cluster"] = cluster
    path = os.path.join(run_dir, "config.json")
    try:
        write_atomically(path, json.dumps(record, indent=2) + "\n")
    except OSError as e:
        raise cannot_write(path, e, then) from e


def saved_settings(run_dir):
    """The settings a run was made with, as {name: value}: config.py's names and types,
    the run's values (config.py's where the run predates a setting)."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)["config"]
        if not isinstance(saved, dict):
            raise TypeError(f"its config is a {type(saved).__name__}, not a table of settings")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: cannot read the run's settings ({e}); is {run_dir} a run folder?") from e
    values = config_values()
    for name, default in values.items():
        value = saved.get(name, default)
        if type(default) is float and type(value) is int:
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{path}: {name} is {value!r}, expected {type(default).__name__} like {default!r}; "
                              f"correct or remove it")
        values[name] = os.path.join(ROOT, value) if name in PATH_SETTINGS else value
    return values


def open_saved_run(path, overrides):
    """(settings, checkpoint) of a saved run folder (its latest checkpoint) or checkpoint:
    the settings of its config.json with `overrides` applied."""
    checkpoint, run_dir = checkpoints.find_checkpoint(path)
    saved = saved_settings(run_dir)
    check_resume_overrides(overrides, saved)
    return make(overrides, saved=saved), checkpoint
