"""The script's own errors, stop signals, and how an entry point reports them.

What a user can cause ends as one line on stderr and an exit code: 2 for bad
input (ConfigError, data.DataError), 1 when training cannot go on
(TrainingError), 128 + the signal for SIGINT/SIGTERM (Interrupted). Anything
else is a bug and keeps its traceback.
"""
import contextlib
import gc
import signal
import sys

import data


class ConfigError(Exception):
    """A setting, command-line argument or input path is not usable (exit code 2)."""


class TrainingError(Exception):
    """Training cannot go on: a diverged loss, a checkpoint that cannot be written (exit code 1)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (exit code 128 + signal); the message says what is safe.

    A BaseException, as KeyboardInterrupt is: the signal handler raises it
    wherever Python happens to be, and library code that catches Exception
    (TensorFlow's does, around its feeds) must not swallow or rewrap it.
    """

    def __init__(self, signum, what):
        super().__init__(f"Interrupted by {signal.Signals(signum).name} {what}")
        self.exit_code = 128 + signum


class StopRequests:
    """What SIGINT and SIGTERM do, phase by phase.

    After `defer` (while training steps run), the first signal is only noted
    (`requested`) and the loop honours it at its next safe point (after the
    current step, once a checkpoint is saved); a second one then quits at once
    (the signals' default action, which needs no Python code to run). At any
    other time the run stops at once with Interrupted, whose message is the
    phase's `what`: what was going on and what is safe. (TensorFlow holds the
    main thread while it runs a step: Python sees a signal when that is done.)
    """

    def __init__(self):
        self.what = "while starting: nothing was saved"
        self.deferred = False
        self.requested = self.notice = None

    def now(self, what):
        """From here on a signal stops at once, saying `what`."""
        self.what, self.deferred = what, False

    def defer(self, notice=None):
        """From here on a signal is noted for the code to honour; `notice` says so at the first."""
        self.deferred, self.requested, self.notice = True, None, notice

    def handle(self, signum, frame):
        if self.deferred and self.requested is None:
            self.requested = signum
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            if self.notice:
                print(f"{signal.Signals(signum).name}: {self.notice}", file=sys.stderr)
            return
        raise Interrupted(signum, self.what)


SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOPS = StopRequests()  # signals are process-wide, and so is what they do


@contextlib.contextmanager
def signals_handled():
    """SIGINT and SIGTERM go to STOPS while the block runs."""
    previous = {sig: signal.signal(sig, STOPS.handle) for sig in SIGNALS}
    try:
        yield STOPS
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_entry_point(action):
    """Run `action()`, reporting the script's own errors as one line; returns the exit code
    (`action`'s own, if it returns one)."""
    sys.stdout.reconfigure(line_buffering=True)  # show progress live through pipes too
    try:
        with signals_handled():
            code = action()
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
