"""Tune it: hyperparameter sweeps on Optuna, seen in TensorBoard's HParams dashboard.

    python sweep.py --trials=24                          # a study in runs/sweep/ (study.db, a run folder a trial)
    python sweep.py --trials=8                           # the same study, 8 trials more
    python sweep.py --trials=24 --jobs=2 --study=wide    # two trials at a time, in runs/wide/
    python sweep.py --trials=24 --training_iters=30000   # a setting fixed for every trial
    python sweep.py --trials=24 --space=my_space.py      # another search space (default: space.py)
    tensorboard --logdir runs/sweep                      # every trial in the HParams dashboard

Each trial is a normal training run in a child process (lstm_mnist/tuning.py
says why), under the sweep folder and named for its trial. Optuna's sampler (TPE)
draws its settings from the space; its validation accuracy, never the test set's,
is the objective, reported every eval_every steps so that the median pruner can
stop hopeless trials. `--storage=URL` (PostgreSQL, MySQL, or a journal file on a
shared file system: `journal:PATH`) lets the same command on several machines work
on one study. At the end: the table of trials (also results.csv), the best trial's
full test-set accuracy, and Optuna's plots in the sweep folder.
"""
import argparse
import contextlib
import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import warnings

import optuna

import predict
import train_lstm_mnist as script
from lstm_mnist import context, entry_point, errors, saved_run, tuning
from lstm_mnist.files import replaced_atomically, write_atomically

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPACE = os.path.join(ROOT, "space.py")
DEFAULT_STUDY = "sweep"
POLL_S = 0.2  # how often the sweep looks at its running trials
ENDED = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
RESUME_SWEEP = "run the same command again to continue the study"
UNRECORDED = "the next sweep on this machine records it as failed"  # a trial whose end the study could not take


# ------------------------------------------------------------------ the study

def open_study(name, storage, create=True):
    """The Optuna study `name` in `storage` (an RDB URL, or journal:PATH), created where missing."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep prints its own lines
    try:
        with creating_alone(storage):
            return study_in(name, storage, create)
    except Exception as e:
        if not (isinstance(e, (ImportError, ValueError)) or is_storage_error(e)):
            raise
        cause = root_cause(e)  # Optuna wraps the database's own words in "An exception is raised during..."
        raise errors.ConfigError(f"--storage={storage}: cannot open the study there ({first_line(cause)}); "
                                 f"{what_to_do(cause)}") from e


def study_in(name, storage, create):
    """The study in a storage made from its URL: loaded, or created where missing when `create`."""
    if storage.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        backend = optuna.storages.JournalStorage(JournalFileBackend(storage[len("journal:"):]))
    else:
        backend = optuna.storages.RDBStorage(storage, engine_kwargs=connect_timeout(storage))
    if not create:
        return optuna.load_study(study_name=name, storage=backend)
    return optuna.create_study(study_name=name, storage=backend, direction="maximize", load_if_exists=True,
                               sampler=optuna.samplers.TPESampler(seed=None),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0))


def is_storage_error(error):
    """Whether `error` comes from the study's storage: no server, a wrong password, a full disk, a
    read-only file: OSError, Optuna's errors, or SQLAlchemy's, which have no common base worth
    importing. Anything else is a bug."""
    return (isinstance(error, (OSError, optuna.exceptions.OptunaError))
            or type(error).__module__.startswith("sqlalchemy"))


def root_cause(error):
    """The first error of the chain that raised `error`."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return error


def what_to_do(error):
    """The advice for a storage that failed, from its error's words."""
    text = str(error).lower()
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "the database cannot be written: make it (and its folder) writable, or give another --storage"
    if "disk is full" in text or "no space" in text:
        return "its disk is full: free some space, then run the same command again to continue the study"
    return "give a reachable database URL or journal:PATH"


def sqlite_database(storage):
    """The file of an SQLite storage URL ('' for one in memory), or None for another storage."""
    if not storage.startswith("sqlite:"):
        return None
    database = storage.split("?", 1)[0].removeprefix("sqlite:").removeprefix("///").removeprefix("//")
    return "" if database in ("", ":memory:") or "mode=memory" in storage else database


