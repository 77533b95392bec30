"""The context of one command: what its code shares without passing it along.

    signals    what a signal does now (signals.StopRequests): `now`, `defer`, `check`, `requested`
    clock      the time of each phase, for the `Time:` line (phases.PhaseClock)
    lines      the user's lines: whole lines, tagged where several processes share a terminal (`tag_lines`)
    threads    the ends of threads whose errors the command reports itself, kept quiet (`quiet_thread_ends`)

The entry point opens one for the time its work runs (entry_point.run, with the signals it
handles); the code below reaches it through the functions here. Without an entry point (a test,
a notebook cell calling the package) each call finds a fresh default context, which no signal stops
and which changes nothing in the process (no tags, no thread hooks).
"""
import contextlib
import contextvars
import functools
import sys
import threading

from lstm_mnist.phases import PhaseClock
from lstm_mnist.signals import StopRequests

_open = contextvars.ContextVar("lstm_mnist_context")


class Context:
    """One command's signals, clock and lines (see the module's docstring)."""

    def __init__(self, signals=None):
        self.signals = signals or StopRequests()
        self.clock = PhaseClock()
        self.restore = contextlib.ExitStack()  # what the context changed in the process, undone when it closes


def current():
    """The open context, or a default one (see the module's docstring)."""
    return _open.get(None) or Context()


@contextlib.contextmanager
def opened(signals=None):
    """A new Context, open while the block runs; what it changed in the process is restored after."""
    made = Context(signals)
    token = _open.set(made)
    try:
        with made.restore:
            yield made
    finally:
        _open.reset(token)


@contextlib.contextmanager
def ensured():
    """The open context for the block, or a new one where none is open (the package called without an
    entry point: a test, a notebook), so that what the block does shares one context."""
    if _open.get(None) is not None:
        yield current()
        return
    with opened() as made:
        yield made


def within(function):
    """`function` run in the open context, or in one opened for the call (see ensured)."""
    @functools.wraps(function)
    def in_a_context(*args, **kwargs):
        with ensured():
            return function(*args, **kwargs)
    return in_a_context


def now(what):
    """From here on a signal stops the work at the next check, saying `what` (what was going on, what is safe)."""
    current().signals.now(what)


def defer(notice=None):
    """From here on a signal is noted, for the loop to honour after its step; `notice` says so at the first."""
    current().signals.defer(notice)


def check():
    """Raise errors.Interrupted if a signal came while the work was to stop at once."""
    current().signals.check()


def requested():
    """The signal noted since `defer`, or None."""
    return current().signals.requested


def quiet_thread_ends(thread_name, error_types):
    """Python prints the exception that ends a thread as a traceback. For threads named `thread_name...`
    ended by `error_types` (a tuple, or a function that gives one), which the command reports itself,
    print nothing, while the context is open."""
    opened_context = _open.get(None)
    if opened_context is None:
        return
    previous = threading.excepthook

    def hook(args):
        types = error_types() if callable(error_types) else error_types
        if not (args.thread is not None and args.thread.name.startswith(thread_name)
                and isinstance(args.exc_value, types)):
            previous(args)
    threading.excepthook = hook
    opened_context.restore.callback(setattr, threading, "excepthook", previous)


def tag_lines(tag):
    """From here on, while the context is open, this process writes whole lines only, stdout's begun
    with `tag`: so that the lines of processes sharing a terminal or pipe (a local cluster) never
    interleave mid-line, and say whose they are."""
    opened_context = _open.get(None)
    if opened_context is None:
        return
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = WholeLines(sys.stdout, tag), WholeLines(sys.stderr)
    opened_context.restore.callback(lambda: (sys.stdout.flush(), sys.stderr.flush(),
                                        setattr(sys, "stdout", streams[0]), setattr(sys, "stderr", streams[1])))


class WholeLines:
    """A stream that writes whole lines only, each begun with `tag`. print() writes a line's pieces
    and its newline apart, and written so, the lines of processes that share a pipe interleaved
    mid-line ("Testing Accuracy:[worker 1] Testing Accuracy: 0.60" in 2 of 40 runs)."""

    def __init__(self, stream, tag=""):
        self.stream, self.tag = stream, tag
        self.partial, self.line_begun = "", False  # the line so far, and whether its tag went out (flush)

    def write(self, text):
        *lines, self.partial = (self.partial + text).split("\n")
        if lines:
            tagged = [("" if k == 0 and self.line_begun else self.tag) + line for k, line in enumerate(lines)]
            self.stream.write("".join(line + "\n" for line in tagged))
            self.line_begun = False
        return len(text)

    def flush(self):
        if self.partial:  # asked for: the line so far goes out now, and its rest later, untagged
            self.stream.write(("" if self.line_begun else self.tag) + self.partial)
            self.partial, self.line_begun = "", True
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)
