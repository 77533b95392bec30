"""Hyperparameter sweeps on Optuna (sweep.py): the search space, one trial's run, what TensorBoard's
HParams dashboard reads, and the table at the end.

Each trial is a normal run of the tutorial's training in a child process of its own
(`python sweep.py --run_trial=N`), never in the sweep's process: a fresh process
has its own MNIST batch position, Python `random` state, signal handlers and
TensorFlow graph, so no trial can leak into the next, and `--jobs` trials share
the cores as separate processes. The child reports its validation accuracy to the
study every `eval_every` steps and ends early when Optuna's pruner says so.
"""
import csv
import io
import json
import math
import os
import re
import types

from lstm_mnist import errors, settings
from lstm_mnist.files import write_atomically
from lstm_mnist.part import Part

RESULT = "result.json"  # what a trial's child process leaves in its run folder for the sweep


# ------------------------------------------------------------ the search space

class Dimension:
    """One setting's range in a space file: `uniform`, `log_uniform`, `int_range` or `choice`."""

    def __init__(self, kind, *values, step=None):
        self.kind, self.values, self.step = kind, values, step

    def suggest(self, trial, name):
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.values))
        low, high = self.values
        if self.kind == "int_range":
            return trial.suggest_int(name, low, high, step=self.step or 1)
        return trial.suggest_float(name, low, high, log=self.kind == "log_uniform")

    def problem(self, default):
        """Why this range cannot be used for a setting whose default is `default`, or None."""
        kind = type(default)
        if self.kind == "choice":
            if not self.values:
                return "choice() needs at least one value"
            wrong = [v for v in self.values if type(v) is not kind and not (kind is float and type(v) is int)]
            return f"{wrong[0]!r} is not a {kind.__name__} like the default {default!r}" if wrong else None
        if kind not in (int, float) or (self.kind == "int_range") != (kind is int):
            return f"{self.kind}() does not fit a {kind.__name__} setting (default {default!r})"
        if len(self.values) != 2 or not all(type(v) in (int, float) and math.isfinite(v) for v in self.values):
            return f"{self.kind}() needs two finite numbers, low and high"
        low, high = self.values
        if self.kind == "int_range" and not all(type(v) is int for v in self.values):
            return f"int_range() needs whole numbers, low and high (got {low!r}, {high!r})"
        if self.kind == "int_range" and not (type(self.step) is int and self.step >= 1):
            return f"int_range()'s step must be a whole number >= 1 (got {self.step!r})"
        if not low < high:
            return f"low ({low}) must be below high ({high})"
        if self.kind == "log_uniform" and low <= 0:
            return f"log_uniform() needs low > 0 (got {low})"
        return None


def uniform(low, high):
    return Dimension("uniform", low, high)


def log_uniform(low, high):
    return Dimension("log_uniform", low, high)


def int_range(low, high, step=1):
    return Dimension("int_range", low, high, step=step)


def choice(*values):
    return Dimension("choice", *values)


SPACE_NAMES = {"uniform": uniform, "log_uniform": log_uniform, "int_range": int_range, "choice": choice}
# Settings a sweep may not vary: what a trial's run folder, checkpoints and threads depend on.
NOT_SEARCHABLE = {"out_dir", "data_dir", "intra_op_threads", "inter_op_threads", "plots", "checkpoint_every",
                  "keep_checkpoints", "eval_every", "n_input", "n_steps", "n_classes", "validation_size",
                  "sync_replicas", "cluster_timeout", "test_len"}


