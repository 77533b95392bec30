"""What tutorial.ipynb adds to the tutorial's cells: a session that running a cell again replaces, and
a stop button that ends training after a whole step, leaving the model usable by the cells below."""
import contextlib

from lstm_mnist import errors
from lstm_mnist.tf_setup import session_config, tf1

_open_sessions = []  # the session the training cell opened last time it ran


def fresh_session(graph, cfg):
    """A session on `graph` with the script's thread settings; the one this returned before (a
    cell run again) is closed first, so that re-running never leaks a session."""
    while _open_sessions:
        _open_sessions.pop().close()
    sess = tf1.Session(graph=graph, config=session_config(cfg))
    _open_sessions.append(sess)
    return sess


@contextlib.contextmanager
def stop_after_the_step():
    """The kernel's stop button (SIGINT) is noted, not raised: raised in the middle of a
    `sess.run`, it can be swallowed or crash TensorFlow's Python code (see errors.StopRequests).
    The loop reads `.requested` after each step and ends there; a second press stops at once."""
    with errors.signals_handled() as stops:
        stops.defer()
        yield stops


def stopped_line(step, batch_size):
    return (f"Interrupted after Iter {step * batch_size} (step {step}): `sess` holds the model as trained so far, "
            f"and the cells below use it")
