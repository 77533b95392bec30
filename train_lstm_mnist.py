"""An LSTM that classifies MNIST digits, reading each 28x28 image as 28 time steps
of 28 pixels: the classic TensorFlow 1 tutorial, runnable on current TensorFlow.

    python train_lstm_mnist.py                          # train, log, score
    python train_lstm_mnist.py --training_iters=20000   # override a config.py value
    python train_lstm_mnist.py --resume=runs/RUN        # continue a run from its latest checkpoint
    python predict.py runs/RUN [digit.png]              # score a saved model, or classify an image
    python serve.py runs/RUN                            # a page to draw digits and watch the LSTM read
    python train_lstm_mnist.py --num_layers=2           # two LSTM layers, stacked (TF1's MultiRNNCell)
    python train_lstm_mnist.py --local_cluster=1,2      # 1 ps + 2 workers on 127.0.0.1 (lstm_mnist/distributed.py)

The graph, hyperparameters and log lines are the tutorial's, in the tutorial's
order: data, graph, session loop, test. What this project adds (validation and
full test-set accuracy, timing, a run folder with config, metrics, TensorBoard
events, checkpoints and plots, resume, clear errors) is marked "Beyond the
tutorial" and lives in the lstm_mnist package, in modules named for what they do;
its lines come on lines of their own.
"""
import random

import config
import data
from lstm_mnist import (
    clipping,
    context,
    entry_point,
    fast_lstm,
    launch,
    placement,
    runs,
    saved_run,
    settings,
    tasks,
    tf_setup,
)
from lstm_mnist.model import Model, basic_layers
from lstm_mnist.placement import ALONE
from lstm_mnist.tf_setup import session_config, tf, tf1

SETTINGS = settings.Settings.of(config)  # the settings every entry point offers: config.py's

# ------------------------------------------------------------------- the data

def load_mnist(cfg, mnist=None):
    """The tutorial's `input_data.read_data_sets(".", one_hot=True)`, from data.py (unless
    `mnist` is given); beyond the tutorial, the settings that depend on the data are checked."""
    mnist = mnist or data.read_data_sets(cfg.data_dir, one_hot=True, validation_size=cfg.validation_size,
                                         seed=cfg.seed)
    settings.check_with_data(cfg, mnist)
    return mnist


def print_shapes(mnist):
    print("Train Images: ", mnist.train.images.shape)
    print("Train Labels ", mnist.train.labels.shape)
    print("Test Images: ", mnist.test.images.shape)
    print("Test Labels: ", mnist.test.labels.shape)


# ------------------------------------------------------------------ the graph

