"""Checkpoints: the weights, Adam's state, the step and the training data's position.

tf.compat.v1.train.Saver does the saving. What it cannot hold by itself, the
position of data.py's DataSet in its shuffled epochs, goes into a string
variable saved with the rest, so a resumed run draws the very batches an
uninterrupted run would have drawn.
"""
import glob
import io
import json
import os
import re
import sys
import types

import numpy as np

from lstm_mnist import scoring
from lstm_mnist.errors import ConfigError, TrainingError, cannot_write
from lstm_mnist.files import write_atomically
from lstm_mnist.part import Part
from lstm_mnist.tf_setup import session_config, tf, tf1

CHECKPOINT_NAME = "model.ckpt"
INDEX = "checkpoint"  # the Saver's index file: which checkpoint is the latest
DATA_STATE = "data_state"  # the variable holding the training data's position
BEST_NAME, BEST_INDEX, BEST_RECORD = "best.ckpt", "best_checkpoint", "best.json"  # keep_best's (BestCheckpoint)


def add_to_graph(keep, data_position=True):
    """The data-position variable (unless `data_position` is False: a cluster's workers each
    read their own shard, so no one position belongs in the shared checkpoint) and a Saver
    keeping `keep` checkpoints; call last when building."""
    saving = types.SimpleNamespace(data_state=None, data_state_in=None, set_data_state=None)
    if data_position:
        # Strings live on the CPU; soft placement (see session_config) lets this sit beside a GPU graph.
        with tf.device("/cpu:0"):
            saving.data_state = tf1.Variable("", trainable=False, name=DATA_STATE)
            saving.data_state_in = tf1.placeholder(tf.string, shape=[], name="data_state_in")
            saving.set_data_state = saving.data_state.assign(saving.data_state_in)
    # Relative paths in the index, so that a run folder still works after a move.
    saving.saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)
    return saving


# ------------------------------------------------------------------ finding

