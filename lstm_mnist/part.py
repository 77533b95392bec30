"""What a run's parts have in common: the hooks a run calls, and the record of a step they share.

A part does one job beside the tutorial's loop (validation, checkpoints, the metrics log, ...)
and has only the hooks that job needs; the others do nothing. The hooks take the names of
TF1's SessionRunHook where it has one for the same job (after_create_session, after_run, end)
and of Keras's callbacks where it does (on_test_end). runs.py says which parts a run has, and
in what order.
"""
import dataclasses


class Part:
    """One job of a run. The run calls each hook of every part, in the order of its list (and
    `close` in the reverse order, however the run ends): `restore` and `after_create_session` once
    the session holds the model, `going` before every step, `after_run` after every step, `end`
    after the last step, `on_test_end` after the tutorial's test line, `close` at the very end."""

    aside = None  # what this part's after_run time counts as in the Steady state line ("validation", ...)

    def restore(self, run, session):
        """The steps done before this run (a resumed run's checkpoint, a cluster's global step), where
        this part knows them: the run asks its parts in order and takes the first answer (else 0)."""
        return None

    def after_create_session(self, run, session):
        """The session holds the model (initialized, or restored: run.done steps were done before)."""

    def going(self, run, more_steps):
        """Whether the loop may run another step; `more_steps` is what the parts before it say."""
        return more_steps

    def after_run(self, run, session, step):
        """`step` (a Step) has run; a part may set its own field of the step for the parts after it."""

    def end(self, run, session):
        """The loop is over: run.steps is the last step run."""

    def on_test_end(self, run, session, results):
        """The tutorial's test line is printed; `results` (runs.Results) are the run's numbers, whose
        fields a part may set for the parts after it."""

    def close(self, run, error):
        """The run ends, with `error` (an exception) or None; a part may raise another error instead."""


@dataclasses.dataclass
class Step:
    """A step of the loop, as the parts after it see it."""

    number: int  # the loop's step, counted from 1 (after a resume, from the checkpoint's step)
    feed: dict  # its minibatch
    acc: float = None  # the minibatch's accuracy and loss, where the loop computed them (every display_step)
    loss: float = None
    displayed: bool = False  # the loop printed its Iter line
    stopping: int = None  # the signal that came before the step ended (a later one waits for the next step)
    checkpoint_due: bool = False  # every checkpoint_every steps, at the last and when stopping
    validation_accuracy: float = None  # set by scoring.Validation, where it ran
    checkpoint: str = None  # set by the part that saved one