@contextlib.contextmanager
def creating_alone(storage):
    """Two sweeps that create the same new SQLite study at once race on its tables ('table studies
    already exists'): they take turns, under a lock on the database's folder."""
    database = sqlite_database(storage)
    if not database:
        yield
        return
    folder = os.open(os.path.dirname(os.path.abspath(database)), os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def check_storage(storage):
    """Refuse a storage that the trial processes cannot share."""
    if sqlite_database(storage) == "":
        raise errors.ConfigError(f"--storage={storage}: an in-memory database is not shared: each trial process "
                                 f"would get an empty one of its own; give a file (sqlite:///PATH), a database "
                                 f"server's URL or journal:PATH")


def connect_timeout(storage):
    """SQLite waits for a writer from another process instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}


def first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ------------------------------------------------------------------ one trial

def run_one_trial(arguments, overrides):
    """In a child process: ask the study for a trial, train it (a signal stops it as it stops the
    script), tell the study how it ended."""
    space = tuning.load_space(arguments.space, script.SETTINGS)
    study = open_study(arguments.study, arguments.storage, create=False)
    trial = study.ask()
    print(f"Trial {trial.number}: asked", flush=True)  # the sweep reads this line
    trial.set_user_attr("process", this_process())  # for a later sweep, should this one die unrecorded
    report = tuning.TrialReport(trial)
    run_dir = os.path.join(overrides["out_dir"], report.run_name)
    started, state, reason, results, params = time.monotonic(), "COMPLETE", "", None, {}
    try:
        params = suggest_or_fail(trial, space)
        print(f"Trial {trial.number}: {json.dumps(params)}", flush=True)
        cfg = script.SETTINGS.make({**overrides, **params})
        results = script.train(cfg, trial=report)
    except tuning.Pruned as e:
        state, reason = "PRUNED", str(e)
    except (errors.BadInput, errors.TrainingError) as e:
        state, reason = "FAIL", str(e)
    except errors.Interrupted as e:
        state, reason = "FAIL", str(e).splitlines()[0]
        record(study, trial, report, run_dir, params, state, reason, started, results)
        raise
    try:
        attrs = record(study, trial, report, run_dir, params, state, reason, started, results)
    except Exception as e:
        if not is_storage_error(e):
            raise
        print(f"Trial {trial.number}: {ENDED[state]}, but could not be recorded ({first_line(root_cause(e))}); "
              f"{UNRECORDED}", flush=True)
        return 1
    reached = "" if state == "FAIL" else f", validation accuracy {attrs['validation_accuracy']:.5f} at step " \
                                         f"{attrs['steps']}"
    print(f"Trial {trial.number}: {ENDED[state]}{reached}" + (f": {reason}" if reason else ""), flush=True)
    return 0 if state != "FAIL" else 1


def suggest_or_fail(trial, space):
    """The trial's settings; a space the study cannot draw (a choice's values changed since its first
    trials: Optuna keeps them) is a ConfigError, which fails this trial alone."""
    try:
        return tuning.suggest(trial, space)
    except ValueError as e:
        raise errors.ConfigError(f"the space cannot be drawn in this study ({e}); keep each choice's values, or "
                                 f"start a new study with --study=NAME") from e


def record(study, trial, report, run_dir, params, state, reason, started, results):
    """The trial's end, in the study (with its steps, time, folder and reason) and in its run folder;
    returns what was recorded."""
    judged = state != "FAIL"  # a failed trial's last report says nothing of how far it got: its reason does
    attrs = {"steps": (results.steps if results else report.steps) if judged else None,
             "seconds": round(time.monotonic() - started, 1), "run_dir": run_dir, "reason": reason,
             "validation_accuracy": report.accuracy if judged else None}
    for name, value in attrs.items():
        trial.set_user_attr(name, value)
    if os.path.isdir(run_dir):
        tuning.write_result(run_dir, {"state": state, "params": params, **attrs})
        tuning.write_hparams_session(run_dir, params, state)
    if state == "COMPLETE":
        study.tell(trial, report.accuracy)
    else:
        study.tell(trial, state=getattr(optuna.trial.TrialState, state))
    return attrs


def this_process():
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_abandoned_trials(study):
    """Trials left RUNNING by a trial process of this machine that has ended (killed, or on a full
    disk that could not take its record) are failed, saying so; other machines' are theirs."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        where, _, pid = trial.user_attrs.get("process", "").rpartition(":")
        if where == host and pid.isdigit() and not process_alive(int(pid)):
            # A FrozenTrial's id is not public; Trial(study, id) is how Optuna itself reopens a trial.
            optuna.trial.Trial(study, trial._trial_id).set_user_attr(
                "reason", "its process ended before it could record how the trial ended")
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            print(f"Trial {trial.number}: failed: its process ended before it could record how (found by this sweep)")


def process_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True


# ------------------------------------------------------------------ the sweep

