"""A training run: the tutorial's loop in train_lstm_mnist.train, plus a list of parts.

The loop reaches its run through five calls, in this order: `start` once the session's
variables are initialized (or restored), `going` before every step, `after_step` after
every step, `end_training` after the last step and `finish` after the tutorial's test
line. The run calls the hooks of the same names of each of its parts (part.py), in the
order of its list. What kind of run it is (one process, a sweep's trial, a cluster's
chief or another worker) is only which parts are in the list: `new_run` says which.
"""
import contextlib
import shlex
import sys

from lstm_mnist import (
    checkpoints,
    distributed,
    divergence,
    gates,
    metrics,
    phases,
    plots,
    run_folder,
    scoring,
    settings,
)
from lstm_mnist.errors import StopOnSignal
from lstm_mnist.part import Step


def new_run(cfg, model, mnist, resume, clock, stops, cluster=None, trial=None):
    """The run for this process: one process (with `trial`, a sweep's trial), or a cluster's worker;
    `stops` (errors.StopRequests) are the signals the entry point handles.

    Order matters in two places, and the lists keep it:
    - after a step: the loss is checked before anything is saved; validation comes before the
      metrics log, which logs it, and before the trial's report, which may stop the trial (its
      last figure logged first); the checkpoint comes after both; the stop on a signal last,
      once the step's checkpoint is saved.
    - at the end: the full test set is scored before the gates' statistics (their line comes
      after its reading line), and both before the timing lines and the plots (which show
      them); the closing lines come last.
    The run folder is first, so that it is closed last (the metrics log is closed before it).
    """
    if cluster and not cluster.is_chief:  # it trains and prints its own lines; the chief keeps the run folder
        duties = distributed.WorkerDuties(cluster)
        return Run(cfg, model, clock, stops, duties.restore,
                   [duties, StopOnSignal(*distributed.worker_stop_lines(cluster))])
    folder = run_folder.RunFolder(cfg, resume, trial and trial.run_name, cluster and cluster.role.cluster)
    duties = distributed.ChiefDuties(cluster, model, folder) if cluster else None
    saving = checkpoints.Checkpoints(model, folder, mnist.train, duties and duties.save)  # the chief's, through it
    restore = duties.restore if duties else saving.restore  # in a cluster, the session restored the checkpoint
    if duties:
        resume_command = duties.resume_command
    elif trial:
        resume_command = trial.resume_command
    else:
        resume_command = f"python {shlex.quote(sys.argv[0])} --resume={shlex.quote(folder.run_dir)}"
    parts = [folder,
             divergence.DivergenceStop(cfg, folder.run_dir),
             scoring.Validation(cfg, mnist.validation, at_the_last_step=trial is not None),
             metrics.MetricsLog(folder.run_dir, cfg.batch_size),
             *([trial] if trial else []),
             saving,
             *([duties] if duties else []),  # after the step's checkpoint: a stop also stops the others
             StopOnSignal(*run_folder.stop_lines(folder.run_dir, resume_command)),
             scoring.FullTestSet(mnist, folder.run_dir, cfg.plots),
             *([gates.GatesLine(mnist.test, cfg.n_steps)] if cfg.plots else []),  # its line after the reading line
             phases.TrainingSpeed(cfg.batch_size),
             *([plots.Plots(mnist.test, folder.run_dir)] if cfg.plots else []),
             run_folder.ClosingLines(folder.run_dir)]
    return Run(cfg, model, clock, stops, restore, parts)


class Run:
    """A run: `restore(run, sess)` gives the steps done before (a resumed run's checkpoint), and
    `parts` (part.Part) do the rest. Used as a context manager, it closes the parts, the last
    first, however the block ends.

    What the parts may use: cfg, model, clock, stops, last_step, iter_name(); from start on, done
    and times (phases.StepTimes); from end_training on, steps and train_seconds. `stops` is the
    only way a part says what a signal does in its phase.
    """

    def __init__(self, cfg, model, clock, stops, restore, parts):
        self.cfg, self.model, self.clock = cfg, model, clock  # clock: a phases.PhaseClock
        self.stops = stops  # errors.StopRequests
        self.restore, self.parts = restore, parts
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

    def start(self, sess):
        """The steps done before; from here on the loop's steps are timed."""
        self.done = self.restore(self, sess)
        for part in self.parts:
            part.start(self, sess)
        self.clock.mark("session")
        self.times = phases.StepTimes()
        return self.done

    def going(self, more_steps):
        """Whether the loop may run another step: on one process, the tutorial's own condition
        `more_steps`; in a cluster, whether the global step is short of the last."""
        for part in self.parts:
            more_steps = part.going(self, more_steps)
        return more_steps

    def after_step(self, sess, number, feed, acc=None, loss=None):
        """Validation, metrics, checkpoints and stop requests after a step; `acc` and `loss`
        are the minibatch's, where the loop computed them."""
        cfg, stopping = self.cfg, self.stops.requested  # a signal arriving later waits for the next step
        step = Step(number, feed, acc, loss, displayed=number % cfg.display_step == 0, stopping=stopping,
                    checkpoint_due=number % cfg.checkpoint_every == 0 or number == self.last_step or bool(stopping))
        for part in self.parts:
            with self.times.spent_on(part.aside) if part.aside else contextlib.nullcontext():
                part.after_step(self, sess, step)
        if number == self.done + 1:
            self.times.first_step_done()

    def end_training(self, sess, step):
        """Training is over; `step` is the loop's counter, one past the last step run."""
        self.steps = step - 1
        for part in self.parts:
            part.end_training(self, sess)
        self.clock.mark("training")
        self.train_seconds = self.clock.seconds["training"]

    def finish(self, sess, test_accuracy):
        """The lines beyond the tutorial's; returns the run's numbers."""
        results = {"test_accuracy": float(test_accuracy), "steps": self.steps, "train_seconds": self.train_seconds}
        for part in self.parts:
            part.finish(self, sess, results)
        return results
