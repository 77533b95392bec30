"""What tutorial.ipynb adds to the tutorial's cells: its settings checked as the script's, a session
that running a cell again replaces, and a stop button that ends training after a whole step, leaving
the model usable by the cells below."""
import contextlib

from lstm_mnist import checkpoints, divergence, saved_run, signals
from lstm_mnist.errors import ConfigError
from lstm_mnist.tf_setup import session_config, tf1

# The settings the notebook's cells use; any other is the script's alone (a run folder, checkpoints, the fast
# cell, a cluster). The cells set the names in OWN themselves: n_input, n_steps and n_classes follow from the
# task, test_len is the tutorial's 128.
USED = ("learning_rate", "training_iters", "batch_size", "display_step", "n_hidden", "forget_bias", "seed", "task",
        "permutation_seed", "clip_norm", "num_layers", "max_loss", "data_dir", "validation_size", "intra_op_threads",
        "inter_op_threads")
OWN = ("n_input", "n_steps", "n_classes", "test_len")
# What a trained run's weights mean: the parameters cell must say the same to start from them (start_from).
SHAPING = ("task", "permutation_seed", "n_hidden", "num_layers", "forget_bias")


def settings_of(names, settings):
    """The run's settings (settings.Settings' checks) from the notebook's `names` (its globals): every
    setting the parameters cell gives, a setting the notebook does not use refused in one line, so
    that no value given there is ignored without a word."""
    given = {name: value for name, value in names.items() if name in settings.defaults and name not in OWN
             and isinstance(value, (bool, int, float, str))}  # not the module `plots`, say
    unused = sorted(set(given) - set(USED))
    if unused:
        raise ConfigError(f"the notebook does not use {', '.join(unused)}: it trains without a run folder, checkpoints "
                          f"or the fast cell; remove {'them' if len(unused) > 1 else 'it'} from the parameters cell, "
                          f"or run python train_lstm_mnist.py --{unused[0]}=...")
    cfg = settings.make(given)
    if names.get("start_from"):
        check_start_from(names["start_from"], cfg, settings)
    return cfg


def check_start_from(folder, cfg, settings):
    """A trained run folder's settings that shape its weights (SHAPING) must be the notebook's: else one
    line that says which values to set in the parameters cell."""
    saved, _ = saved_run.open_saved_run(folder, {}, settings)
    differ = [f"{name} = {getattr(saved, name)!r}" for name in SHAPING if getattr(saved, name) != getattr(cfg, name)]
    if differ:
        raise ConfigError(f"start_from = {folder!r} was trained with {', '.join(differ)}: set "
                          f"{'them' if len(differ) > 1 else 'it'} so in the parameters cell")


def restore_weights(sess, graph, folder):
    """The weights of a trained run folder's latest checkpoint (`folder`; nothing where it is empty) into
    the notebook's graph, whose variables bear the script's names; Adam's state starts afresh."""
    if not folder:
        return
    checkpoint = checkpoints.latest_checkpoint(folder)
    with graph.as_default():
        tf1.train.Saver(var_list=tf1.trainable_variables()).restore(sess, checkpoint)
    print(f"Starting from {checkpoint}")

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
    `sess.run`, it can be swallowed or crash TensorFlow's Python code (see signals.py).
    The loop reads `.requested` after each step and ends there; a second press interrupts at once
    (and the kernel, with the notebook's state, stays). A loss that says training diverged ends
    it too, as in the script."""
    with signals.handled(in_a_kernel=True) as requests:
        requests.defer()
        yield TrainingStop(requests, cfg)


class TrainingStop:
    """Why the training cell's loop ends before its last step: the stop button or a diverged loss."""

    def __init__(self, requests, cfg):
        self.requests, self.cfg, self.diverged = requests, cfg, None

    @property
    def requested(self):
        return bool(self.requests.requested or self.diverged)

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
        if self.requests.requested:
            return (f"Interrupted after Iter {step * self.cfg.batch_size} (step {step}): `sess` holds the model "
                    f"as trained so far, and the cells below use it")
        return "Optimization Finished!"
