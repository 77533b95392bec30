"""What a run's parts have in common: the hooks a run calls, and the record of a step they share.

A part does one job beside the tutorial's loop (validation, checkpoints, the metrics log, ...)
and has only the hooks that job needs; the others do nothing. runs.py says which parts a
run has, and in what order.
"""
import dataclasses


class Part:
    """One job of a run. The run calls each hook of every part, in the order of its list (and
    `close` in the reverse order, however the run ends): `start` once the session holds the
    model, `going` before every step, `after_step` after every step, `end_training` after
    the last step, `finish` after the tutorial's test line, `close` at the very end."""

    aside = None  # the StepTimes entry that this part's after_step time counts as ("validation", ...)

    def start(self, run, sess):
        """The session holds the model (initialized, or restored: run.done steps were done before)."""

    def going(self, run, more_steps):
        """Whether the loop may run another step; `more_steps` is what the parts before it say."""
        return more_steps

    def after_step(self, run, sess, step):
        """`step` (a Step) has run; a part may add what it found out to it for the parts after it."""

    def end_training(self, run, sess):
        """The loop is over: run.steps is the last step run."""

    def finish(self, run, sess, results):
        """The tutorial's test line is printed; `results` are the run's numbers, to add to."""

    def close(self, run, error):
        """The run ends, with `error` (an exception) or None; a part may raise another error instead."""


@dataclasses.dataclass
class Step:
    """A step of the loop, as the parts after it see it."""

    number: int  # the loop's step, counted from 1 (after a resume, from the checkpoint's step)
    feed: dict  # its minibatch
    acc: float = None  # the minibatch's accuracy and loss, where computed (every display_step steps,
    loss: float = None  # and for a checkpoint: DivergenceStop checks the loss first)
    displayed: bool = False  # the loop printed its Iter line
    stopping: int = None  # the signal that came before the step ended (a later one waits for the next step)
    checkpoint_due: bool = False  # every checkpoint_every steps, at the last and when stopping
    validation_accuracy: float = None  # set by Validation, where it ran
    checkpoint: str = None  # set by the part that saved one
