"""The run folder, and the bookkeeping this project adds around the tutorial's loop.

    runs/<YYYYmmdd-HHMMSS>/
        config.json            the settings (paths inside the project relative to it) and versions
        metrics.csv            one row per logged step
        events.out.tfevents.*  TensorBoard: the graph and the same scalars
        model.ckpt-N.*         checkpoints (checkpoints.py), with the 'checkpoint' index
        *.png                  plots (plots.py)
"""
import contextlib
import csv
import fcntl
import io
import json
import os
import shlex
import shutil
import sys
import time

import numpy as np

from lstm_mnist import checkpoints, scoring, settings
from lstm_mnist.errors import STOPS, ConfigError, Interrupted, TrainingError
from lstm_mnist.tf_setup import tf, tf1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project: the folder above this package
METRIC_FIELDS = ["step", "examples", "minibatch_loss", "minibatch_accuracy", "validation_accuracy"]
PATH_SETTINGS = ("data_dir", "out_dir")
STEP_NOTICE = "stopping after this step, once a checkpoint is saved (again to quit at once, without it)"


def write_atomically(path, text):
    """Write under a temporary name, then rename: a crash never leaves a half-written file.
    A failure (a full disk, say) is a TrainingError and leaves the old file as it was."""
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    except OSError as e:
        if os.path.exists(path + ".tmp"):
            os.remove(path + ".tmp")
        raise cannot_write(path, e) from e


def cannot_write(path, error):
    return TrainingError(f"cannot write {path}: {error.strerror or error}; free some space (or make it "
                         f"writable), then resume from the last checkpoint")


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


def create_run_dir(out_dir):
    """A new runs/<YYYYmmdd-HHMMSS> folder; a second run in the same second gets -2, -3, ..."""
    name = time.strftime("%Y%m%d-%H%M%S")
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


# ---------------------------------------------------------------- config.json

def portable_path(path):
    """A path inside the project relative to it, so that a moved checkout or a run folder
    copied to another machine finds its own data; any other path absolute."""
    path = os.path.abspath(path)
    inside = os.path.relpath(path, ROOT)
    return path if inside == ".." or inside.startswith(".." + os.sep) else inside


def save_settings(run_dir, cfg, cluster=None):
    """config.json: the settings, the versions, and the cluster (distributed.py) if there is one."""
    values = {name: portable_path(value) if name in PATH_SETTINGS else value for name, value in vars(cfg).items()}
    record = {"config": values, "versions": {"tensorflow": tf.__version__, "numpy": np.__version__,
                                             "python": sys.version.split()[0]}}
    if cluster:
        record["cluster"] = cluster
    write_atomically(os.path.join(run_dir, "config.json"), json.dumps(record, indent=2) + "\n")


def saved_settings(run_dir):
    """The settings a run was made with, as {name: value}: config.py's names and types,
    the run's values (config.py's where the run predates a setting)."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)["config"]
        if not isinstance(saved, dict):
            raise TypeError(f"its config is a {type(saved).__name__}, not a table of settings")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: cannot read the run's settings ({e}); is {run_dir} a run folder?") from e
    values = settings.config_values()
    for name, default in values.items():
        value = saved.get(name, default)
        if type(default) is float and type(value) is int:
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{path}: {name} is {value!r}, expected {type(default).__name__} like {default!r}; "
                              f"correct or remove it")
        values[name] = os.path.join(ROOT, value) if name in PATH_SETTINGS else value
    return values


def open_saved_run(path, overrides):
    """(settings, checkpoint) of a saved run folder (its latest checkpoint) or checkpoint:
    the settings of its config.json with `overrides` applied."""
    checkpoint, run_dir = checkpoints.find_checkpoint(path)
    saved = saved_settings(run_dir)
    settings.check_resume_overrides(overrides, saved)
    return settings.make(overrides, saved=saved), checkpoint


# ------------------------------------------------------- metrics and events

class RunLog:
    """metrics.csv and TensorBoard events of a run folder, appended as training goes.

    Opening at `step` after a resume drops what was logged beyond that step by a
    run that stopped without a checkpoint there, so the logs match the model.
    """

    def __init__(self, run_dir, graph, step, cfg):
        self.path = os.path.join(run_dir, "metrics.csv")
        self.batch_size = cfg.batch_size
        kept = io.StringIO()
        metrics_writer(kept).writeheader()
        metrics_writer(kept).writerows(row for row in read_metrics(self.path) if int(row["step"]) <= step)
        write_atomically(self.path, kept.getvalue())
        self.file = open(self.path, "a", newline="", encoding="utf-8")
        self.csv = metrics_writer(self.file)
        self.events = tf1.summary.FileWriter(run_dir, graph=graph if step == 0 else None)
        if step:
            # Tells TensorBoard to discard events logged beyond this step before.
            self.events.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START),
                                        global_step=step * cfg.batch_size)

    def write(self, step, loss=None, accuracy=None, validation_accuracy=None):
        examples = step * self.batch_size
        try:
            self.csv.writerow({"step": step, "examples": examples,
                               "minibatch_loss": "" if loss is None else f"{loss:.6f}",
                               "minibatch_accuracy": "" if accuracy is None else f"{accuracy:.5f}",
                               "validation_accuracy": "" if validation_accuracy is None else
                               f"{validation_accuracy:.5f}"})
            self.file.flush()
        except OSError as e:
            raise cannot_write(self.path, e) from e
        scalars = {"minibatch/loss": loss, "minibatch/accuracy": accuracy, "validation/accuracy": validation_accuracy}
        values = [tf1.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items() if v is not None]
        self.events.add_summary(tf1.Summary(value=values), global_step=examples)
        self.events.flush()

    def close(self):
        self.file.close()
        self.events.close()


def metrics_writer(file):
    return csv.DictWriter(file, METRIC_FIELDS, lineterminator="\n")


def read_metrics(path):
    """metrics.csv's rows (dicts of strings). Rows that are damaged (not numbers where numbers
    belong, a binary mess) are dropped with one warning line: they never fail a run."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        text = f.read().replace("\0", "")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    intact = [row for row in rows if intact_row(row)]
    if len(intact) < len(rows) or (reader.fieldnames and reader.fieldnames != METRIC_FIELDS):
        print(f"warning: {path} is damaged: kept its {len(intact)} intact rows, dropped the rest", file=sys.stderr)
    return intact


