"""An LSTM that classifies MNIST digits, reading each 28x28 image as 28 time steps
of 28 pixels: the classic TensorFlow 1 tutorial, runnable on current TensorFlow.

    python train_lstm_mnist.py                          # train, log, score
    python train_lstm_mnist.py --training_iters=20000   # override a config.py value

The graph, hyperparameters and log lines are the tutorial's. Everything added
(validation accuracy, accuracy on the full test set, timing, the run folder with
config, metrics, TensorBoard events, checkpoints and plots) comes in lines of
its own. Also:

    python train_lstm_mnist.py --resume=runs/RUN          # continue a run
    python train_lstm_mnist.py --eval_only=runs/RUN       # score a saved model
    python train_lstm_mnist.py --predict=digit.png --checkpoint=runs/RUN
"""
import argparse
import contextlib
import csv
import io
import json
import math
import os
import random
import re
import shlex
import signal
import sys
import time
import types
import warnings

import numpy as np

import config
import data


def import_tensorflow():
    """Import TensorFlow set up for this script.

    BasicLSTMCell lives in tf-keras since TF 2.16, which TF_USE_LEGACY_KERAS
    selects; it must be set before the import. TF's C++ start-up chatter would
    bury the tutorial's log, so TF_CPP_MIN_LOG_LEVEL defaults to 3 (a user's
    own value wins). TF writes some info lines before it reads that level, so
    at any level above 0 stderr is muted for the import itself; Python errors
    still surface as usual.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow
    else:
        sys.stderr.flush()
        saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            os.close(devnull)
    # The tutorial silenced warnings too: tf-keras' cells announce their deprecation.
    tensorflow.compat.v1.logging.set_verbosity(tensorflow.compat.v1.logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*BasicLSTMCell. is deprecated")
    return tensorflow


tf = import_tensorflow()
tf1 = tf.compat.v1
tf1.disable_eager_execution()

import fast_lstm  # noqa: E402  (imports TensorFlow, which must be set up first)

EVAL_BATCH = 1000  # images per session run when scoring a whole set
CHECKPOINT_NAME = "model.ckpt"
METRIC_FIELDS = ["step", "examples", "minibatch_loss", "minibatch_accuracy", "validation_accuracy"]
PREDICTION_GRID = 48  # test digits shown in predictions.png


class ConfigError(Exception):
    """A setting, command-line argument or input path is not usable (exit code 2)."""


class TrainingError(Exception):
    """Training cannot go on: a diverged loss, a checkpoint that cannot be written (exit code 1)."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was saved (exit code 128 + signal)."""

    def __init__(self, signum, step, cfg, checkpoint, run_dir):
        super().__init__(f"Interrupted by {signal.Signals(signum).name} after {iter_name(step, cfg)}: "
                         f"checkpoint saved to {checkpoint}\n"
                         f"Resume with: python {shlex.quote(sys.argv[0])} --resume={shlex.quote(run_dir)}")
        self.exit_code = 128 + signum


# ------------------------------------------------------------------ settings

def config_defaults():
    """config.py's settings, in file order: {name: value}."""
    return {name: value for name, value in vars(config).items()
            if not name.startswith("_") and isinstance(value, (bool, int, float, str))}


def config_comments():
    """{name: comment} from the `name = value  # comment` lines of config.py."""
    with open(config.__file__, encoding="utf-8") as f:
        return dict(re.findall(r"^(\w+)\s*=.*?#\s*(.*)$", f.read(), flags=re.M))


def parse_value(name, text, default):
    """`text` as the type of `default`; ConfigError naming the key otherwise."""
    kind = type(default)
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
        return kind(text)
    except (KeyError, ValueError):
        raise ConfigError(f"--{name}={text}: expected {kind.__name__} like the default {default!r}") from None


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def add_action_arguments(parser):
    """What to do besides a plain training run; these are not config.py settings."""
    group = parser.add_argument_group("actions (instead of a new training run)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--resume", metavar="RUN_DIR",
                           help="continue that run from its latest checkpoint up to training_iters")
    exclusive.add_argument("--eval_only", metavar="RUN_DIR|CKPT",
                           help="restore a model and score the test set, without training")
    exclusive.add_argument("--predict", metavar="IMAGE", help="classify one image file (needs --checkpoint)")
    group.add_argument("--checkpoint", metavar="RUN_DIR|CKPT", help="the model --predict uses")


def make_parser(defaults):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Every setting of config.py can be overridden as --name=value. "
                                   "With --resume, --eval_only or --checkpoint the defaults are the "
                                   "settings saved in that run's config.json.")
    add_action_arguments(parser)
    comments = config_comments()
    settings = parser.add_argument_group("settings (config.py)")
    for name, default in defaults.items():
        settings.add_argument(f"--{name}", default=default, metavar=type(default).__name__.upper(),
                              type=lambda text, name=name, default=default: parse_value(name, text, default),
                              help=f"{comments.get(name, '')} (default: {default})")
    return parser


def parse_args(argv=None):
    """(settings, actions): config.py's values, or a saved run's, with the command line's overrides."""
    action_parser = ArgumentParser(add_help=False, allow_abbrev=False)
    add_action_arguments(action_parser)
    actions, _ = action_parser.parse_known_args(argv)
    if actions.predict and not actions.checkpoint:
        raise ConfigError("--predict needs --checkpoint=RUN_DIR (or a checkpoint path) naming the model to use")
    if actions.checkpoint and not actions.predict:
        raise ConfigError("--checkpoint names the model for --predict; to continue a run use --resume=RUN_DIR, "
                          "to score one --eval_only=RUN_DIR")
    model_path = actions.resume or actions.eval_only or actions.checkpoint
    defaults = read_run_config(find_checkpoint(model_path)[1]) if model_path else config_defaults()
    args, unknown = make_parser(defaults).parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}; valid names: {', '.join(defaults)}")
    settings = argparse.Namespace(**{name: getattr(args, name) for name in defaults})
    return settings, actions


def default_config(**overrides):
    """config.py's values with `overrides` applied (what tests and notebooks call)."""
    cfg = argparse.Namespace(**config_defaults())
    for name, value in overrides.items():
        if not hasattr(cfg, name):
            raise ConfigError(f"unknown setting {name}")
        setattr(cfg, name, value)
    return cfg


# (setting, test, what is allowed): checked before anything runs.
RULES = [
    ("batch_size", lambda c: c.batch_size >= 1, ">= 1"),
    ("n_steps", lambda c: c.n_steps >= 1, ">= 1"),
    ("n_input", lambda c: c.n_input >= 1, ">= 1"),
    ("n_steps * n_input", lambda c: c.n_steps * c.n_input == 784, "784, the pixels of one 28x28 image"),
    ("n_classes", lambda c: c.n_classes == 10, "10, the MNIST digits"),
    ("n_hidden", lambda c: c.n_hidden >= 1, ">= 1"),
    ("learning_rate", lambda c: c.learning_rate > 0 and math.isfinite(c.learning_rate), "> 0 and finite"),
    ("display_step", lambda c: c.display_step >= 1, ">= 1"),
    ("training_iters", lambda c: c.training_iters > c.batch_size,
     "> batch_size, so that at least one step runs (step * batch_size < training_iters)"),
    ("test_len", lambda c: c.test_len >= 1, "between 1 and the test-set size"),
    ("validation_size", lambda c: 0 <= c.validation_size <= 60000, "between 0 and 60000"),
    ("eval_every", lambda c: c.eval_every >= 0, ">= 0 (0: never)"),
    ("checkpoint_every", lambda c: c.checkpoint_every >= 1, ">= 1"),
    ("keep_checkpoints", lambda c: c.keep_checkpoints >= 1, ">= 1"),
    ("cell", lambda c: c.cell in ("basic", "fast"), '"basic" or "fast"'),
    ("intra_op_threads", lambda c: c.intra_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
    ("inter_op_threads", lambda c: c.inter_op_threads >= 0, ">= 0 (0: TensorFlow's choice)"),
]


def check_config(cfg):
    for name, ok, allowed in RULES:
        if not ok(cfg):
            value = " * ".join(str(getattr(cfg, n)) for n in name.split(" * "))
            raise ConfigError(f"{name} = {value} is not allowed: must be {allowed}")


def checked_mnist(cfg, mnist=None):
    """Check the settings, load MNIST (unless given), then check the settings that depend on it."""
    check_config(cfg)
    mnist = mnist or load_mnist(cfg)
    if cfg.test_len > mnist.test.num_examples:
        raise ConfigError(f"test_len = {cfg.test_len} is not allowed: must be between 1 and the test-set size "
                          f"({mnist.test.num_examples})")
    return mnist


# --------------------------------------------------------------------- graph

def build_graph(cfg):
    """The tutorial's graph, in a fresh tf.Graph, plus what checkpoints and
    predictions need; returns its tensors by name."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(cfg.seed)
        # tf-keras draws the seed of BasicLSTMCell's kernel initializer from
        # Python's `random`; seeding it makes the initial weights repeatable.
        random.seed(cfg.seed)
        x = tf1.placeholder(dtype="float", shape=[None, cfg.n_steps, cfg.n_input], name="x")
        y = tf1.placeholder(dtype="float", shape=[None, cfg.n_classes], name="y")
        weights = {"out": tf.Variable(tf1.random_normal([cfg.n_hidden, cfg.n_classes]))}
        biases = {"out": tf.Variable(tf1.random_normal([cfg.n_classes]))}

        if cfg.cell == "basic":
            lstm_cell = tf1.nn.rnn_cell.BasicLSTMCell(cfg.n_hidden, forget_bias=cfg.forget_bias)
            outputs, states = tf1.nn.dynamic_rnn(lstm_cell, inputs=x, dtype=tf.float32)
            # The last time step's output, as the tutorial takes it.
            output = tf.reshape(tf.split(outputs, cfg.n_steps, axis=1, num=None, name="split")[-1],
                                [-1, cfg.n_hidden])
        else:  # "fast": the same LSTM and variables, built for speed (fast_lstm.py); only the last output
            outputs = None
            kernel, bias = fast_lstm.lstm_variables(cfg.n_input, cfg.n_hidden)
            output = fast_lstm.last_output(x, kernel, bias, cfg.forget_bias)
        pred = tf.matmul(output, weights["out"]) + biases["out"]

        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=pred))
        # Beyond the tutorial: the step counter, saved in checkpoints.
        global_step = tf1.train.get_or_create_global_step()
        optimizer = tf1.train.AdamOptimizer(learning_rate=cfg.learning_rate).minimize(cost, global_step=global_step)
        correct_pred = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
        accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))

        # Beyond the tutorial: predictions, and the training data's position
        # (serialized DataSet state) so that a resume continues the same batches.
        predicted = tf.argmax(pred, 1, name="predicted")
        probabilities = tf.nn.softmax(pred, name="probabilities")
        with tf.device("/cpu:0"):
            data_state = tf1.Variable("", trainable=False, name="data_state")
            data_state_in = tf1.placeholder(tf.string, shape=[], name="data_state_in")
            set_data_state = data_state.assign(data_state_in)
        init = tf1.global_variables_initializer()
        saver = tf1.train.Saver(max_to_keep=cfg.keep_checkpoints)
    return types.SimpleNamespace(graph=graph, x=x, y=y, outputs=outputs, pred=pred, cost=cost,
                                 optimizer=optimizer, accuracy=accuracy, global_step=global_step,
                                 predicted=predicted, probabilities=probabilities, data_state=data_state,
                                 data_state_in=data_state_in, set_data_state=set_data_state,
                                 init=init, saver=saver)


def session_config(cfg):
    # Soft placement lets the CPU-only string variable sit beside a GPU graph.
    return tf1.ConfigProto(allow_soft_placement=True, intra_op_parallelism_threads=cfg.intra_op_threads,
                           inter_op_parallelism_threads=cfg.inter_op_threads)


# -------------------------------------------------------------- checkpoints

def find_checkpoint(path):
    """(checkpoint prefix, run folder) for a run folder or a checkpoint path."""
    if os.path.isdir(path):
        checkpoint = tf1.train.latest_checkpoint(path)
        if checkpoint is None:
            raise ConfigError(f"{path}: no usable checkpoint in this folder (a 'checkpoint' file naming "
                              f"{CHECKPOINT_NAME}-N files that exist); give a run folder that training wrote")
        return checkpoint, path
    if os.path.exists(path + ".index"):
        return path, os.path.dirname(path) or "."
    raise ConfigError(f"{path}: neither a run folder nor a checkpoint (expected {path}.index)")


def error_text(error):
    """TensorFlow's own message without its op trace, or any other exception's text."""
    return error.message if isinstance(error, tf.errors.OpError) else str(error)


def save_checkpoint(sess, model, run_dir, step, dataset):
    """Save weights, Adam's state, the step and the data position.

    The Saver writes each file under a temporary name and renames it when
    complete, and updates the 'checkpoint' index last, so a crash mid-save
    leaves the previous checkpoint the one a resume finds.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **dataset.get_state())
    try:
        sess.run(model.set_data_state, {model.data_state_in: buffer.getvalue()})
        return model.saver.save(sess, os.path.join(run_dir, CHECKPOINT_NAME), global_step=step,
                                write_meta_graph=False)
    except (tf.errors.OpError, OSError) as e:
        previous = tf1.train.latest_checkpoint(run_dir) or "none"
        raise TrainingError(f"could not write the checkpoint of step {step} in {run_dir}: {error_text(e)}; "
                            f"the previous checkpoint ({previous}) is intact") from e


def restore_checkpoint(sess, model, checkpoint, dataset=None):
    """Load a checkpoint into the session; returns its step. With `dataset`,
    the training data continues from where the checkpoint left it."""
    try:
        model.saver.restore(sess, checkpoint)
    except (tf.errors.OpError, ValueError) as e:
        raise ConfigError(f"{checkpoint}: cannot restore this checkpoint ({error_text(e).splitlines()[0]}); "
                          f"it is damaged or from another model") from e
    if dataset is not None:
        state = sess.run(model.data_state)
        if state:
            dataset.set_state(dict(np.load(io.BytesIO(state))))
    return int(sess.run(model.global_step))


# ----------------------------------------------------------------- run folder

def write_atomically(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


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


def write_run_config(run_dir, cfg):
    record = {"config": vars(cfg), "versions": {"tensorflow": tf.__version__, "numpy": np.__version__,
                                                "python": sys.version.split()[0]}}
    write_atomically(os.path.join(run_dir, "config.json"), json.dumps(record, indent=2) + "\n")


def read_run_config(run_dir):
    """The settings a run was made with: config.py's names, the run's values."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)["config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: cannot read the run's settings ({e}); is {run_dir} a run folder?") from e
    defaults = config_defaults()
    return {name: saved.get(name, default) for name, default in defaults.items()}


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
        self.csv.writerow({"step": step, "examples": examples,
                           "minibatch_loss": "" if loss is None else f"{loss:.6f}",
                           "minibatch_accuracy": "" if accuracy is None else f"{accuracy:.5f}",
                           "validation_accuracy": "" if validation_accuracy is None else f"{validation_accuracy:.5f}"})
        self.file.flush()
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
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@contextlib.contextmanager
def stop_requests():
    """SIGINT and SIGTERM become a request the loop honours after the current step."""
    received = []
    handlers = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


# ----------------------------------------------------------------- the run

def load_mnist(cfg):
    return data.read_data_sets(cfg.data_dir, one_hot=True, validation_size=cfg.validation_size, seed=cfg.seed)


def print_shapes(mnist):
    print("Train Images: ", mnist.train.images.shape)
    print("Train Labels ", mnist.train.labels.shape)
    print("Test Images: ", mnist.test.images.shape)
    print("Test Labels: ", mnist.test.labels.shape)


def as_sequences(images, cfg):
    """(N, 784) images as (N, n_steps, n_input): each row one time step."""
    return images.reshape((-1, cfg.n_steps, cfg.n_input))


def iter_name(step, cfg):
    return f"Iter {step * cfg.batch_size} (step {step})"


def iter_line(step, cfg, loss, acc):
    """The tutorial's log line, character for character."""
    return f"Iter {step * cfg.batch_size}, Minibatch Loss= {loss:.6f}, Training Accuracy= {acc:.5f}"


def evaluate(sess, model, dataset, cfg):
    """(mean loss, accuracy, predicted classes) over a whole DataSet, EVAL_BATCH images per run."""
    total_loss = 0.0
    predicted = []
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        images = dataset.images[start:start + EVAL_BATCH]
        feed = {model.x: as_sequences(images, cfg), model.y: dataset.labels[start:start + EVAL_BATCH]}
        loss, classes = sess.run([model.cost, model.predicted], feed)
        total_loss += loss * len(images)
        predicted.append(classes)
    predicted = np.concatenate(predicted)
    accuracy = float(np.mean(predicted == np.argmax(dataset.labels, axis=1)))
    return total_loss / dataset.num_examples, accuracy, predicted


def score_test_set(sess, model, mnist, cfg):
    """The tutorial's test line on test_len images, then the whole test set; returns the numbers."""
    test_data = as_sequences(mnist.test.images[:cfg.test_len], cfg)
    test_label = mnist.test.labels[:cfg.test_len]
    test_accuracy = sess.run(model.accuracy, feed_dict={model.x: test_data, model.y: test_label})
    print("Testing Accuracy:", test_accuracy)
    full_loss, full_accuracy, predicted = evaluate(sess, model, mnist.test, cfg)
    print(f"Full test set: average loss {full_loss:.4f}, accuracy {full_accuracy:.4f} "
          f"({mnist.test.num_examples} images)")
    return {"test_accuracy": float(test_accuracy), "full_test_accuracy": full_accuracy,
            "full_test_loss": full_loss, "predicted": predicted}


def minibatch_metrics(sess, model, feed, step, cfg, run_dir):
    """Accuracy and loss of the batch just trained on, after the update.

    The tutorial ran accuracy and cost separately on the same batch and weights;
    one run gives the same two numbers. A non-finite loss stops the run here,
    before it can reach a checkpoint.
    """
    acc, loss = sess.run([model.accuracy, model.cost], feed_dict=feed)
    if not np.isfinite(loss):
        last = tf1.train.latest_checkpoint(run_dir) or "none was saved yet"
        raise TrainingError(f"minibatch loss is {loss} at {iter_name(step, cfg)}: training diverged; "
                            f"last good checkpoint: {last}; lower learning_rate (now {cfg.learning_rate})")
    return acc, loss


def write_plots(run_dir, mnist, predicted):
    # Imported here: only runs that plot pay for matplotlib.
    import plots

    true = np.argmax(mnist.test.labels, axis=1)
    plots.plot_curves(read_metrics(os.path.join(run_dir, "metrics.csv")), os.path.join(run_dir, "curves.png"))
    # The first test digits the model gets right, then its first mistakes (up to a third of the grid).
    wrong = np.flatnonzero(predicted != true)[:PREDICTION_GRID // 3]
    shown = np.concatenate([np.flatnonzero(predicted == true)[:PREDICTION_GRID - len(wrong)], wrong])
    plots.plot_predictions(mnist.test.images[shown], predicted[shown], true[shown],
                           os.path.join(run_dir, "predictions.png"))
    plots.plot_confusion(predicted, true, os.path.join(run_dir, "confusion.png"))


def train(cfg, mnist=None, resume_dir=None):
    """Train and score as the tutorial does, writing the run folder; returns the final metrics.

    With `resume_dir`, continues that run from its latest checkpoint.
    """
    mnist = checked_mnist(cfg, mnist)
    checkpoint, run_dir = find_checkpoint(resume_dir) if resume_dir else (None, create_run_dir(cfg.out_dir))
    print_shapes(mnist)
    model = build_graph(cfg)
    last_step = (cfg.training_iters - 1) // cfg.batch_size  # the last step the tutorial's loop runs
    with tf1.Session(graph=model.graph, config=session_config(cfg)) as sess, stop_requests() as stop:
        if checkpoint:
            done = restore_checkpoint(sess, model, checkpoint, mnist.train)
            print(f"Resuming {run_dir} after {iter_name(done, cfg)}")
        else:
            sess.run(model.init)
            done = 0
        write_run_config(run_dir, cfg)
        log = RunLog(run_dir, model.graph, done, cfg)
        try:
            started = time.perf_counter()
            step = done + 1
            # Keep training until reach max iterations
            while step * cfg.batch_size < cfg.training_iters:
                batch_x, batch_y = mnist.train.next_batch(cfg.batch_size)
                feed = {model.x: as_sequences(batch_x, cfg), model.y: batch_y}
                sess.run(model.optimizer, feed_dict=feed)
                stopping = bool(stop)  # a signal arriving later waits for the next step
                display = step % cfg.display_step == 0
                save = step % cfg.checkpoint_every == 0 or step == last_step or stopping
                validate = cfg.eval_every and step % cfg.eval_every == 0 and mnist.validation.num_examples
                acc = loss = validation_accuracy = None
                if display or save:
                    acc, loss = minibatch_metrics(sess, model, feed, step, cfg, run_dir)
                if display:
                    print(iter_line(step, cfg, loss, acc))
                if validate:
                    validation_accuracy = evaluate(sess, model, mnist.validation, cfg)[1]
                    print(f"Validation Accuracy= {validation_accuracy:.5f} ({mnist.validation.num_examples} "
                          f"images) at Iter {step * cfg.batch_size}")
                if display or validate:
                    log.write(step, loss if display else None, acc if display else None, validation_accuracy)
                if save:
                    saved = save_checkpoint(sess, model, run_dir, step, mnist.train)
                if stopping:
                    raise Interrupted(stop[0], step, cfg, saved, run_dir)
                step += 1
            train_seconds = time.perf_counter() - started
        finally:
            log.close()
        print("Optimization Finished!")
        results = score_test_set(sess, model, mnist, cfg)
    steps = step - 1 - done
    print(f"Training time: {train_seconds:.1f} s for {steps} steps, "
          f"{steps * cfg.batch_size / max(train_seconds, 1e-9):.0f} examples/s "
          f"(with validation and checkpoints)")
    if cfg.plots:
        write_plots(run_dir, mnist, results["predicted"])
    print(f"Run folder: {run_dir}")
    return {**results, "steps": step - 1, "train_seconds": train_seconds, "run_dir": run_dir}


# ------------------------------------------------------ eval-only and predict

def restored_session(cfg, checkpoint):
    model = build_graph(cfg)
    sess = tf1.Session(graph=model.graph, config=session_config(cfg))
    restore_checkpoint(sess, model, checkpoint)
    return sess, model


def eval_only(cfg, path):
    """Score a saved model on test_len test images and on the whole test set."""
    mnist = checked_mnist(cfg)
    checkpoint, _ = find_checkpoint(path)
    print(f"Model: {checkpoint}")
    sess, model = restored_session(cfg, checkpoint)
    with sess:
        results = score_test_set(sess, model, mnist, cfg)
    return results


def load_digit(path):
    """An image file as one MNIST-like row: 28x28 grayscale in [0, 1], light digit on dark.

    Any size and colour mode is accepted; a dark-on-light image (paper, a
    drawing program) is inverted, judged by the brightness of its border.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError) as e:
        raise ConfigError(f"{path}: cannot read this image ({e})") from e
    pixels = np.asarray(gray, dtype=np.float32) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 0.5:
        pixels = 1.0 - pixels
    return pixels.reshape(1, 784)


def predict(cfg, image_path, model_path):
    """Print and return the predicted digit and the ten probabilities."""
    check_config(cfg)
    pixels = load_digit(image_path)
    checkpoint, _ = find_checkpoint(model_path)
    sess, model = restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, {model.x: as_sequences(pixels, cfg)})[0]
    digit = int(np.argmax(probabilities))
    print(f"Predicted digit: {digit}")
    print("Probabilities: " + " ".join(f"{d}={p:.4f}" for d, p in enumerate(probabilities)))
    return digit, probabilities


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)  # show progress live through pipes too
    try:
        cfg, actions = parse_args(argv)
        if actions.eval_only:
            eval_only(cfg, actions.eval_only)
        elif actions.predict:
            predict(cfg, actions.predict, actions.checkpoint)
        else:
            train(cfg, resume_dir=actions.resume)
    except (ConfigError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("Interrupted before training started: nothing to save", file=sys.stderr)
        return 128 + signal.SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
