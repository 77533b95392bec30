"""How an image becomes a sequence: config.py's `task`.

    rows      the tutorial's: n_steps rows of n_input pixels (28 x 28), top to bottom
    pixels    784 steps of one pixel, in reading order: sequential MNIST (Le, Jaitly and Hinton 2015)
    permuted  784 steps of one pixel, in one fixed random order drawn from permutation_seed

Every entry point feeds the images as data.py gives them, pixels in reading order, shaped
[N, n_steps, n_input]. The permuted task's order is applied inside the graph (sequence), from
the run's settings, so resume, predict.py, serve.py, the export and the notebook all read the
same permutation without knowing of it, and a SavedModel carries it as a constant.
"""
import numpy as np

from lstm_mnist.tf_setup import tf

TASKS = ("rows", "pixels", "permuted")
PIXELS = 28 * 28
ONE_PIXEL = {"n_steps": PIXELS, "n_input": 1}  # the shape of the pixels and permuted tasks
SHORT_SEQUENCE = 28  # steps: the tutorial's rows. The fast cell unrolls up to this many, scoring is quiet up to
# it, and the gates' image count is set for it; longer sequences (the pixel tasks) scale from it


def shape_of(task):
    """The (n_steps, n_input) a task needs, or None where any split of the 784 pixels will do (rows)."""
    return None if task == "rows" else (ONE_PIXEL["n_steps"], ONE_PIXEL["n_input"])


def permutation(seed):
    """The permuted task's pixel order: pixel k of a sequence is pixel permutation(seed)[k] of the image."""
    return np.random.RandomState(seed).permutation(PIXELS)


def pixel_order(cfg):
    """The order in which the model reads an image's pixels: the permuted task's permutation, or None
    (reading order: rows, pixels)."""
    return permutation(cfg.permutation_seed) if cfg.task == "permuted" else None


def sequence(x, cfg):
    """What the LSTM reads from the placeholder x [N, n_steps, n_input]: x itself (rows, pixels: the
    tutorial's graph unchanged), or its pixels in the permuted order."""
    order = pixel_order(cfg)
    if order is None:
        return x
    order = tf.constant(order, dtype=tf.int32, name="permutation")
    pixels = tf.gather(tf.reshape(x, [-1, PIXELS]), order, axis=1)
    return tf.reshape(pixels, [-1, cfg.n_steps, cfg.n_input], name="permuted")