def complete_checkpoints(folder):
    """The checkpoints in a folder whose files are all there, oldest first."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(folder), f"{CHECKPOINT_NAME}-*.index")):
        prefix = index[:-len(".index")]
        step = re.fullmatch(r"\d+", prefix.rsplit("-", 1)[1])
        if step and glob.glob(glob.escape(prefix) + ".data-*"):
            found.append((int(step.group()), prefix))
    return [prefix for _, prefix in sorted(found)]


def indexed_checkpoint(folder):
    """The checkpoint the folder's index names, looked up in this folder whatever path the index
    holds (so a moved or copied folder uses its own files); None if the index is missing or
    damaged."""
    try:
        with open(os.path.join(folder, INDEX), encoding="utf-8", errors="replace") as f:
            named = re.search(r'^model_checkpoint_path: "(.+)"$', f.read(), flags=re.M)
    except OSError:
        return None
    return os.path.join(folder, os.path.basename(named.group(1))) if named else None


def latest_checkpoint(folder):
    """The checkpoint a run folder continues from: the one its index names or, where the index
    is missing, damaged or names a checkpoint not complete here, the newest complete one (with
    a warning); None if there is none."""
    complete = complete_checkpoints(folder)
    if not complete:
        return None
    named = indexed_checkpoint(folder)
    if named in complete:
        return named
    if os.path.exists(os.path.join(folder, INDEX)):
        print(f"warning: {os.path.join(folder, INDEX)} is damaged or names a missing checkpoint; "
              f"using the newest complete one, {complete[-1]}", file=sys.stderr)
    return complete[-1]


def find_checkpoint(path):
    """(checkpoint prefix, run folder) for a run folder (its latest checkpoint) or a checkpoint path."""
    if not path:
        raise ConfigError("an empty path names no run folder or checkpoint (an unset shell variable?)")
    if os.path.isdir(path):
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise ConfigError(f"{path}: no usable checkpoint in this folder (no complete {CHECKPOINT_NAME}-N "
                              f"files); give a run folder that training wrote")
        return checkpoint, path
    if os.path.exists(path + ".index"):
        return path, os.path.dirname(path) or "."
    raise ConfigError(f"{path}: neither a run folder nor a checkpoint (expected {path}.index)")


def error_text(error):
    """TensorFlow's reason without its op trace, node names and hints, or any other exception's text."""
    if not isinstance(error, tf.errors.OpError):
        return str(error)
    reasons = [line for line in error.message.splitlines() if line.strip() and not line[0].isspace()
               and not line.startswith(("Graph execution error", "Detected at node", "Node:", "Hint:"))]
    return reasons[0] if reasons else error.message.strip()


# ------------------------------------------------------- saving, restoring

def save(sess, model, run_dir, step, dataset=None, saver=None, name=CHECKPOINT_NAME, index=INDEX):
    """Save a checkpoint of `step` with the data position of `dataset` (where the graph holds
    one: not in a cluster); returns its path. `saver`, `name` and `index` are the model's Saver,
    model.ckpt and its index, or another's (BestCheckpoint's).

    The Saver writes each file under a temporary name and renames it when
    complete, and updates the index last, so a crash mid-save leaves the
    previous checkpoint the one a resume finds.
    """
    try:
        if model.saving.data_state is not None:
            buffer = io.BytesIO()
            np.savez(buffer, **dataset.get_state())
            sess.run(model.saving.set_data_state, {model.saving.data_state_in: buffer.getvalue()})
        return (saver or model.saving.saver).save(sess, os.path.join(run_dir, name), global_step=step,
                                                  latest_filename=index, write_meta_graph=False)
    except (tf.errors.OpError, OSError) as e:
        remove_half_written(run_dir)
        previous = latest_checkpoint(run_dir) or "none"
        raise TrainingError(f"could not write the checkpoint of step {step} in {run_dir}: {error_text(e)}; "
                            f"the previous checkpoint ({previous}) is intact") from e


def restore(sess, model, checkpoint, dataset=None):
    """Load a checkpoint into the session; returns its step. With `dataset`,
    the training data continues from where the checkpoint left it."""
    saved = check_shapes(model, checkpoint)
    saver = model.saving.saver
    if DATA_STATE not in saved and model.saving.data_state is not None:
        # A cluster run's checkpoint: everything but the data position, which starts afresh.
        with model.graph.as_default():
            saver = tf1.train.Saver([v for v in tf1.global_variables() if v.op.name in saved])
        sess.run(model.saving.data_state.initializer)
    try:
        saver.restore(sess, checkpoint)
    except (tf.errors.OpError, ValueError) as e:
        older = [c for c in complete_checkpoints(os.path.dirname(checkpoint) or ".") if c != checkpoint]
        hint = f"; an older one may be intact: --resume={older[-1]}" if older else ""
        raise ConfigError(f"{checkpoint}: cannot restore this checkpoint ({error_text(e)}); "
                          f"it is damaged or from another model{hint}") from e
    if dataset is not None and DATA_STATE in saved:
        state = sess.run(model.saving.data_state)
        if state:
            dataset.set_state(dict(np.load(io.BytesIO(state))))
    return int(sess.run(model.global_step))


def check_shapes(model, checkpoint):
    """A checkpoint made with other sizes is one line naming them, before TensorFlow tries.
    Returns {name: shape} of what the checkpoint holds."""
    try:
        saved = dict(tf1.train.list_variables(checkpoint))
    except (tf.errors.OpError, ValueError):
        return {DATA_STATE: []}  # unreadable: restore says why
    for layer in model.layers:
        name = layer.kernel.op.name
        if name not in saved:
            held = sorted(n for n in saved if n.endswith("/kernel") and n.startswith("rnn/"))
            raise ConfigError(f"{checkpoint}: holds no {name} (it holds {', '.join(held) or 'no LSTM'}): made with "
                              f"another num_layers than the settings' {len(model.layers)}; use the run's own "
                              f"settings (its config.json)")
    with model.graph.as_default():
        for variable in tf1.global_variables():
            name = variable.op.name
            if name in saved and list(saved[name]) != variable.shape.as_list():
                raise ConfigError(f"{checkpoint}: holds {name} of shape {list(saved[name])}, but the settings "
                                  f"(n_input, n_hidden, n_classes) make it {variable.shape.as_list()}; "
                                  f"use the run's own settings (its config.json)")
    return saved


def forget_nothing(model, run_dir):
    """Tell the Saver about the checkpoints already in a resumed run's folder, so that
    keep_checkpoints counts them too, and remove what a killed save left half-written."""
    model.saving.saver.recover_last_checkpoints(complete_checkpoints(run_dir))
    remove_half_written(run_dir)


def remove_half_written(run_dir):
    """The Saver's temporary files of a save that failed or was killed."""
    for leftover in glob.glob(os.path.join(glob.escape(run_dir), "*.tempstate*")):
        os.remove(leftover)


