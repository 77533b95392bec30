"""The run folder, and the bookkeeping this project adds around the tutorial's loop.

    runs/<YYYYmmdd-HHMMSS>/
        config.json            the settings (paths inside the project relative to it) and versions
        metrics.csv            one row per logged step (metrics.py)
        events.out.tfevents.*  TensorBoard: the graph and the same scalars
        model.ckpt-N.*         checkpoints (checkpoints.py), with the 'checkpoint' index
        *.png                  plots (plots.py)
"""
import fcntl
import importlib
import os
import shlex
import shutil
import sys
import threading
import time

import numpy as np

from lstm_mnist import checkpoints, metrics, phases, scoring, settings
from lstm_mnist.errors import STOPS, ConfigError, Interrupted, TrainingError

STEP_NOTICE = "stopping after this step, once a checkpoint is saved (again to quit at once, without it)"


def lock(run_dir):
    """Hold the run folder for this process (released when it ends, even by kill -9), so that
    two runs never write the same folder; a second one is refused. Returns the lock's file
    descriptor, to close when done."""
    fd = os.open(os.path.join(run_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 100).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ConfigError(f"{run_dir} is in use by another training run ({owner}); wait for it to end or "
                          f"stop it first") from None
    try:  # who holds it, for the message above; the lock itself needs no space
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
    except OSError:
        pass
    return fd


def create_run_dir(out_dir, name=None):
    """A new runs/<YYYYmmdd-HHMMSS> folder (or runs/<name>); a second run of the same name, or in the
    same second, gets -2, -3, ..."""
    name = name or time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        path = os.path.join(out_dir, name if attempt == 1 else f"{name}-{attempt}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"out_dir = {out_dir}: cannot create a run folder there ({e.strerror}); "
                              f"choose a writable out_dir") from e
    raise ConfigError(f"out_dir = {out_dir}: too many runs named {name}")


# ------------------------------------------------------------ a training run

class TrainingRun:
    """What this project adds around the tutorial's loop: the run folder, validation,
    metrics and events, checkpoints, stop requests, the final extra lines and plots.

    The loop reaches it through five calls, in this order: `start` once the
    session's variables are initialized, `going` before every step, `after_step`
    after every step, `end_training` after the last step and `finish` after the
    tutorial's test line. Used as a context manager, it closes its files however
    the block ends. distributed.py's ChiefRun is this with the cluster's session;
    `trial` (tuning.TrialHooks) makes it a trial of a sweep: its run folder is named
    for the trial, and each validation accuracy goes to the study, which may stop it.
    """

    def __init__(self, cfg, model, mnist, resume, clock, trial=None):
        self.cfg, self.model, self.mnist, self.clock = cfg, model, mnist, clock  # clock: a phases.PhaseClock
        self.trial = trial
        if resume:
            self.checkpoint, self.run_dir = checkpoints.find_checkpoint(resume)
        else:
            self.checkpoint, self.run_dir = None, create_run_dir(cfg.out_dir, trial and trial.run_name)
        self.lock = lock(self.run_dir)
        self.last_step = settings.last_step(cfg)
        # Set by start(): the steps done before, the metrics log, the loop's own times.
        self.done = self.log = self.times = None
        self.saved_step = None  # the step of the last checkpoint this run wrote
        # Set by end_training(): the steps the loop ran up to, and their time.
        self.steps = self.train_seconds = None

    def __enter__(self):
        return self

    def __exit__(self, error_type, *_):
        if self.log:
            self.log.close()
        if error_type and not self.checkpoint and self.times is None:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # a new run stopped before training: nothing to keep
        os.close(self.lock)

    def iter_name(self, step):
        return f"Iter {step * self.cfg.batch_size} (step {step})"

    def start(self, sess):
        """Restore a resumed run's checkpoint, record the settings, open the logs; returns the steps done."""
        done = self.restore(sess)
        then = ("then resume again: the run folder is as it was" if self.checkpoint else
                "then start the run again (nothing was trained; the new run folder is removed)")
        settings.save_settings(self.run_dir, self.cfg, self.cluster_record(), then)
        self.log = metrics.RunLog(self.run_dir, self.model.graph, done, self.cfg.batch_size)
        STOPS.defer(STEP_NOTICE)  # first: a signal during the start-up stops here, before the loop
        if self.cfg.plots:  # matplotlib's import (a second) goes on beside the training, not after it
            threading.Thread(target=importlib.import_module, args=("lstm_mnist.plots",), daemon=True).start()
        self.clock.mark("session")
        self.done, self.times = done, phases.StepTimes()
        return done

    def restore(self, sess):
        """The resumed run's checkpoint into the session (with the data position); the steps it had done."""
        if not self.checkpoint:
            return 0
        done = checkpoints.restore(sess, self.model, self.checkpoint, self.mnist.train)
        checkpoints.forget_nothing(self.model, self.run_dir)
        print(f"Resuming {self.run_dir} after {self.iter_name(done)}")
        return done

    def cluster_record(self):
        return None  # one process: config.json records no cluster

    def going(self, more_steps):
        """Whether the loop may run another step: on one process, the tutorial's own condition
        `more_steps`; in a cluster, whether the global step is short of the last (ChiefRun)."""
        return more_steps

    def after_step(self, sess, step, feed, acc=None, loss=None):
        """Validation, metrics, checkpoints and stop requests after a step; `acc` and `loss`
        are the minibatch's, where the loop computed them."""
        cfg = self.cfg
        stopping = STOPS.requested  # a signal arriving later waits for the next step
        save = step % cfg.checkpoint_every == 0 or step == self.last_step or stopping
        if save and loss is None:  # a checkpoint is written only after a finite loss
            acc, loss = sess.run([self.model.accuracy, self.model.cost], feed_dict=feed)
        if loss is not None:
            self.check_loss(loss, step)
        with self.times.spent_on("validation"):
            validation_accuracy = self.validate(sess, step)
        displayed = step % cfg.display_step == 0
        if displayed or validation_accuracy is not None:
            self.log.write(step, loss if displayed else None, acc if displayed else None, validation_accuracy)
        if self.trial and validation_accuracy is not None:  # logged first: a pruned trial's last figure is kept
            self.trial.after_validation(step, validation_accuracy, step * cfg.batch_size,  # may stop the run
                                        last=step == self.last_step)
        if save:
            with self.times.spent_on("checkpoints"):
                saved = self.save_checkpoint(sess, step)
        if step == self.done + 1:
            self.times.first_step_done()
        if stopping:
            self.stop_the_others(sess)
            raise Interrupted(stopping, f"after {self.iter_name(step)}: checkpoint saved to {saved}\n"
                                        f"Resume with: {self.resume_command()}")

    def save_checkpoint(self, sess, step):
        """A checkpoint of `step`, with the training data's position; returns its path."""
        self.saved_step = step
        return checkpoints.save(sess, self.model, self.run_dir, step, self.mnist.train)

    def stop_the_others(self, sess):
        """Nothing to stop on one process; a cluster's chief stops every worker."""

    def resume_command(self):
        if self.trial:
            return self.trial.resume_command
        return f"python {shlex.quote(sys.argv[0])} --resume={shlex.quote(self.run_dir)}"

    def check_loss(self, loss, step):
        """A loss that is not finite, or above max_loss, stops the run before it can reach a checkpoint."""
        why = divergence(loss, self.cfg.max_loss)
        if why:
            last = checkpoints.latest_checkpoint(self.run_dir) or "none was saved yet"
            raise TrainingError(f"{why} at {self.iter_name(step)}: training diverged; "
                                f"last good checkpoint: {last}; lower learning_rate (now {self.cfg.learning_rate})")

    def validate(self, sess, step):
        """Accuracy on the validation set every eval_every steps (None otherwise), printed."""
        validation = self.mnist.validation
        due = self.cfg.eval_every and (step % self.cfg.eval_every == 0 or (self.trial and step == self.last_step))
        if not (due and validation.num_examples):  # a trial is judged by its last step too
            return None
        accuracy = scoring.evaluate(sess, self.model, validation).accuracy
        print(f"Validation Accuracy= {accuracy:.5f} ({validation.num_examples} images) "
              f"at Iter {step * self.cfg.batch_size}")
        return accuracy

    def end_training(self, sess, step):
        """Training is over; `step` is the loop's counter, one past the last step run. The last
        step saved a checkpoint (in a cluster, where the chief's last step is not the run's last,
        one is saved here)."""
        self.steps = step - 1
        if self.saved_step != self.steps:
            self.save_checkpoint(sess, self.steps)
        self.clock.mark("training")
        self.train_seconds = self.clock.seconds["training"]
        self.log.close()
        self.log = None
        STOPS.now(f"while scoring the test set: training is finished and saved in {self.run_dir}; "
                  f"score it with: python predict.py {shlex.quote(self.run_dir)}")

    def finish(self, sess, test_accuracy):
        """The lines beyond the tutorial's: the whole test set, the training time, plots,
        the run folder. Returns the run's numbers."""
        full = scoring.score_full_test_set(sess, self.model, self.mnist)
        self.clock.mark("scoring")
        STOPS.now(f"{'while writing plots' if self.cfg.plots else 'at the end'}: the model, metrics and events are "
                  f"saved in {self.run_dir}")
        for line in self.times.lines(self.train_seconds, self.done + 1, self.steps, self.cfg.batch_size):
            print(line)
        if self.cfg.plots:
            self.write_plots(sess, full.predicted)
            self.clock.mark("plots")
        print(self.clock.line())
        print(f"Run folder: {shown_path(self.run_dir)}")
        return {"test_accuracy": float(test_accuracy), "full_test_accuracy": full.accuracy,
                "full_test_loss": full.loss, "predicted": full.predicted, "steps": self.steps,
                "train_seconds": self.train_seconds, "phase_seconds": dict(self.clock.seconds),
                "run_dir": self.run_dir}

    def write_plots(self, sess, predicted):
        """The PNGs; a failure to write them (a full disk) is a warning: the run itself is saved."""
        from lstm_mnist import plots  # here: only runs that plot pay for matplotlib (imported since start())

        def step_probabilities_of(images):
            return sess.run(self.model.reading.probabilities, self.model.feed(images))
        try:
            plots.write_run_plots(self.run_dir, metrics.read_metrics(os.path.join(self.run_dir, "metrics.csv")),
                                  self.mnist.test, predicted, step_probabilities_of)
        except OSError as e:
            print(f"warning: could not write the plots in {self.run_dir} ({e.strerror or e}); the model, "
                  f"metrics and events are saved", file=sys.stderr)


def divergence(loss, max_loss):
    """What is wrong with a minibatch loss that says training diverged (not finite, or above
    `max_loss` where that is not 0), or None for a loss to go on with."""
    if not np.isfinite(loss):
        return f"minibatch loss is {loss}"
    if max_loss and loss > max_loss:
        return f"minibatch loss is {loss} (above max_loss = {max_loss:g})"
    return None


def shown_path(path):
    """A path as a user would type it here: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative
