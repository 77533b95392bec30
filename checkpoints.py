"""Checkpoints: the weights, Adam's state, the step and the training data's position.

tf.compat.v1.train.Saver does the saving. What it cannot hold by itself, the
position of data.py's DataSet in its shuffled epochs, goes into a string
variable saved with the rest, so a resumed run draws the very batches an
uninterrupted run would have drawn.
"""
import io
import os
import types

import numpy as np

from errors import ConfigError, TrainingError
from tf_setup import tf, tf1

CHECKPOINT_NAME = "model.ckpt"


def add_to_graph(keep):
    """The data-position variable and a Saver keeping `keep` checkpoints; call last when building."""
    # Strings live on the CPU; soft placement (see session_config) lets this sit beside a GPU graph.
    with tf.device("/cpu:0"):
        data_state = tf1.Variable("", trainable=False, name="data_state")
        data_state_in = tf1.placeholder(tf.string, shape=[], name="data_state_in")
        set_data_state = data_state.assign(data_state_in)
    # Relative paths in the 'checkpoint' index, so that a run folder still works after a move.
    saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)
    return types.SimpleNamespace(data_state=data_state, data_state_in=data_state_in,
                                 set_data_state=set_data_state, saver=saver)


def find_checkpoint(path):
    """(checkpoint prefix, run folder) for a run folder (its latest checkpoint) or a checkpoint path."""
    if not path:
        raise ConfigError("an empty path names no run folder or checkpoint (an unset shell variable?)")
    if os.path.isdir(path):
        checkpoint = tf1.train.latest_checkpoint(path)
        if checkpoint is None:
            raise ConfigError(f"{path}: no usable checkpoint in this folder (a 'checkpoint' file naming "
                              f"{CHECKPOINT_NAME}-N files that exist); give a run folder that training wrote")
        return checkpoint, path
    if os.path.exists(path + ".index"):
        return path, os.path.dirname(path) or "."
    raise ConfigError(f"{path}: neither a run folder nor a checkpoint (expected {path}.index)")


def error_text(error):
    """TensorFlow's own message without its op trace, or any other exception's text."""
    return error.message if isinstance(error, tf.errors.OpError) else str(error)


def save(sess, model, run_dir, step, dataset):
    """Save a checkpoint of `step` with the data position of `dataset`; returns its path.

    The Saver writes each file under a temporary name and renames it when
    complete, and updates the 'checkpoint' index last, so a crash mid-save
    leaves the previous checkpoint the one a resume finds.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **dataset.get_state())
    try:
        sess.run(model.checkpoints.set_data_state, {model.checkpoints.data_state_in: buffer.getvalue()})
        return model.checkpoints.saver.save(sess, os.path.join(run_dir, CHECKPOINT_NAME), global_step=step,
                                            write_meta_graph=False)
    except (tf.errors.OpError, OSError) as e:
        previous = tf1.train.latest_checkpoint(run_dir) or "none"
        raise TrainingError(f"could not write the checkpoint of step {step} in {run_dir}: {error_text(e)}; "
                            f"the previous checkpoint ({previous}) is intact") from e


def restore(sess, model, checkpoint, dataset=None):
    """Load a checkpoint into the session; returns its step. With `dataset`,
    the training data continues from where the checkpoint left it."""
    try:
        model.checkpoints.saver.restore(sess, checkpoint)
    except (tf.errors.OpError, ValueError) as e:
        raise ConfigError(f"{checkpoint}: cannot restore this checkpoint ({error_text(e).splitlines()[0]}); "
                          f"it is damaged or from another model") from e
    if dataset is not None:
        state = sess.run(model.checkpoints.data_state)
        if state:
            dataset.set_state(dict(np.load(io.BytesIO(state))))
    return int(sess.run(model.global_step))
