"""The LSTM's gates as it reads a digit: what it writes to its memory cell, keeps and reads, step by step.

The tutorial's words for the three logistic gates around the memory cell: the "Input" or "Write"
gate, the "Keep" or "Forget" gate and the "Output" or "Read" gate (model.py: sigmoid(i),
sigmoid(f + forget_bias) and sigmoid(o) of BasicLSTMCell's blocks). The model computes them
for every layer (model.Layer.gates); this module says what they show: the log's gates line,
the order of the units in gates.png and on the page.
"""
import numpy as np

from lstm_mnist.model import CLOSED, OPEN, Gates
from lstm_mnist.part import Part
from lstm_mnist.tasks import SHORT_SEQUENCE

GATES = ("write", "keep", "read")  # sigmoid(i), sigmoid(f + forget_bias), sigmoid(o)
GATE_IMAGES = 1000  # test images of 28 rows the gates line and gates.png's statistics are computed on (longer
# sequences: as many image-steps, so 35 images of 784 pixels)


def gates_of(sess, every_layer, feed):
    """The values of the model.Gates of every layer (model.Model's gates) for `feed` (a feed_dict of
    images), in one run: per layer, a dict of arrays (N, n_steps, n_hidden), write, keep, read,
    candidate, cell and output."""
    values = sess.run([[getattr(layer, name) for name in Gates.NAMES] for layer in every_layer], feed)
    return [dict(zip(Gates.NAMES, layer, strict=True)) for layer in values]


def unit_order(write):
    """The units in the order of the row at which their write gate peaks, on average over the
    digits of `write` (digits, rows, units): the units that write early come first (gates.png,
    the drawing page)."""
    return np.argsort(np.argmax(write.mean(axis=0), axis=0), kind="stable")


def gates_line(statistics, n_images, layer=1, num_layers=1):
    """The log's gates line of a layer (from 1, the bottom), from its model.Gates statistics of n_images."""
    mean = statistics[:, 2].mean(axis=1)
    saturated = (statistics[:, 0] + statistics[:, 1]).mean(axis=1)
    which = "" if num_layers == 1 else f" (layer {layer} of {num_layers})"
    return (f"Gates{which}: the cell writes {mean[0]:.2f}, keeps {mean[1]:.2f} and reads {mean[2]:.2f} on average "
            f"(0 shut, 1 open); saturated (below {CLOSED} or above {OPEN}): {saturated[0]:.1%}, {saturated[1]:.1%} "
            f"and {saturated[2]:.1%} of the time ({n_images} test images)")


def statistics_images(test_images, n_steps):
    """The first test images the gates line is computed on: GATE_IMAGES at 28 rows, fewer on
    longer sequences (the same number of steps read in all)."""
    return test_images[:max(1, GATE_IMAGES * SHORT_SEQUENCE // n_steps)]


class GatesLine(Part):
    """At the end, on the line after the reading line: how open each gate is on average and how
    often it is saturated, over the first GATE_IMAGES test images (the whole test set would
    cost the default run half a second more, for the same means to within 0.002 there); a line
    per layer. The statistics go to the results, for gates.png (plots.py)."""

    def __init__(self, test, n_steps):
        self.images = statistics_images(test.images, n_steps)

    def on_test_end(self, run, session, results):
        statistics = session.run([layer.statistics for layer in run.model.gates], run.model.feed(self.images))
        for k, layer_statistics in enumerate(statistics, start=1):
            print(gates_line(layer_statistics, len(self.images), k, len(statistics)))
        results.gate_statistics = statistics
        run.clock.mark("gates")