# ------------------------------------------------------------- the run's part

class Checkpoints(Part):
    """A run's checkpoints: one every checkpoint_every steps, at the last step and on a stop
    request; the resumed one is restored at the start (with the data position). A cluster's
    chief saves its own way (distributed.ChiefCheckpoints)."""

    aside = "checkpoints"

    def __init__(self, model, folder, train_data):
        self.model, self.folder, self.train_data = model, folder, train_data  # folder: a run_folder.RunFolder
        self.saved_step = None  # the step of the last checkpoint this run wrote

    def restore(self, run, session):
        """The resumed run's checkpoint into the session; the steps it had done (0 for a new run)."""
        if not self.folder.checkpoint:
            return 0
        done = restore(session, self.model, self.folder.checkpoint, self.train_data)
        forget_nothing(self.model, self.folder.run_dir)
        print(f"Resuming {self.folder.run_dir} after {run.iter_name(done)}")
        return done

    def after_run(self, run, session, step):
        if step.checkpoint_due:
            step.checkpoint = self.save(session, step.number)

    def end(self, run, session):
        if self.saved_step != run.steps:  # a resumed run with no step left; a chief whose last step is not the run's
            self.save(session, run.steps)

    def save(self, session, step):
        """A checkpoint of the loop's `step`; its path."""
        self.saved_step = step
        return save(session, self.model, self.folder.run_dir, step, self.train_data)


class BestCheckpoint(Part):
    """With keep_best: beside the latest checkpoints, the one of the best validation accuracy so far,
    best.ckpt-N (its own index, best_checkpoint, and best.json: its step and accuracy), which a
    resumed run goes on comparing with; at the end, after the full test set's line, the test set
    scored at it, as the sequential-MNIST papers report their figure."""

    aside = "checkpoints"

    def __init__(self, model, run_dir, mnist):
        self.model, self.run_dir, self.mnist = model, run_dir, mnist
        with model.graph.as_default():
            self.saver = tf1.train.Saver(max_to_keep=1, save_relative_paths=True)
        self.best = read_best(run_dir)  # {"step", "validation_accuracy", "checkpoint"} or None
        if self.best:  # a resumed run's better checkpoint replaces the one it had: one best.ckpt in the folder
            self.saver.recover_last_checkpoints([os.path.join(run_dir, self.best["checkpoint"])])

    def after_run(self, run, session, step):
        accuracy = step.validation_accuracy
        if accuracy is None or (self.best and accuracy <= self.best["validation_accuracy"]):
            return
        path = save(session, self.model, self.run_dir, step.number, self.mnist.train, self.saver, BEST_NAME,
                    BEST_INDEX)
        self.best = {"step": step.number, "validation_accuracy": accuracy, "checkpoint": os.path.basename(path)}
        try:
            write_atomically(os.path.join(self.run_dir, BEST_RECORD), json.dumps(self.best, indent=2) + "\n")
        except OSError as e:
            raise cannot_write(os.path.join(self.run_dir, BEST_RECORD), e) from e

    def on_test_end(self, run, session, results):
        if not self.best:
            return
        checkpoint = os.path.join(self.run_dir, self.best["checkpoint"])
        with tf1.Session(graph=self.model.graph, config=session_config(run.cfg)) as there:
            self.saver.restore(there, checkpoint)
            score = scoring.evaluate(there, self.model, self.mnist.test, doing="scoring the test set at the best "
                                                                                  "checkpoint")
        print(f"Best validation accuracy: {self.best['validation_accuracy']:.5f} at {run.iter_name(self.best['step'])}"
              f"; there, the full test set: average loss {score.loss:.4f}, accuracy {score.accuracy:.4f} "
              f"({len(score.predicted)} images, {checkpoint})")
        results.best = (self.best["step"], score)
        run.clock.mark("best")


def read_best(run_dir):
    """best.json of a run folder (BestCheckpoint), or None where there is none yet or it cannot be read."""
    try:
        with open(os.path.join(run_dir, BEST_RECORD), encoding="utf-8") as f:
            best = json.load(f)
        return best if {"step", "validation_accuracy", "checkpoint"} <= set(best) else None
    except (OSError, ValueError, TypeError):
        return None