def load_space(path, known):
    """{setting: Dimension} from a space file (plain Python, like config.py), checked against the
    settings `known` (settings.Settings): an unknown setting, a setting a sweep may not vary, a bad
    range or a wrong type is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        namespace = dict(SPACE_NAMES)
        exec(compile(source, path, "exec"), namespace)  # a file the user wrote, as config.py is
    except OSError as e:
        raise errors.ConfigError(f"--space={path}: cannot read it ({e.strerror or e})") from e
    except Exception as e:
        raise errors.ConfigError(f"--space={path}: not a space file ({type(e).__name__}: {e}); write lines "
                                 f"like `learning_rate = log_uniform(1e-4, 1e-2)`") from e
    defaults = known.defaults
    space = {name: value for name, value in namespace.items()
             if not name.startswith("_") and name not in SPACE_NAMES and not isinstance(value, types.ModuleType)}
    if not space:
        raise errors.ConfigError(f"--space={path}: no setting in it; write lines like "
                                 f"`learning_rate = log_uniform(1e-4, 1e-2)`")
    for name, dimension in space.items():
        if name not in defaults:
            raise errors.ConfigError(f"--space={path}: {name} is not a setting of config.py"
                                     f"{settings.did_you_mean(name, defaults)}")
        if name in NOT_SEARCHABLE:
            raise errors.ConfigError(f"--space={path}: {name} cannot be searched (a sweep sets it for every trial)")
        if not isinstance(dimension, Dimension):
            raise errors.ConfigError(f"--space={path}: {name} = {dimension!r}; give a range: uniform(low, high), "
                                     f"log_uniform(low, high), int_range(low, high) or choice(a, b, ...)")
        problem = dimension.problem(defaults[name])
        if problem:
            raise errors.ConfigError(f"--space={path}: {name}: {problem}")
    return space


def check_space_values(space, fixed, path, known):
    """Every value a space can draw passes the command line's rules (`known`, settings.Settings), with the
    sweep's `fixed` settings: each choice, and both ends of each range (the rules are bounds, so the values
    between pass too)."""
    for name, dimension in space.items():
        for value in dimension.values:
            try:
                known.make({**fixed, name: value})
            except errors.ConfigError as e:
                raise errors.ConfigError(f"--space={path}: {name} can be drawn as {value!r}, which a run refuses "
                                         f"({e})") from None


def suggest(trial, space):
    """The trial's settings, drawn by the study's sampler from `space`."""
    return {name: dimension.suggest(trial, name) for name, dimension in space.items()}


def threads_for(jobs, cores=None):
    """(intra_op, inter_op) threads for each of `jobs` trials side by side: one thread inside an op
    (this model's ops are too small to split) and the cores shared out between the trials."""
    cores = cores or os.cpu_count() or 1
    return 1, max(1, cores // jobs)


# ------------------------------------------------------------- a trial's run

class Pruned(Exception):
    """Optuna's pruner stopped this trial: its validation accuracy is not worth more steps."""


class TrialReport(Part):
    """A run's part in a trial's child process: the run folder's name, and each validation
    accuracy, reported to the study; raises Pruned when the pruner says stop."""

    def __init__(self, trial):
        self.trial = trial
        self.run_name = f"trial-{trial.number:04d}"
        # An interrupted trial stays failed; what goes on is the study, by the sweep's own command.
        self.resume_command = "the same sweep.py command again: it continues the study with new trials"
        self.accuracy = None  # the last validation accuracy reported
        self.steps = 0  # the step it was reported at

    def after_run(self, run, session, step):
        """Report the step's validation accuracy, where it has one; before the last step, stop if the
        pruner says so (at the last, the trial is done: pruning it would save nothing)."""
        if step.validation_accuracy is None:
            return
        self.accuracy, self.steps = step.validation_accuracy, step.number
        self.trial.report(self.accuracy, step.number)
        if step.number != run.last_step and self.trial.should_prune():
            raise Pruned(f"pruned after {run.iter_name(step.number)}: validation accuracy "
                         f"{self.accuracy:.5f} is below what the other trials had reached there")


def write_result(run_dir, result):
    write_atomically(os.path.join(run_dir, RESULT), json.dumps(result, indent=2) + "\n")


def read_result(run_dir):
    try:
        with open(os.path.join(run_dir, RESULT), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------ TensorBoard HParams

def write_hparams_experiment(folder, space, fixed):
    """The sweep's domain for the HParams dashboard, in the sweep folder's own events file."""
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hparams_summary

    from lstm_mnist.tf_setup import tf1

    infos = []
    for name, dimension in space.items():
        info = api_pb2.HParamInfo(name=name)
        if dimension.kind == "choice":
            info.type = api_pb2.DATA_TYPE_FLOAT64 if isinstance(dimension.values[0], (int, float)) else \
                api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(dimension.values)
        else:
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_interval.min_value, info.domain_interval.max_value = dimension.values
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag="validation/accuracy"),
                                  display_name="validation accuracy")]
    with tf1.summary.FileWriter(folder) as writer:
        writer.add_summary(hparams_summary.experiment_pb(infos, metrics, description=f"fixed: {fixed}"))


def write_hparams_session(run_dir, params, status):
    """A trial's values and how it ended, for the HParams dashboard, in its run folder."""
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hparams_summary

    from lstm_mnist.tf_setup import tf1

    with tf1.summary.FileWriter(run_dir) as writer:
        writer.add_summary(hparams_summary.session_start_pb(hparams=params))
        writer.add_summary(hparams_summary.session_end_pb(api_pb2.STATUS_SUCCESS if status == "COMPLETE" else
                                                          api_pb2.STATUS_FAILURE))


# ------------------------------------------------------------------ the table

COLUMNS = ["trial", "state", "validation_accuracy", "steps", "seconds"]


def table_rows(study, space):
    """One dict per trial of the study, best validation accuracy first, then by trial number."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.value if trial.value is not None else trial.user_attrs.get("validation_accuracy")
        rows.append({"trial": trial.number, "state": trial.state.name,
                     "validation_accuracy": "" if value is None else f"{value:.5f}",
                     "steps": trial.user_attrs.get("steps") or "", "seconds": trial.user_attrs.get("seconds", ""),
                     **{name: trial.params.get(name, "") for name in space},
                     "run_dir": trial.user_attrs.get("run_dir", ""), "reason": trial.user_attrs.get("reason", "")})
    return sorted(rows, key=lambda row: (row["validation_accuracy"] == "", -float(row["validation_accuracy"] or 0),
                                         row["trial"]))


def as_csv(rows):
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return text.getvalue()


def as_table(rows, space):
    """The rows as aligned text, for the terminal."""
    columns = COLUMNS[:3] + list(space) + COLUMNS[3:]
    cells = [[shown(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def shown(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def study_folder_name(name):
    """A study's name as a folder name: letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^\w.\-]", "_", name)
