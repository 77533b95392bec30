"""What tutorial.ipynb adds to the tutorial's cells: a session that running a cell again replaces, and
a stop button that ends training after a whole step, leaving the model usable by the cells below."""
import contextlib

from lstm_mnist import divergence, errors
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
def stop_after_the_step(cfg):
    """The kernel's stop button (SIGINT) is noted, not raised: raised in the middle of a
    `sess.run`, it can be swallowed or crash TensorFlow's Python code (see errors.StopRequests).
    The loop reads `.requested` after each step and ends there; a second press interrupts at once
    (and the kernel, with the notebook's state, stays). A loss that says training diverged ends
    it too, as in the script."""
    with errors.signals_handled(in_a_kernel=True) as stops:
        stops.defer()
        yield TrainingStop(stops, cfg)


class TrainingStop:
    """Why the training cell's loop ends before its last step: the stop button or a diverged loss."""

    def __init__(self, stops, cfg):
        self.stops, self.cfg, self.diverged = stops, cfg, None

    @property
    def requested(self):
        return bool(self.stops.requested or self.diverged)

    def check_loss(self, loss, step):
        """End the loop after this step if `loss` says training diverged (divergence.divergence)."""
        why = divergence.divergence(loss, self.cfg.max_loss)
        if why:
            self.diverged = f"{why} at Iter {step * self.cfg.batch_size} (step {step})"

    def last_line(self, step):
        """The cell's last line: the tutorial's, or why it stopped and what `sess` holds."""
        if self.diverged:
            return (f"Training diverged: {self.diverged}; lower learning_rate (now {self.cfg.learning_rate}) "
                    f"and run this cell again")
        if self.stops.requested:
            return (f"Interrupted after Iter {step * self.cfg.batch_size} (step {step}): `sess` holds the model "
                    f"as trained so far, and the cells below use it")
        return "Optimization Finished!"
