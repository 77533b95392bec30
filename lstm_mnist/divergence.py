"""The divergence stop: a minibatch loss that is not finite, or above max_loss, ends the run
before a checkpoint can keep the model it belongs to."""
import numpy as np

from lstm_mnist import checkpoints
from lstm_mnist.errors import TrainingError
from lstm_mnist.part import Part


def divergence(loss, max_loss):
    """What is wrong with a minibatch loss that says training diverged (not finite, or above
    `max_loss` where that is not 0), or None for a loss to go on with."""
    if not np.isfinite(loss):
        return f"minibatch loss is {loss}"
    if max_loss and loss > max_loss:
        return f"minibatch loss is {loss} (above max_loss = {max_loss:g})"
    return None


class DivergenceStop(Part):
    """Checks every minibatch loss the loop computed, and computes it for a step that is to be
    checkpointed: a checkpoint is written only after a finite loss."""

    def __init__(self, cfg, run_dir):
        self.cfg, self.run_dir = cfg, run_dir

    def after_run(self, run, session, step):
        loss = step.loss
        if step.checkpoint_due and loss is None:
            loss = session.run(run.model.cost, feed_dict=step.feed)
        why = None if loss is None else divergence(loss, self.cfg.max_loss)
        if why:
            last = checkpoints.latest_checkpoint(self.run_dir) or "none was saved yet"
            raise TrainingError(f"{why} at {run.iter_name(step.number)}: training diverged; "
                                f"last good checkpoint: {last}; lower learning_rate (now {self.cfg.learning_rate})")