def intact_row(row):
    try:
        int(row["step"]), int(row["examples"])
        for name in METRIC_FIELDS[2:]:
            if row[name] != "":
                float(row[name])
        return True
    except (KeyError, TypeError, ValueError):
        return False


# ------------------------------------------------------------ a training run

class TrainingRun:
    """What this project adds around the tutorial's loop: the run folder, validation,
    metrics and events, checkpoints, stop requests, the final extra lines and plots.

    The loop reaches it through four calls: `start` once the variables are
    initialized, `after_step` after every step, `end_training` after the last
    step and `finish` after the tutorial's test line. Used as a context manager,
    it closes its log files however the block ends.
    """

    def __init__(self, cfg, model, mnist, resume, clock):
        self.cfg, self.model, self.mnist, self.clock = cfg, model, mnist, clock  # clock: a phases.PhaseClock
        if resume:
            self.checkpoint, self.run_dir = checkpoints.find_checkpoint(resume)
        else:
            self.checkpoint, self.run_dir = None, create_run_dir(cfg.out_dir)
        self.lock = lock(self.run_dir)
        self.last_step = settings.last_step(cfg)
        self.log = self.started = None

    def __enter__(self):
        return self

    def __exit__(self, error_type, *_):
        if self.log:
            self.log.close()
        if error_type and not self.checkpoint and self.started is None:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # a new run stopped before training: nothing to keep
        os.close(self.lock)

    def iter_name(self, step):
        return f"Iter {step * self.cfg.batch_size} (step {step})"

    def start(self, sess):
        """Restore a resumed run's checkpoint, record the settings, open the logs; returns the steps done."""
        done = 0
        if self.checkpoint:
            done = checkpoints.restore(sess, self.model, self.checkpoint, self.mnist.train)
            checkpoints.forget_nothing(self.model, self.run_dir)
            print(f"Resuming {self.run_dir} after {self.iter_name(done)}")
        save_settings(self.run_dir, self.cfg)
        self.log = RunLog(self.run_dir, self.model.graph, done, self.cfg)
        self.seconds_aside = {"validation": 0.0, "checkpoints": 0.0}
        STOPS.defer(STEP_NOTICE)  # first: a signal during the start-up stops here, before `started`
        self.clock.mark("session")
        self.done, self.started = done, time.perf_counter()
        return done

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
        with self.aside("validation"):
            validation_accuracy = self.validate(sess, step)
        displayed = step % cfg.display_step == 0
        if displayed or validation_accuracy is not None:
            self.log.write(step, loss if displayed else None, acc if displayed else None, validation_accuracy)
        if save:
            with self.aside("checkpoints"):
                saved = checkpoints.save(sess, self.model, self.run_dir, step, self.mnist.train)
        if step == self.done + 1:
            self.first_step_seconds = time.perf_counter() - self.started
            self.seconds_aside = dict.fromkeys(self.seconds_aside, 0.0)  # the first step is left out whole
        if stopping:
            raise Interrupted(stopping, f"after {self.iter_name(step)}: checkpoint saved to {saved}\n"
                                        f"Resume with: python {shlex.quote(sys.argv[0])} "
                                        f"--resume={shlex.quote(self.run_dir)}")

    @contextlib.contextmanager
    def aside(self, what):
        """Time spent on `what` (validation, checkpoints), left out of the steady-state figure."""
        started = time.perf_counter()
        yield
        self.seconds_aside[what] += time.perf_counter() - started

    def check_loss(self, loss, step):
        """A loss that is not finite, or above max_loss, stops the run before it can reach a checkpoint."""
        limit = self.cfg.max_loss
        if not np.isfinite(loss) or (limit and loss > limit):
            why = "" if not np.isfinite(loss) else f" (above max_loss = {limit:g})"
            last = checkpoints.latest_checkpoint(self.run_dir) or "none was saved yet"
            raise TrainingError(f"minibatch loss is {loss}{why} at {self.iter_name(step)}: training diverged; "
                                f"last good checkpoint: {last}; lower learning_rate (now {self.cfg.learning_rate})")

    def validate(self, sess, step):
        """Accuracy on the validation set every eval_every steps (None otherwise), printed."""
        validation = self.mnist.validation
        if not (self.cfg.eval_every and step % self.cfg.eval_every == 0 and validation.num_examples):
            return None
        accuracy = scoring.evaluate(sess, self.model, validation, self.cfg).accuracy
        print(f"Validation Accuracy= {accuracy:.5f} ({validation.num_examples} images) "
              f"at Iter {step * self.cfg.batch_size}")
        return accuracy

    def end_training(self, step):
        """Training is over (the last step saved a checkpoint); `step` is the loop's counter."""
        self.clock.mark("training")
        self.train_seconds = self.clock.seconds["training"]
        self.steps = step - 1
        self.log.close()
        self.log = None
        STOPS.now(f"while scoring the test set: training is finished and saved in {self.run_dir}; "
                  f"score it with: python predict.py {shlex.quote(self.run_dir)}")

    def finish(self, sess, test_accuracy):
        """The lines beyond the tutorial's: the whole test set, the training time, plots,
        the run folder. Returns the run's numbers."""
        cfg = self.cfg
        full = scoring.score_full_test_set(sess, self.model, self.mnist, cfg)
        self.clock.mark("scoring")
        STOPS.now(f"{'while writing plots' if cfg.plots else 'at the end'}: the model, metrics and events are "
                  f"saved in {self.run_dir}")
        trained = self.steps - self.done
        print(f"Training time: {self.train_seconds:.1f} s for {trained} steps, "
              f"{trained * cfg.batch_size / max(self.train_seconds, 1e-9):.0f} examples/s "
              f"(with validation and checkpoints)")
        self.print_steady_state()
        if cfg.plots:
            self.write_plots(sess, full.predicted)
            self.clock.mark("plots")
        print(self.clock.line())
        print(f"Run folder: {self.run_dir}")
        return {"test_accuracy": float(test_accuracy), "full_test_accuracy": full.accuracy,
                "full_test_loss": full.loss, "predicted": full.predicted, "steps": self.steps,
                "train_seconds": self.train_seconds, "phase_seconds": dict(self.clock.seconds),
                "run_dir": self.run_dir}

    def print_steady_state(self):
        """The training speed to compare with other frameworks' figures: without the first step
        (graph warm-up), validation and checkpoints, each reported on its own."""
        steady_steps = self.steps - self.done - 1
        if steady_steps < 1:
            return
        steady = self.train_seconds - self.first_step_seconds - sum(self.seconds_aside.values())
        print(f"Steady state: {steady_steps * self.cfg.batch_size / max(steady, 1e-9):.0f} examples/s over steps "
              f"{self.done + 2}-{self.steps} (left out: the first step {self.first_step_seconds:.2f} s, validation "
              f"{self.seconds_aside['validation']:.2f} s, checkpoints {self.seconds_aside['checkpoints']:.2f} s)")

    def write_plots(self, sess, predicted):
        """The PNGs; a failure to write them (a full disk) is a warning: the run itself is saved."""
        from lstm_mnist import plots  # here: only runs that plot pay for matplotlib

        def step_probabilities_of(images):
            return sess.run(self.model.reading.probabilities,
                            {self.model.x: images.reshape((-1, self.cfg.n_steps, self.cfg.n_input))})
        try:
            plots.write_run_plots(self.run_dir, read_metrics(os.path.join(self.run_dir, "metrics.csv")),
                                  self.mnist.test, predicted, step_probabilities_of)
        except OSError as e:
            print(f"warning: could not write the plots in {self.run_dir} ({e.strerror or e}); the model, "
                  f"metrics and events are saved", file=sys.stderr)
