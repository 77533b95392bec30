"""What SIGINT and SIGTERM do, phase by phase: noted by the handler, acted on at safe points.

The signal handler never raises: an exception raised from it lands in whatever
Python code runs at that moment, and inside TensorFlow's session code that was
swallowed (the run went on and exited 0) or crashed the process (SIGSEGV in its
C++ helpers), in about a third of the tries. So the handler only notes the
signal, and the code acts on it at safe points:
- after `defer` (while training steps run), the loop honours `requested` after
  the current step, once a checkpoint is saved;
- at any other time `check()` raises errors.Interrupted, whose message is the
  phase's `what` when the signal came: what was going on and what is safe. It
  is called between the batches of scoring, between waits, at every change of
  phase and when the entry point's work returns.
A second signal quits at once (the signals' default action, which needs no
Python code to run): for a step or a call that does not return.
"""
import contextlib
import os
import signal
import sys
import threading

from lstm_mnist.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """The state of one command's signals: what the next one does, and whether one came."""

    def __init__(self, second=signal.SIG_DFL):
        self.second = second  # what the next SIGINT does once the first has come
        self.what = "while starting: nothing was saved"
        self.deferred = False
        self.requested = self.pending = self.notice = None

    def now(self, what):
        """From here on a signal stops the work at the next check, saying `what`."""
        self.check()
        self.what, self.deferred = what, False

    def defer(self, notice=None):
        """From here on a signal is noted for the code to honour; `notice` says so at the first."""
        self.check()
        self.deferred, self.requested, self.notice = True, None, notice

    def check(self):
        """Raise Interrupted if a signal came while the work was to stop at once."""
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


@contextlib.contextmanager
def handled(in_a_kernel=False):
    """SIGINT and SIGTERM go to the StopRequests this yields while the block runs, and a second one
    quits at once. In a Jupyter kernel (`in_a_kernel`) a second SIGINT interrupts instead
    (KeyboardInterrupt), as the stop button always does there: quitting would end the kernel and
    lose the notebook's state."""
    requests = StopRequests(second=signal.default_int_handler if in_a_kernel else signal.SIG_DFL)
    previous = {sig: signal.signal(sig, requests.handle) for sig in SIGNALS}
    watcher = None if in_a_kernel else SecondSignalWatcher()
    try:
        yield requests
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
