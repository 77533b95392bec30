"""Gradient clipping by global norm (config.py's clip_norm), which the long tasks need: over 784
steps an LSTM's gradient can jump by orders of magnitude in one step, and one such step undoes
Adam's progress. Off by default: the tutorial does not clip.
"""
from lstm_mnist.tf_setup import tf


def minimize(optimizer, cost, global_step, clip_norm):
    """optimizer.minimize(cost, global_step): the tutorial's call itself where clip_norm is 0, else
    the same with the gradients scaled together so that their global norm is at most clip_norm."""
    if not clip_norm:
        return optimizer.minimize(cost, global_step=global_step)
    gradients, variables = zip(*optimizer.compute_gradients(cost), strict=True)
    clipped, _ = tf.clip_by_global_norm(gradients, clip_norm)
    return optimizer.apply_gradients(zip(clipped, variables, strict=True), global_step=global_step)