class Child:
    """A trial's child process, its log, and the trial number it announced."""

    def __init__(self, command, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w", encoding="utf-8")
        # A session of its own: a Ctrl-C in the terminal reaches the sweep, which forwards it once.
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def trial_number(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        return int(first.split()[1].rstrip(":")) if first.startswith("Trial ") else None

    def last_line(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1] if lines else ""


def run_trials(arguments, overrides, sweep_dir, study):
    """`arguments.trials` trials, `arguments.jobs` at a time; a failed trial is recorded and the sweep
    goes on; a signal is passed to the running trials, which stop as the script stops."""
    intra, inter = tuning.threads_for(arguments.jobs)
    threads = {"intra_op_threads": intra, "inter_op_threads": inter}
    trial_settings = {"plots": False, **threads, **overrides, "out_dir": sweep_dir}
    command = [sys.executable, os.path.abspath(__file__), "--trial_process", f"--study={arguments.study}",
               f"--storage={arguments.storage}", f"--space={arguments.space}",
               *[f"--{name}={value}" for name, value in trial_settings.items()]]
    print(f"Threads: {intra} intra-op, {inter} inter-op for each of {arguments.jobs} trial(s) at a time "
          f"({os.cpu_count()} cores)")
    context.defer("stopping the running trials after their current step (checkpoints saved)")
    running, launched, forwarded, ended = [], 0, False, []
    while running or (launched < arguments.trials and not context.requested()):
        if context.requested() and not forwarded:
            for child in running:
                child.process.send_signal(context.requested())
            forwarded = True
        while len(running) < arguments.jobs and launched < arguments.trials and not context.requested():
            launched += 1
            running.append(Child(command, os.path.join(sweep_dir, f"launch-{time.time_ns()}.log")))
        for child in [c for c in running if c.process.poll() is not None]:
            running.remove(child)
            ended.append(finished(study, child))
        time.sleep(POLL_S)
    if context.requested():
        raise errors.Interrupted(context.requested(), f"while sweeping: the running trials stopped and were "
                                                         f"recorded as failed, every completed one is kept; "
                                                         f"{RESUME_SWEEP}")
    return ended


def finished(study, child):
    """Print how a trial ended, and fail it in the study if its process died before saying;
    returns its state's name (FAIL for a process that had no trial, UNRECORDED for a trial whose end
    the study could not take)."""
    number = child.trial_number()
    child.log.close()
    if number is None:
        print(f"A trial process ended before it had a trial ({child.last_line() or 'no output'}); see "
              f"{child.log_path}")
        return "FAIL"
    named = os.path.join(os.path.dirname(child.log_path), f"trial-{number:04d}.log")
    os.replace(child.log_path, named)
    child.log_path = named
    try:
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is not None and trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            print(f"Trial {number}: failed: its process ended with {child.process.returncode} before it could say "
                  f"why")
            return "FAIL"
    except Exception as e:
        if not is_storage_error(e):
            raise
        said = child.last_line()  # as a rule the trial's own "Trial N: ..." line
        if not said.startswith(f"Trial {number}:"):
            said = f"Trial {number}: {said}"
        if UNRECORDED not in said:  # the trial's process said so itself, or it is said here
            said += f"; the study could not be read or written ({first_line(root_cause(e))}); {UNRECORDED}"
        print(said)
        return "UNRECORDED"
    print(child.last_line())
    return trial.state.name if trial is not None else "FAIL"


# ------------------------------------------------------------------ the end

def report(study, space, sweep_dir):
    """The table (and results.csv), the best trial's full test set, and Optuna's plots."""
    rows = tuning.table_rows(study, space)
    print(tuning.as_table(rows, space))
    try:
        write_atomically(os.path.join(sweep_dir, "results.csv"), tuning.as_csv(rows))
        print(f"Table: {os.path.join(sweep_dir, 'results.csv')}")
    except OSError as e:
        print(f"warning: could not write {os.path.join(sweep_dir, 'results.csv')} ({e.strerror or e}); the study "
              f"holds every trial", file=sys.stderr)
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    if complete:
        best = complete[0]
        print(f"Best: trial {best['trial']}, validation accuracy {best['validation_accuracy']}, "
              f"{ {name: best[name] for name in space} }, in {best['run_dir']}")
        cfg, checkpoint = saved_run.open_saved_run(best["run_dir"], {}, script.SETTINGS)
        predict.score(cfg, checkpoint)  # the test set, scored once, for the best trial only
    write_plots(study, sweep_dir)


def write_plots(study, sweep_dir):
    """Optuna's own matplotlib plots, where the study has enough trials for each."""
    from optuna.visualization import matplotlib as optuna_plots  # here: only the sweep's end draws

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    plots = {"history.png": optuna_plots.plot_optimization_history,
             "parallel.png": optuna_plots.plot_parallel_coordinate,
             "importances.png": optuna_plots.plot_param_importances}
    plots = dict(list(plots.items())[:min(len(complete), 3)])  # importances need two trials, the others one
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, plot in plots.items():
            axes = plot(study)
            figure = (axes if not hasattr(axes, "figure") else axes.figure)
            figure = figure.flat[0].figure if hasattr(figure, "flat") else figure
            context.check()  # a signal stops the plots between figures
            try:
                with replaced_atomically(os.path.join(sweep_dir, name), "wb") as f:
                    figure.savefig(f, format="png", dpi=100, bbox_inches="tight")
            except OSError as e:
                print(f"warning: could not write {name} in {sweep_dir} ({e.strerror or e})", file=sys.stderr)
                continue
            written.append(name)
    nothing = "none written (see the warnings above)" if plots else "none yet (no complete trial)"
    print(f"Plots: {', '.join(written) or nothing} in {sweep_dir}")


# ------------------------------------------------------------------ main

def add_arguments(parser):
    parser.add_argument("--trials", type=int, default=None, help="trials to add to the study (required)")
    parser.add_argument("--jobs", type=int, default=1, help="trials at a time on this machine (default: 1)")
    parser.add_argument("--study", default=DEFAULT_STUDY, help=f"the study's name, and its folder under out_dir "
                                                               f"(default: {DEFAULT_STUDY})")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage: a database URL or journal:PATH "
                                                         "(default: sqlite in the sweep folder)")
    parser.add_argument("--space", metavar="FILE", default=DEFAULT_SPACE, help="the search space (default: space.py)")
    parser.add_argument("--trial_process", action="store_true", help=argparse.SUPPRESS)  # a trial's child process


def check_arguments(arguments, space, overrides):
    if arguments.trials is None or arguments.trials < 1:
        raise errors.ConfigError("--trials=N is needed: how many trials to add to the study (N >= 1)")
    if arguments.jobs < 1:
        raise errors.ConfigError(f"--jobs={arguments.jobs} is not allowed: must be >= 1")
    if arguments.study.strip(".") == "":
        raise errors.ConfigError(f"--study={arguments.study}: a study needs a name, which is also its folder under "
                                 f"out_dir; give letters, digits, '.', '_' or '-', like --study=wide")
    both = sorted(set(space) & set(overrides))
    if both:
        raise errors.ConfigError(f"--{both[0]} is both fixed on the command line and searched in {arguments.space}; "
                                 f"leave it out of one")


def sweep(overrides, arguments):
    if arguments.trial_process:
        return run_one_trial(arguments, overrides)
    space = tuning.load_space(arguments.space, script.SETTINGS)
    check_arguments(arguments, space, overrides)
    cfg = script.SETTINGS.make(overrides)  # the fixed settings, checked before any trial starts
    tuning.check_space_values(space, overrides, arguments.space, script.SETTINGS)
    sweep_dir = os.path.join(cfg.out_dir, tuning.study_folder_name(arguments.study))
    try:
        os.makedirs(sweep_dir, exist_ok=True)
    except OSError as e:
        raise errors.ConfigError(f"out_dir = {cfg.out_dir}: cannot create the sweep folder there "
                                 f"({e.strerror or e})") from e
    arguments.storage = arguments.storage or f"sqlite:///{os.path.join(sweep_dir, 'study.db')}"
    check_storage(arguments.storage)
    study = open_study(arguments.study, arguments.storage)
    print(f"Study {arguments.study}: {len(study.trials)} trials so far in {arguments.storage}; "
          f"adding {arguments.trials}")
    fail_abandoned_trials(study)
    tuning.write_hparams_experiment(sweep_dir, space, overrides)
    try:
        ended = run_trials(arguments, overrides, sweep_dir, study)
    finally:
        if not context.requested():
            context.now(f"while reporting: no trial runs, every trial is recorded in the study; {RESUME_SWEEP}")
            report(study, space, sweep_dir)
    print(f"TensorBoard: tensorboard --logdir {shlex.quote(sweep_dir)} (the HParams tab)")
    if "UNRECORDED" in ended:
        raise errors.TrainingError(f"the study in {arguments.storage} could not take how {ended.count('UNRECORDED')} "
                                   f"trial(s) ended (a full disk?): free some space (or make it writable), then "
                                   f"{RESUME_SWEEP}: the next sweep on this machine records them as failed")
    if ended and set(ended) == {"FAIL"}:
        raise errors.TrainingError(f"every trial of this sweep failed ({len(ended)}); why is in the table "
                                   f"above and in {os.path.join(sweep_dir, 'trial-*.log')}; once that is "
                                   f"mended, {RESUME_SWEEP}")


def main(argv=None):
    return entry_point.run(argv, __doc__, add_arguments, script.SETTINGS, sweep)


if __name__ == "__main__":
    entry_point.exit_process(main())
