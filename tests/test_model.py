"""The Model build_graph returns: its feed reads every image as the tutorial does, one row per time step."""
import numpy as np
from helpers import MNIST_DIR, SETTINGS

import data
import train_lstm_mnist as script


def test_feed_reads_each_image_row_as_a_time_step_whatever_shape_data_py_gives(mnist):
    model = script.build_graph(SETTINGS.make())
    unflattened = data.read_data_sets(MNIST_DIR, reshape=False, validation_size=0).test.images[:3]  # (3, 28, 28, 1)
    flat, square = model.feed(mnist.test.images[:3]), model.feed(unflattened)
    for feed in (flat, square):
        sequences = feed[model.x]
        assert sequences.shape == (3, 28, 28) and model.y not in feed
        for t in (0, 13, 27):  # time step t is image row t
            np.testing.assert_array_equal(sequences[:, t, :], unflattened[:, t, :, 0])
    labels = mnist.test.labels[:3]
    assert model.feed(mnist.test.images[:3], labels)[model.y] is labels
