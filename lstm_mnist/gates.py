"""The LSTM's gates as it reads a digit: what it writes to its memory cell, keeps and reads, row by row.

The tutorial's words for the three logistic gates around the memory cell: the "Input" or "Write"
gate, the "Keep" or "Forget" gate and the "Output" or "Read" gate. At every row t, BasicLSTMCell
and the fast cell (fast_lstm.py) compute

    i, j, f, o = split([x_t, h_(t-1)] @ kernel + bias, 4)      # in that order
    c_t = sigmoid(f + forget_bias) * c_(t-1) + sigmoid(i) * tanh(j)
    h_t = sigmoid(o) * tanh(c_t)

and give only h. The gates are recomputed here from the same kernel and bias (the variables the
model trains, not a copy), with h_(t-1) taken from the cell's own outputs and c from the
recurrence above, so they are the cell's gates for either `cell` setting.
"""
import types

import numpy as np

from lstm_mnist.part import Part
from lstm_mnist.tasks import SHORT_SEQUENCE
from lstm_mnist.tf_setup import tf, tf1

GATES = ("write", "keep", "read")  # sigmoid(i), sigmoid(f + forget_bias), sigmoid(o)
CLOSED, OPEN = 0.1, 0.9  # a gate below CLOSED or above OPEN is saturated (Karpathy et al. 2015)
NAMES = ("write", "keep", "read", "candidate", "cell", "output")  # what add_to_graph gives after every row
GATE_IMAGES = 1000  # test images of 28 rows the gates line and gates.png's statistics are computed on (longer
# sequences: as many image-steps, so 35 images of 784 pixels)


def cell_variables():
    """The cell's kernel [n_input + n_hidden, 4 * n_hidden] and bias [4 * n_hidden] in the
    default graph: both cells name them as BasicLSTMCell does."""
    variables = {v.op.name: v for v in tf1.global_variables()}
    return variables["rnn/basic_lstm_cell/kernel"], variables["rnn/basic_lstm_cell/bias"]


def add_to_graph(x, outputs, forget_bias):
    """The gates after every row, from the input x (batch, n_steps, n_input) and the cell's
    outputs h (batch, n_steps, n_hidden): write, keep, read, candidate (tanh(j)), cell (c) and
    output (h), each (batch, n_steps, n_hidden); and `statistics`, (3 GATES, 3, n_hidden): for
    each gate and unit, the share of the batch's rows below CLOSED, above OPEN, and the mean."""
    kernel, bias = cell_variables()
    n_steps, n_hidden = outputs.shape[1], outputs.shape[2]
    with tf1.name_scope("gates"):
        h_before = tf.concat([tf.zeros_like(outputs[:, :1]), outputs[:, :-1]], axis=1)
        xh = tf.concat([x, h_before], axis=2)
        z = tf.matmul(tf.reshape(xh, [-1, xh.shape[2]]), kernel) + bias
        i, j, f, o = tf.split(tf.reshape(z, [-1, n_steps, 4 * n_hidden]), 4, axis=2)
        write, keep, read, candidate = tf.sigmoid(i), tf.sigmoid(f + forget_bias), tf.sigmoid(o), tf.tanh(j)

        def time_major(t):
            return tf.transpose(t, [1, 0, 2])

        cell = time_major(tf1.scan(lambda c, kw: kw[0] * c + kw[1], (time_major(keep), time_major(write * candidate)),
                                   initializer=tf.zeros_like(keep[:, 0])))
        statistics = tf.stack([tf.stack([tf.reduce_mean(tf.cast(gate < CLOSED, tf.float32), axis=[0, 1]),
                                         tf.reduce_mean(tf.cast(gate > OPEN, tf.float32), axis=[0, 1]),
                                         tf.reduce_mean(gate, axis=[0, 1])]) for gate in (write, keep, read)],
                               name="statistics")
    return types.SimpleNamespace(write=write, keep=keep, read=read, candidate=candidate, cell=cell, output=outputs,
                                 statistics=statistics)


def gates_of(sess, tensors, feed):
    """The values of add_to_graph's `tensors` for `feed` (a feed_dict of images): a dict of arrays
    (N, n_steps, n_hidden), write, keep, read, candidate, cell and output."""
    return dict(zip(NAMES, sess.run([getattr(tensors, name) for name in NAMES], feed), strict=True))


def unit_order(write):
    """The units in the order of the row at which their write gate peaks, on average over the
    digits of `write` (digits, rows, units): the units that write early come first (gates.png,
    the drawing page)."""
    return np.argsort(np.argmax(write.mean(axis=0), axis=0), kind="stable")


def gates_line(statistics, n_images):
    """The log's gates line, from add_to_graph's `statistics` of n_images."""
    mean = statistics[:, 2].mean(axis=1)
    saturated = (statistics[:, 0] + statistics[:, 1]).mean(axis=1)
    return (f"Gates: the cell writes {mean[0]:.2f}, keeps {mean[1]:.2f} and reads {mean[2]:.2f} on average "
            f"(0 shut, 1 open); saturated (below {CLOSED} or above {OPEN}): {saturated[0]:.1%}, {saturated[1]:.1%} "
            f"and {saturated[2]:.1%} of the time ({n_images} test images)")


def statistics_images(test_images, n_steps):
    """The first test images the gates line is computed on: GATE_IMAGES at 28 rows, fewer on
    longer sequences (the same number of steps read in all)."""
    return test_images[:max(1, GATE_IMAGES * SHORT_SEQUENCE // n_steps)]


class Gates(Part):
    """At the end, on the line after the reading line: how open each gate is on average and how
    often it is saturated, over the first GATE_IMAGES test images (the whole test set would
    cost the default run half a second more, for the same means to within 0.002 there). The
    statistics go to the results, for gates.png (plots.py)."""

    def __init__(self, test, n_steps):
        self.images = statistics_images(test.images, n_steps)

    def finish(self, run, sess, results):
        statistics = sess.run(run.model.gates.statistics, run.model.feed(self.images))
        print(gates_line(statistics, len(self.images)))
        results["gate_statistics"] = statistics
        run.clock.mark("gates")
