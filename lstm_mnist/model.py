"""The tutorial's graph as one object: what build_graph (train_lstm_mnist.py) returns."""
import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Model:
    """The tensors of one built graph, by the tutorial's names, and what this project adds."""

    graph: typing.Any  # the tf.Graph that holds everything below
    # The tutorial's
    x: typing.Any  # placeholder (batch, n_steps, n_input): each image, one row per time step
    y: typing.Any  # placeholder (batch, n_classes): the one-hot labels
    weights: dict  # {"out": the readout's weights, (n_hidden, n_classes)}
    biases: dict  # {"out": the readout's biases, (n_classes,)}
    lstm_cell: typing.Any  # the BasicLSTMCell (None with cell = "fast")
    outputs: typing.Any  # h at every step, (batch, n_steps, n_hidden): dynamic_rnn's outputs, or the fast cell's
    pred: typing.Any  # the logits of the last step's output through the readout, (batch, n_classes)
    cost: typing.Any  # mean softmax cross-entropy of pred against y
    optimizer: typing.Any  # Adam's training op (it also increments global_step)
    correct_pred: typing.Any  # whether each image's argmax matches its label
    accuracy: typing.Any  # mean of correct_pred
    init: typing.Any  # initializes every variable
    # Beyond the tutorial
    global_step: typing.Any  # the steps trained, saved with checkpoints
    predicted: typing.Any  # argmax of pred: the answer for each image
    probabilities: typing.Any  # softmax of pred
    reading: typing.Any  # reading.add_to_graph's: the probabilities after every row, and their argmax
    gates: typing.Any  # gates.add_to_graph's: write, keep and read after every row, the cell state, statistics
    checkpoints: typing.Any  # checkpoints.add_to_graph's: the Saver and the data-position variable

    def feed(self, images, labels=None):
        """A feed_dict for images in any of data.py's shapes ((N, 784), (N, 28, 28, 1)), each
        reshaped to its sequence of rows, (N, n_steps, n_input), and their labels if given."""
        feed = {self.x: images.reshape((-1, *self.x.shape.as_list()[1:]))}
        if labels is not None:
            feed[self.y] = labels
        return feed