def build_graph(cfg, place=ALONE):
    """The tutorial's graph, in a fresh tf.Graph, as one object (lstm_mnist/model.py) that holds its
    tensors by the tutorial's names. In a cluster (`place`: placement.py), the variables go to the
    parameter servers."""
    graph = tf.Graph()
    with graph.as_default(), place.device():
        # Beyond the tutorial: repeatable initial weights. tf-keras draws the seed of
        # BasicLSTMCell's kernel initializer from Python's `random`.
        tf1.set_random_seed(cfg.seed)
        random.seed(cfg.seed)

        # The input should be a Tensor of shape: [batch_size, time_steps, input_dimension]
        x = tf1.placeholder(dtype="float", shape=[None, cfg.n_steps, cfg.n_input], name="x")
        y = tf1.placeholder(dtype="float", shape=[None, cfg.n_classes], name="y")
        # Beyond the tutorial: what the LSTM reads, x itself or its pixels in the permuted task's order (tasks.py)
        sequence = tasks.sequence(x, cfg)
        # Randomly initializing weights & biases
        weights = {"out": tf.Variable(tf1.random_normal([cfg.n_hidden, cfg.n_classes]))}
        biases = {"out": tf.Variable(tf1.random_normal([cfg.n_classes]))}

        if cfg.cell == "basic":
            # The LSTM cell (beyond the tutorial: num_layers of them, stacked by TF1's MultiRNNCell)
            cells = [tf1.nn.rnn_cell.BasicLSTMCell(cfg.n_hidden, forget_bias=cfg.forget_bias)
                     for _ in range(cfg.num_layers)]
            lstm_cell = cells[0] if len(cells) == 1 else tf1.nn.rnn_cell.MultiRNNCell(cells)
            # dynamic_rnn creates a recurrent neural network specified from lstm_cell
            outputs, states = tf1.nn.dynamic_rnn(lstm_cell, inputs=sequence, dtype=tf.float32)
            # The last time step's output, mapped by a linear readout to the 10 classes
            output = tf.reshape(tf.split(outputs, cfg.n_steps, axis=1, num=None, name="split")[-1],
                                [-1, cfg.n_hidden])
            layers = basic_layers(lstm_cell, sequence, outputs, cfg.forget_bias)  # Beyond the tutorial
        else:  # Beyond the tutorial: cell="fast", the same LSTM and variables built for speed (fast_lstm.py)
            layers, output = fast_lstm.layers(sequence, cfg.n_hidden, cfg.forget_bias, cfg.num_layers, cfg.precision)
        pred = tf.matmul(output, weights["out"]) + biases["out"]

        # The cost function and optimizer
        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=pred))
        global_step = tf1.train.get_or_create_global_step()  # Beyond the tutorial: the step, for checkpoints
        if cfg.optimizer == "adam":
            trainer = tf1.train.AdamOptimizer(learning_rate=cfg.learning_rate)
        else:  # Beyond the tutorial: the sequential-MNIST papers' RMSProp (docs/tasks.md)
            trainer = tf1.train.RMSPropOptimizer(cfg.learning_rate, decay=cfg.rmsprop_decay,
                                                 momentum=cfg.rmsprop_momentum)
        # (place.optimizer: the trainer itself, but for synchronous replicas in a cluster; clipping.minimize:
        # the tutorial's minimize unless clip_norm is set; global_step: beyond the tutorial)
        optimizer = clipping.minimize(place.optimizer(trainer), cost, global_step, cfg.clip_norm)
        # The accuracy and evaluation methods used in the learning process
        correct_pred = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
        accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))

        # Beyond the tutorial: the model as one object (lstm_mnist/model.py), which adds what the
        # package reads of it: predictions, the answer after every step, the gates, the checkpoints' Saver
        return Model(graph=graph, x=x, y=y, sequence=sequence, weights=weights, biases=biases, layers=layers,
                     pred=pred, cost=cost, optimizer=optimizer, correct_pred=correct_pred, accuracy=accuracy,
                     global_step=global_step, order=tasks.pixel_order(cfg), recurrent_init=cfg.recurrent_init,
                     chrono_init=cfg.chrono_init, keep_checkpoints=cfg.keep_checkpoints,
                     data_position=place.data_position)


def session(cfg, model, place=ALONE, resume=None):
    """The tutorial's `tf.Session()`, its variables initialized. Beyond the tutorial: thread
    settings from config.py; in a cluster (`place`), the cluster's session, in which the chief
    initializes the variables or restores `resume`'s checkpoint."""
    if place is not ALONE:
        return place.session(model, resume)
    sess = tf1.Session(graph=model.graph, config=session_config(cfg))
    sess.run(model.init)
    return sess


# ----------------------------------------------------------- the session loop

