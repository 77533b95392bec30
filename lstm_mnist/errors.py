"""The script's own errors, stop signals, and how an entry point reports them.

What a user can cause ends as one line on stderr and an exit code: 2 for bad
input (ConfigError, data.DataError), 1 when training cannot go on
(TrainingError), 128 + the signal for SIGINT/SIGTERM (Interrupted). Anything
else is a bug and keeps its traceback.
"""
import contextlib
import gc
import os
import signal
import sys
import threading

import data
from lstm_mnist.part import Part


class ConfigError(Exception):
    """A setting, command-line argument or input path is not usable (exit code 2)."""


class TrainingError(Exception):
    """Training cannot go on: a diverged loss, a checkpoint that cannot be written (exit code 1)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (exit code 128 + signal); the message says what is safe.

    Raised by the code at its safe points (see StopRequests), never by the signal
    handler. A BaseException, as KeyboardInterrupt is, so that library code that
    catches Exception (TensorFlow's does, around its feeds and hooks) lets it pass
    on to the entry point.
    """

    def __init__(self, signum, what):
        super().__init__(f"Interrupted by {signal.Signals(signum).name} {what}")
        self.exit_code = 128 + signum


def cannot_write(path, error, then="then resume from the last checkpoint"):
    """The TrainingError for a file that could not be written (a full disk, a read-only folder);
    `then` says what the user can do once the cause is fixed."""
    return TrainingError(f"cannot write {path}: {error.strerror or error}; free some space (or make it writable), "
                         f"{then}")


class StopRequests:
    """What SIGINT and SIGTERM do, phase by phase.

    The signal handler never raises: an exception raised from it lands in
    whatever Python code runs at that moment, and inside TensorFlow's session
    code that was swallowed (the run went on and exited 0) or crashed the
    process (SIGSEGV in its C++ helpers), in about a third of the tries. So
    the handler only notes the signal, and the code acts on it at safe points:
    - after `defer` (while training steps run), the loop honours `requested`
      after the current step, once a checkpoint is saved;
    - at any other time `check()` raises Interrupted, whose message is the
      phase's `what` when the signal came: what was going on and what is safe.
      It is called between the batches of scoring, between waits, at every
      change of phase and when the entry point's work returns.
    A second signal quits at once (the signals' default action, which needs
    no Python code to run): for a step or a call that does not return.
    """

    def __init__(self, second=signal.SIG_DFL):
        self.second = second  # what the next SIGINT does once the first has come
        self.what = "while starting: nothing was saved"
        self.deferred = False
        self.requested = self.pending = self.notice = None

    def now(self, what):
        """From here on a signal stops the run at the next check, saying `what`."""
        self.check()
        self.what, self.deferred = what, False

    def defer(self, notice=None):
        """From here on a signal is noted for the code to honour; `notice` says so at the first."""
        self.check()
        self.deferred, self.requested, self.notice = True, None, notice

    def check(self):
        """Raise Interrupted if a signal came while the run was to stop at once."""
        if self.pending:
            raise self.pending

    def handle(self, signum, frame):
        for sig in SIGNALS:  # only the first signal comes here: the next one meets the default action
            signal.signal(sig, self.second if sig == signal.SIGINT else signal.SIG_DFL)
        if not self.deferred:
            self.pending = Interrupted(signum, self.what)
            return
        self.requested = signum
        if self.notice:
            print(f"{signal.Signals(signum).name}: {self.notice}", file=sys.stderr)


SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(Part):
    """A run's part: while steps run, a signal is noted (`notice` says so) and stops the run after
    the step it came in, once the parts before this one are done with that step (its checkpoint
    saved), with Interrupted(`stopped_after(run, step)`); after training, a signal stops at once,
    saying `after_training`."""

    def __init__(self, notice, stopped_after, after_training):
        self.notice, self.stopped_after, self.after_training = notice, stopped_after, after_training

    def start(self, run, sess):
        run.stops.defer(self.notice)  # a signal that came during the start-up stops the run here

    def after_step(self, run, sess, step):
        if step.stopping:
            raise Interrupted(step.stopping, self.stopped_after(run, step))

    def end_training(self, run, sess):
        run.stops.now(self.after_training)


@contextlib.contextmanager
def signals_handled(in_a_kernel=False):
    """SIGINT and SIGTERM go to the StopRequests this yields while the block runs, and a second one
    quits at once. The entry point that holds it hands it to the code it calls (the run, whose parts
    set their phases through runs.Run.stops; scoring, plots, a cluster's waits check it). In a
    Jupyter kernel (`in_a_kernel`) a second SIGINT interrupts instead (KeyboardInterrupt), as
    the stop button always does there: quitting would end the kernel and lose the notebook's state."""
    stops = StopRequests(second=signal.default_int_handler if in_a_kernel else signal.SIG_DFL)
    previous = {sig: signal.signal(sig, stops.handle) for sig in SIGNALS}
    watcher = None if in_a_kernel else SecondSignalWatcher()
    try:
        yield stops
    finally:
        if watcher:
            watcher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class SecondSignalWatcher:
    """Quits the process at the second SIGINT or SIGTERM, even while the main thread is inside a
    long TensorFlow call.

    Python runs a signal handler only when the main thread is back in the
    interpreter: during a 20-second step, the first signal's handler (which
    leaves the next signal to its default action) has not run yet, and a second
    signal would only trip the first again. The C-level handler writes every
    signal's number to the wakeup fd at once, though, so this thread sees both.
    """

    def __init__(self):
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)  # the C handler must never block
        self.previous_fd = signal.set_wakeup_fd(self.write_end, warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self.watch, name="second-signal-watcher", daemon=True)
        self.thread.start()

    def watch(self):
        seen = 0
        while received := os.read(self.read_end, 64):
            for signum in received:
                if signum in SIGNALS:
                    seen += 1
                    if seen == 2:
                        print(f"{signal.Signals(signum).name} again: quitting at once, without saving (the last "
                              f"checkpoint saved stays intact)", file=sys.stderr, flush=True)
                        os._exit(128 + signum)

    def close(self):
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_end)  # the thread reads the end of the pipe and returns
        self.thread.join(timeout=5)
        os.close(self.read_end)


def quiet_thread_ends(thread_name, *error_types):
    """Python prints the exception that ends a thread as a traceback. For threads named
    `thread_name...` ended by `error_types`, which the main thread reports itself, print nothing."""
    previous = threading.excepthook

    def hook(args):
        if not (args.thread is not None and args.thread.name.startswith(thread_name)
                and isinstance(args.exc_value, error_types)):
            previous(args)
    threading.excepthook = hook


def run_entry_point(action):
    """Run `action(stops)`, `stops` being what SIGINT and SIGTERM do (signals_handled), reporting the
    script's own errors as one line; returns the exit code (`action`'s own, if it returns one)."""
    sys.stdout.reconfigure(line_buffering=True)  # show progress live through pipes too
    try:
        with signals_handled() as stops:
            code = action(stops)
            stops.check()  # a signal in the last phase, after its last check
    except (ConfigError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    return code or 0


def exit_process(code):
    """End the process with `code`, without Python's last garbage collection: it would walk
    every object TensorFlow made (0.7 s on 2 cores) only to free memory the system takes back
    anyway. What the entry points write is closed before they return, never left to it."""
    gc.freeze()
    raise SystemExit(code)
