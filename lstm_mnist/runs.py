"""A training run: the tutorial's loop in train_lstm_mnist.train, plus a list of parts.

The loop reaches its run through five calls, in this order: `start` once the session's
variables are initialized (or restored), `going` before every step, `after_step` after
every step, `end_training` after the last step and `finish` after the tutorial's test
line. The run calls its parts' hooks (part.py) in the order of its list. What kind of run
it is (one process, a sweep's trial, a cluster's chief or another worker) is only which
parts are in the list: `new_run` says which, the placement (placement.py) giving its own.
"""
import contextlib
import dataclasses

from lstm_mnist import (
    checkpoints,
    context,
    divergence,
    gates,
    metrics,
    phases,
    plots,
    run_folder,
    scoring,
    settings,
)
from lstm_mnist.errors import Interrupted
from lstm_mnist.part import Part, Step


def new_run(cfg, model, mnist, resume, placement, trial=None):
    """The run for this process: one process (with `trial`, a sweep's trial) or a cluster's chief,
    which keep the run folder, or a cluster's other worker (`placement` says which).

    Order matters in two places, and the lists keep it:
    - after a step: the loss is checked before anything is saved; validation comes before the
      metrics log, which logs it, before the trial's report, which may stop the trial (its last
      figure logged first), and before the best checkpoint; the checkpoint comes after the
      report; the stop on a signal last, once the step's checkpoints are saved.
    - at the end: the full test set is scored before the best checkpoint and the gates (their
      lines come after its reading line), all before the timing lines and the plots, which show
      what they found; the closing lines come last.
    The run folder is first, so that it is closed last (the metrics log is closed before it).
    """
    if not placement.keeps_run_folder:
        return Run(cfg, model, placement.parts())
    folder = run_folder.RunFolder(cfg, resume, trial and trial.run_name, placement.record)
    scored = not trial  # a sweep's trial is judged on validation alone: the sweep scores its best trial's test set
    resume_command = trial.resume_command if trial else placement.resume_command(folder.run_dir)
    parts = [folder,
             divergence.DivergenceStop(cfg, folder.run_dir),
             scoring.Validation(cfg, mnist.validation, at_the_last_step=trial is not None),
             metrics.MetricsLog(folder.run_dir, cfg.batch_size),
             *([trial] if trial else []),
             placement.checkpoints(model, folder, mnist.train),
             phases.Progress(mnist.train.num_examples),
             *([scoring.FullTestSet(mnist, folder.run_dir, cfg.plots)] if scored else []),
             *([checkpoints.BestCheckpoint(model, folder.run_dir, mnist)] if cfg.keep_best else []),
             *([gates.GatesLine(mnist.test, cfg.n_steps)] if cfg.plots else []),
             phases.TrainingSpeed(cfg.batch_size),
             *([plots.Plots(mnist.test, folder.run_dir)] if cfg.plots and scored else []),  # they show the scores
             run_folder.ClosingLines(folder.run_dir),
             StopOnSignal(*run_folder.stop_lines(folder.run_dir, resume_command))]
    return Run(cfg, model, parts)


@dataclasses.dataclass
class Results:
    """A run's numbers, as train_lstm_mnist.train returns them; the parts named set theirs."""

    test_accuracy: float  # the tutorial's, on the first test_len test images
    steps: int  # the last step run
    train_seconds: float
    full_test: "scoring.Score" = None  # scoring.FullTestSet: every test image
    gate_statistics: list = None  # gates.GatesLine: each layer's (3 gates, 3, n_hidden)
    best: tuple = None  # checkpoints.BestCheckpoint: (its step, the full test set's scoring.Score there)
    phase_seconds: dict = None  # run_folder.ClosingLines: the Time line's
    run_dir: str = None  # run_folder.ClosingLines

    @property
    def full_test_accuracy(self):
        return self.full_test.accuracy

    @property
    def full_test_loss(self):
        return self.full_test.loss

    @property
    def predicted(self):
        """The model's class for every test image."""
        return self.full_test.predicted


class Run:
    """A run of `model` with the settings `cfg`, whose `parts` (part.Part) do what the loop does not.
    Used as a context manager, it closes the parts, the last first, however the block ends.

    What the parts may use: cfg, model, clock (the context's), last_step, iter_name(); from start
    on, done and times (phases.StepTimes); from end_training on, steps and train_seconds.
    """

    def __init__(self, cfg, model, parts):
        self.cfg, self.model, self.parts = cfg, model, parts
        self.clock = context.current().clock
        self.last_step = settings.last_step(cfg)
        self.done = self.times = None
        self.steps = self.train_seconds = None
        self.closing = contextlib.ExitStack()

    def __enter__(self):
        for part in self.parts:
            self.closing.push(lambda _type, error, _traceback, part=part: part.close(self, error))
        return self

    def __exit__(self, *exception):
        return self.closing.__exit__(*exception)

    @property
    def started(self):
        return self.times is not None

    def iter_name(self, step):
        return f"Iter {step * self.cfg.batch_size} (step {step})"

    def start(self, session):
        """The steps done before (a resumed run's checkpoint); from here on the loop's steps are timed."""
        self.done = next((done for done in (part.restore(self, session) for part in self.parts) if done is not None),
                         0)
        for part in self.parts:
            part.after_create_session(self, session)
        self.clock.mark("session")
        self.times = phases.StepTimes([part.aside for part in self.parts if part.aside])
        return self.done

    def going(self, more_steps):
        """Whether the loop may run another step: on one process, the tutorial's own condition
        `more_steps`; in a cluster, whether the global step is short of the last."""
        for part in self.parts:
            more_steps = part.going(self, more_steps)
        return more_steps

    def after_step(self, session, number, feed, acc=None, loss=None):
        """Validation, metrics, checkpoints and stop requests after a step; `acc` and `loss`
        are the minibatch's, where the loop computed them."""
        cfg, stopping = self.cfg, context.requested()  # a signal arriving later waits for the next step
        step = Step(number, feed, acc, loss, displayed=number % cfg.display_step == 0, stopping=stopping,
                    checkpoint_due=number % cfg.checkpoint_every == 0 or number == self.last_step or bool(stopping))
        for part in self.parts:
            with self.times.spent_on(part.aside) if part.aside else contextlib.nullcontext():
                part.after_run(self, session, step)
        if number == self.done + 1:
            self.times.first_step_done()

    def end_training(self, session, step):
        """Training is over; `step` is the loop's counter, one past the last step run."""
        self.steps = step - 1
        for part in self.parts:
            part.end(self, session)
        self.clock.mark("training")
        self.train_seconds = self.clock.seconds["training"]

    def finish(self, session, test_accuracy):
        """The lines beyond the tutorial's; returns the run's Results."""
        results = Results(float(test_accuracy), self.steps, self.train_seconds)
        for part in self.parts:
            part.on_test_end(self, session, results)
        return results


class StopOnSignal(Part):
    """While steps run, a signal is noted (`notice` says so) and stops the run after the step it
    came in, once the parts before this one are done with that step (its checkpoint saved), with
    Interrupted(`stopped_after(run, step)`); after training, a signal stops at once, saying
    `after_training`."""

    def __init__(self, notice, stopped_after, after_training):
        self.notice, self.stopped_after, self.after_training = notice, stopped_after, after_training

    def after_create_session(self, run, session):
        context.defer(self.notice)  # a signal that came during the start-up stops the run here

    def after_run(self, run, session, step):
        if step.stopping:
            raise Interrupted(step.stopping, self.stopped_after(run, step))

    def end(self, run, session):
        context.now(self.after_training)