@context.within
def train(cfg, mnist=None, resume=None, place=ALONE, trial=None):
    """Train and test as the tutorial does; returns the run's numbers (runs.Results).

    `mnist` saves loading the data again (tests); `resume` is a run folder or
    checkpoint to continue from; `place` makes this process a worker of a TF1
    cluster (lstm_mnist/placement.py), which runs this same loop on its shard;
    `trial` makes the run a trial of a sweep (sweep.py, lstm_mnist/tuning.py).
    Beyond the tutorial, signals, the time of each phase and the lines' tags are
    the command's context (lstm_mnist/context.py).
    """
    context.now("before training started: nothing was saved")
    tf_setup.tensorflow()  # Beyond the tutorial: TensorFlow's import (seconds), the end of the start-up
    clock = context.current().clock  # the time of each phase, on a line at the end
    clock.start_up_ends()
    mnist = load_mnist(cfg, mnist)
    print_shapes(mnist)
    mnist = place.own_part(mnist)  # Beyond the tutorial: in a cluster, this worker's shard of the training set
    clock.mark("data")
    model = build_graph(cfg, place)
    clock.mark("graph")
    x, y, optimizer, cost, accuracy = model.x, model.y, model.optimizer, model.cost, model.accuracy

    # Beyond the tutorial: what the loop reaches through `run` (validation, checkpoints, stops, the run
    # folder, ...: a list of parts, lstm_mnist/runs.py)
    with runs.new_run(cfg, model, mnist, resume, place, trial) as run, session(cfg, model, place, resume) as sess:
        step = run.start(sess) + 1  # Beyond the tutorial: a resumed run continues after its checkpoint
        # Keep training until reach max iterations (beyond the tutorial: in a cluster, until the global step does)
        while run.going(step * cfg.batch_size < cfg.training_iters):
            # We will read a batch of 100 images [100 x 784] as batch_x; batch_y is a matrix of [100 x 10]
            batch_x, batch_y = mnist.train.next_batch(cfg.batch_size)
            # Each row of the image is one step of the sequence: batch_x becomes [100 x 28 x 28]
            batch_x = batch_x.reshape((cfg.batch_size, cfg.n_steps, cfg.n_input))
            # Run optimization op (backprop)
            sess.run(optimizer, feed_dict={x: batch_x, y: batch_y})
            acc = loss = None
            if step % cfg.display_step == 0:
                # Calculate batch accuracy and loss (one run gives the tutorial's two numbers)
                acc, loss = sess.run([accuracy, cost], feed_dict={x: batch_x, y: batch_y})
                print(f"Iter {step * cfg.batch_size}, Minibatch Loss= {loss:.6f}, Training Accuracy= {acc:.5f}")
            run.after_step(sess, step, {x: batch_x, y: batch_y}, acc, loss)  # Beyond: validation, checkpoints
            step += 1
        run.end_training(sess, step)
        print("Optimization Finished!")

        test_accuracy = score_test_images(sess, model, mnist, cfg)
        return run.finish(sess, test_accuracy)  # Beyond: the whole test set, timing, plots, the run folder


def score_test_images(sess, model, mnist, cfg):
    """The tutorial's last cell: accuracy on the first test_len (128) test images."""
    test_data = mnist.test.images[:cfg.test_len].reshape((-1, cfg.n_steps, cfg.n_input))
    test_label = mnist.test.labels[:cfg.test_len]
    test_accuracy = sess.run(model.accuracy, feed_dict={model.x: test_data, model.y: test_label})
    print("Testing Accuracy:", test_accuracy)
    return test_accuracy


# ----------------------------------------------------------------------- main

def add_arguments(parser):
    parser.add_argument("--resume", metavar="RUN_DIR|CKPT",
                        help="continue that run from its latest checkpoint (or that checkpoint) up to "
                             "training_iters, with its saved settings")
    placement.add_arguments(parser)


def train_from_command_line(overrides, arguments):
    cfg, checkpoint = (SETTINGS.make(overrides), None) if arguments.resume is None else \
        saved_run.open_saved_run(arguments.resume, overrides, SETTINGS)
    if arguments.local_cluster:  # Beyond one machine: start a cluster of this script on 127.0.0.1
        return launch.run_local_cluster(arguments.local_cluster, arguments.argv, __file__, cfg.cluster_timeout)
    place = placement.of(arguments, cfg)
    if not place.trains:  # a parameter server holds the variables of a cluster's workers
        return place.serve()
    train(cfg, resume=checkpoint, place=place)


def main(argv=None):
    return entry_point.run(argv, __doc__, add_arguments, SETTINGS, train_from_command_line,
                           uses_tensorflow=lambda arguments: not arguments.local_cluster)


if __name__ == "__main__":
    entry_point.exit_process(main())
