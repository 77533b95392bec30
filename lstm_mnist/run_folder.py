"""The run folder: the part of a run that holds it, and the run's closing lines.

    runs/<YYYYmmdd-HHMMSS>/
        config.json            the settings (paths inside the project relative to it) and versions
        metrics.csv            one row per logged step (metrics.py)
        events.out.tfevents.*  TensorBoard: the graph and the same scalars
        model.ckpt-N.*         checkpoints (checkpoints.py), with the 'checkpoint' index
        *.png                  plots (plots.py)
"""
import fcntl
import os
import shlex
import shutil
import time

from lstm_mnist import checkpoints, saved_run
from lstm_mnist.errors import ConfigError
from lstm_mnist.part import Part

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


# ------------------------------------------------------------ the run's parts

class RunFolder(Part):
    """The run folder, held for this process: a new one (named `name`, else by the time), or the
    folder of the checkpoint `resume` names. It records the settings once the model is ready;
    a new run that ends before training has started leaves no folder behind."""

    def __init__(self, cfg, resume, name=None, cluster_record=None):
        self.cfg, self.cluster_record = cfg, cluster_record  # the cluster, for config.json (None: one process)
        if resume:
            self.checkpoint, self.run_dir = checkpoints.find_checkpoint(resume)
        else:
            self.checkpoint, self.run_dir = None, create_run_dir(cfg.out_dir, name)
        self.lock = lock(self.run_dir)

    def after_create_session(self, run, session):
        then = ("then resume again: the run folder is as it was" if self.checkpoint else
                "then start the run again (nothing was trained; the new run folder is removed)")
        saved_run.save_settings(self.run_dir, self.cfg, self.cluster_record, then)

    def close(self, run, error):
        if error and not self.checkpoint and not run.started:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # a new run stopped before training: nothing to keep
        os.close(self.lock)


def stop_lines(run_dir, resume_command):
    """What a signal does in a run that keeps `run_dir` (errors.StopOnSignal's three texts)."""
    return (STEP_NOTICE,
            lambda run, step: f"after {run.iter_name(step.number)}: checkpoint saved to {step.checkpoint}\n"
                              f"Resume with: {resume_command}",
            f"while scoring the test set: training is finished and saved in {run_dir}; "
            f"score it with: python predict.py {shlex.quote(run_dir)}")


class ClosingLines(Part):
    """The last lines: the time of each phase, and the run folder."""

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def on_test_end(self, run, session, results):
        print(run.clock.line())
        print(f"Run folder: {shown_path(self.run_dir)}")
        results.phase_seconds, results.run_dir = dict(run.clock.seconds), self.run_dir


def shown_path(path):
    """A path as a user would type it here: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative
