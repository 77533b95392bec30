"""An LSTM that classifies MNIST digits, reading each 28x28 image as 28 time steps
of 28 pixels: the classic TensorFlow 1 tutorial, runnable on current TensorFlow.

    python train_lstm_mnist.py                          # train, log, score
    python train_lstm_mnist.py --training_iters=20000   # override a config.py value

The graph, hyperparameters and log lines are the tutorial's; the lines after
"Testing Accuracy:" are additions (accuracy on the full test set, timing).
"""
import argparse
import os
import re
import sys
import time
import types
import warnings

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

EVAL_BATCH = 1000  # images per session run when scoring a whole set


class ConfigError(Exception):
    """A setting on the command line or in config.py is not usable."""


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


def make_parser(defaults):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Every setting of config.py can be overridden as --name=value.")
    comments = config_comments()
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", default=default, metavar=type(default).__name__.upper(),
                            type=lambda text, name=name, default=default: parse_value(name, text, default),
                            help=f"{comments.get(name, '')} (default: {default})")
    return parser


def parse_args(argv=None):
    """The run's settings: config.py's values with the command line's overrides."""
    defaults = config_defaults()
    args, unknown = make_parser(defaults).parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}; valid names: {', '.join(defaults)}")
    return args


def default_config(**overrides):
    """config.py's values with `overrides` applied (what tests and notebooks call)."""
    cfg = argparse.Namespace(**config_defaults())
    for name, value in overrides.items():
        if not hasattr(cfg, name):
            raise ConfigError(f"unknown setting {name}")
        setattr(cfg, name, value)
    return cfg


# --------------------------------------------------------------------- graph

def build_graph(cfg):
    """The tutorial's graph, in a fresh tf.Graph; returns its tensors by name."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(cfg.seed)
        x = tf1.placeholder(dtype="float", shape=[None, cfg.n_steps, cfg.n_input], name="x")
        y = tf1.placeholder(dtype="float", shape=[None, cfg.n_classes], name="y")
        weights = {"out": tf.Variable(tf1.random_normal([cfg.n_hidden, cfg.n_classes]))}
        biases = {"out": tf.Variable(tf1.random_normal([cfg.n_classes]))}

        lstm_cell = tf1.nn.rnn_cell.BasicLSTMCell(cfg.n_hidden, forget_bias=cfg.forget_bias)
        outputs, states = tf1.nn.dynamic_rnn(lstm_cell, inputs=x, dtype=tf.float32)
        # The last time step's output, as the tutorial takes it.
        output = tf.reshape(tf.split(outputs, cfg.n_steps, axis=1, num=None, name="split")[-1], [-1, cfg.n_hidden])
        pred = tf.matmul(output, weights["out"]) + biases["out"]

        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=pred))
        optimizer = tf1.train.AdamOptimizer(learning_rate=cfg.learning_rate).minimize(cost)
        correct_pred = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
        accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))
        init = tf1.global_variables_initializer()
    return types.SimpleNamespace(graph=graph, x=x, y=y, outputs=outputs, pred=pred, cost=cost,
                                 optimizer=optimizer, accuracy=accuracy, init=init)


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


def iter_line(step, cfg, loss, acc):
    """The tutorial's log line, character for character."""
    return f"Iter {step * cfg.batch_size}, Minibatch Loss= {loss:.6f}, Training Accuracy= {acc:.5f}"


def evaluate(sess, model, dataset, cfg):
    """Mean loss and accuracy over a whole DataSet, EVAL_BATCH images per run."""
    total_loss = total_correct = 0.0
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        images = dataset.images[start:start + EVAL_BATCH]
        feed = {model.x: as_sequences(images, cfg), model.y: dataset.labels[start:start + EVAL_BATCH]}
        loss, acc = sess.run([model.cost, model.accuracy], feed)
        total_loss += loss * len(images)
        total_correct += acc * len(images)
    return total_loss / dataset.num_examples, total_correct / dataset.num_examples


def train(cfg, mnist=None):
    """Train and score as the tutorial does; returns the final metrics."""
    mnist = mnist or load_mnist(cfg)
    print_shapes(mnist)
    model = build_graph(cfg)
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        started = time.perf_counter()
        step = 1
        # Keep training until reach max iterations
        while step * cfg.batch_size < cfg.training_iters:
            batch_x, batch_y = mnist.train.next_batch(cfg.batch_size)
            feed = {model.x: as_sequences(batch_x, cfg), model.y: batch_y}
            sess.run(model.optimizer, feed_dict=feed)
            if step % cfg.display_step == 0:
                # The tutorial ran accuracy and cost separately on the same batch
                # and weights; one run gives the same two numbers.
                acc, loss = sess.run([model.accuracy, model.cost], feed_dict=feed)
                print(iter_line(step, cfg, loss, acc))
            step += 1
        train_seconds = time.perf_counter() - started
        print("Optimization Finished!")

        test_data = as_sequences(mnist.test.images[:cfg.test_len], cfg)
        test_label = mnist.test.labels[:cfg.test_len]
        test_accuracy = sess.run(model.accuracy, feed_dict={model.x: test_data, model.y: test_label})
        print("Testing Accuracy:", test_accuracy)

        full_loss, full_accuracy = evaluate(sess, model, mnist.test, cfg)
    examples = (step - 1) * cfg.batch_size
    print(f"Full test set: average loss {full_loss:.4f}, accuracy {full_accuracy:.4f} "
          f"({mnist.test.num_examples} images)")
    print(f"Training time: {train_seconds:.1f} s for {step - 1} steps, "
          f"{examples / max(train_seconds, 1e-9):.0f} examples/s")
    return {"test_accuracy": float(test_accuracy), "full_test_accuracy": full_accuracy,
            "full_test_loss": full_loss, "steps": step - 1, "train_seconds": train_seconds}


def main(argv=None):
    sys.stdout.reconfigure(line_buffering=True)  # show progress live through pipes too
    try:
        train(parse_args(argv))
    except (ConfigError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
