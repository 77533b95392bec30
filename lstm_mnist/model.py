"""The model as one object, and the one place that knows TF1's LSTM cell.

BasicLSTMCell keeps one kernel over [x_t, h_(t-1)] and one bias, each with four
blocks of n_hidden columns, in the order i, j, f, o:

    i, j, f, o = split([x_t, h_(t-1)] @ kernel + bias, 4)
    c_t = sigmoid(f + forget_bias) * c_(t-1) + sigmoid(i) * tanh(j)
    h_t = sigmoid(o) * tanh(c_t)

In the tutorial's words, sigmoid(i) writes to the memory cell, sigmoid(f + forget_bias) keeps it
and sigmoid(o) reads it; tanh(j) is the candidate written. forget_bias is no variable: the cell
adds it at run time. With num_layers > 1, TF1's MultiRNNCell stacks the cells, each reading the
h of the one below.

What reads the weights or the state asks this module: the gates, the reading, the fast cell
(fast_lstm.py, the same variables), the export's signatures and the Keras mapping (export.py),
the page (serve.py). The variables keep BasicLSTMCell's names, so checkpoints move between the
two cells and run folders of older versions still load.
"""
from __future__ import annotations  # the fields' types name TensorFlow's, imported on first use (tf_setup.py)

import dataclasses
import functools

import numpy as np

from lstm_mnist import checkpoints
from lstm_mnist.tf_setup import tf, tf1

GATE_BLOCKS = ("i", "j", "f", "o")  # the kernel's and bias's column blocks, in BasicLSTMCell's order
Blocks = dataclasses.make_dataclass("Blocks", GATE_BLOCKS, frozen=True)
CLOSED, OPEN = 0.1, 0.9  # a gate below CLOSED or above OPEN is saturated (Karpathy et al. 2015)


# ------------------------------------------------------------- the layout

def cell_scope(layer, num_layers):
    """The variable scope of a layer's kernel and bias, as dynamic_rnn names BasicLSTMCell's: alone,
    or as layer `layer` (from 0, the bottom) of a MultiRNNCell."""
    inside = "basic_lstm_cell" if num_layers == 1 else f"multi_rnn_cell/cell_{layer}/basic_lstm_cell"
    return f"rnn/{inside}"


def blocks(z):
    """The gate blocks of z's last axis (n_hidden columns each, in BasicLSTMCell's order): of a
    NumPy array, or of a tensor (one Split op)."""
    if isinstance(z, np.ndarray):
        return Blocks(*np.split(z, len(GATE_BLOCKS), axis=-1))
    return Blocks(*tf.split(z, len(GATE_BLOCKS), axis=-1))


def in_layout(concatenate, **by_gate):
    """The blocks given by name (i, j, f, o) as one array in BasicLSTMCell's order, joined by
    `concatenate` (np.concatenate or tf.concat) along the last axis."""
    return concatenate([by_gate[name] for name in GATE_BLOCKS], axis=-1)


def keras_weights(kernel, bias, n_input, forget_bias):
    """A layer's kernel and bias (NumPy) as Keras's LSTM weights: kernel [n_input, 4 n_hidden],
    recurrent_kernel [n_hidden, 4 n_hidden] and bias [4 n_hidden], in Keras's block order i, f, c, o
    (Keras's c is TF1's j), with forget_bias folded into f: Keras has no such run-time term."""
    k, b = blocks(np.asarray(kernel)), blocks(np.asarray(bias))
    reordered = np.concatenate([k.i, k.f, k.j, k.o], axis=1)
    return [reordered[:n_input], reordered[n_input:], np.concatenate([b.i, b.f + np.float32(forget_bias), b.j, b.o])]


def tf1_weights(kernel, recurrent_kernel, bias, forget_bias):
    """keras_weights the other way: one layer's Keras LSTM weights as BasicLSTMCell's kernel over
    [x, h] and bias, forget_bias taken out of f (the cell adds it)."""
    i, f, c, o = np.split(np.concatenate([kernel, recurrent_kernel]), 4, axis=1)
    bias_i, bias_f, bias_c, bias_o = np.split(bias, 4)
    return (in_layout(np.concatenate, i=i, j=c, f=f, o=o),
            in_layout(np.concatenate, i=bias_i, j=bias_c, f=bias_f - np.float32(forget_bias), o=bias_o))


RECURRENT_INITS = ("cell", "orthogonal", "identity")  # config.py's recurrent_init


def recipe_assignments(layers, recurrent_init="cell", chrono_init=0):
    """Ops that set the layers' first weights as a recipe asks (docs/tasks.md), to run once the variables'
    own initializers have (BasicLSTMCell's Glorot uniform kernel, zero bias); none for the cell's own:
    - recurrent_init "orthogonal": each gate's block of the h rows of the kernel a random orthogonal
      matrix; "identity": the candidate's (j) the identity, the gates' orthogonal (Cooijmans et al.
      2016's LSTM);
    - chrono_init T > 0: each forget gate's bias log U(1, T - 1), the cell's forget_bias included, and
      the input gate's its negative (Tallec and Ollivier 2018's chrono initialization), so that the
      cell starts out keeping its memory over time scales up to T steps."""
    assignments = []
    for layer in layers:
        n, kernel, bias = layer.n_hidden, layer.kernel, layer.bias
        if recurrent_init != "cell":
            recurrent = {name: tf1.orthogonal_initializer()([n, n]) for name in GATE_BLOCKS}
            if recurrent_init == "identity":
                recurrent["j"] = tf.eye(n)
            # read_value: a read made here, after the initializers (a variable's cached read would race them)
            assignments.append(tf1.assign(kernel, tf.concat([kernel.read_value()[:layer.n_input],
                                                             in_layout(tf.concat, **recurrent)], axis=0)))
        if chrono_init:
            keep = tf.math.log(tf1.random_uniform([n], 1.0, chrono_init - 1.0))
            zeros = tf.zeros([n])
            assignments.append(tf1.assign(bias, in_layout(tf.concat, i=-keep, j=zeros, f=keep - layer.forget_bias,
                                                          o=zeros)))
    return assignments


def cell_variables(layer, num_layers, n_input, n_hidden):
    """A new layer's kernel [n_input + n_hidden, 4 n_hidden] and bias [4 n_hidden], named and
    initialized as BasicLSTMCell's (Glorot uniform, zeros): the fast cell's."""
    with tf1.variable_scope(cell_scope(layer, num_layers)):
        kernel = tf1.get_variable("kernel", [n_input + n_hidden, 4 * n_hidden],
                                  initializer=tf1.glorot_uniform_initializer())
        bias = tf1.get_variable("bias", [4 * n_hidden], initializer=tf1.zeros_initializer())
    return kernel, bias


# ------------------------------------------------------------ the layers

@dataclasses.dataclass(frozen=True)
class Gates:
    """A layer's gates and state after every step, each (batch, n_steps, n_hidden), and `statistics`,
    (3 gates, 3, n_hidden): for write, keep and read and each unit, the share of the batch's steps
    below CLOSED, above OPEN, and the mean."""

    write: tf.Tensor  # sigmoid(i)
    keep: tf.Tensor  # sigmoid(f + forget_bias)
    read: tf.Tensor  # sigmoid(o)
    candidate: tf.Tensor  # tanh(j)
    cell: tf.Tensor  # c
    output: tf.Tensor  # h
    statistics: tf.Tensor

    NAMES = ("write", "keep", "read", "candidate", "cell", "output")  # what a step gives, in this order


@dataclasses.dataclass(frozen=True)
class Layer:
    """One LSTM layer: its variables, what it reads and what it outputs at every step."""

    kernel: tf.Variable  # [n_input + n_hidden, 4 n_hidden], blocks i, j, f, o
    bias: tf.Variable  # [4 n_hidden]
    inputs: tf.Tensor  # (batch, n_steps, n_input): the sequence, or the outputs of the layer below
    outputs: tf.Tensor  # h at every step, (batch, n_steps, n_hidden)
    forget_bias: float

    @property
    def n_hidden(self):
        return self.bias.shape[0] // len(GATE_BLOCKS)

    @property
    def n_input(self):
        return self.kernel.shape[0] - self.n_hidden

    def gates(self):
        """The layer's Gates, recomputed from its kernel and bias (the variables the model trains,
        not a copy) with h_(t-1) taken from its outputs, and c from the recurrence: so they are the
        cell's gates, either cell."""
        outputs = self.outputs
        h_before = tf.concat([tf.zeros_like(outputs[:, :1]), outputs[:, :-1]], axis=1)
        xh = tf.concat([self.inputs, h_before], axis=2)
        z = tf.reshape(tf.matmul(tf.reshape(xh, [-1, xh.shape[2]]), self.kernel) + self.bias,
                       [-1, outputs.shape[1], 4 * self.n_hidden])
        b = blocks(z)
        write, keep, read = tf.sigmoid(b.i), tf.sigmoid(b.f + self.forget_bias), tf.sigmoid(b.o)
        candidate = tf.tanh(b.j)
        cell = time_major(tf1.scan(lambda c, kw: kw[0] * c + kw[1], (time_major(keep), time_major(write * candidate)),
                                   initializer=tf.zeros_like(keep[:, 0])))
        statistics = tf.stack([tf.stack([tf.reduce_mean(tf.cast(gate < CLOSED, tf.float32), axis=[0, 1]),
                                         tf.reduce_mean(tf.cast(gate > OPEN, tf.float32), axis=[0, 1]),
                                         tf.reduce_mean(gate, axis=[0, 1])]) for gate in (write, keep, read)])
        return Gates(write, keep, read, candidate, cell, outputs, statistics)


def time_major(t):
    return tf.transpose(t, [1, 0, 2])


def basic_layers(lstm_cell, sequence, outputs, forget_bias):
    """The Layers of dynamic_rnn's `lstm_cell` (a BasicLSTMCell, or a MultiRNNCell of them) that read
    `sequence` and gave `outputs`. dynamic_rnn gives the top layer's h alone: the layers below are
    replayed from their variables, ops that run only when asked (the gates, the page)."""
    variables = lstm_cell.trainable_weights  # kernel, bias, layer by layer from the bottom
    layers, inputs = [], sequence
    for k in range(0, len(variables), 2):
        kernel, bias = variables[k:k + 2]
        top = k == len(variables) - 2
        layer_outputs = outputs if top else replayed_outputs(inputs, kernel, bias, forget_bias)
        layers.append(Layer(kernel, bias, inputs, layer_outputs, forget_bias))
        inputs = layer_outputs
    return layers


def replayed_outputs(inputs, kernel, bias, forget_bias):
    """h at every step of a layer, computed again from its variables by the cell's recurrence."""
    n_hidden = bias.shape[0] // len(GATE_BLOCKS)

    def step(state, x_t):
        c, h = state
        b = blocks(tf.matmul(tf.concat([x_t, h], axis=1), kernel) + bias)
        c = c * tf.sigmoid(b.f + forget_bias) + tf.sigmoid(b.i) * tf.tanh(b.j)
        return c, tf.tanh(c) * tf.sigmoid(b.o)

    start = tf.zeros([tf.shape(inputs)[0], n_hidden])
    _, h = tf1.scan(step, time_major(inputs), initializer=(start, start))
    return time_major(h)


# --------------------------------------------------------------- the model

class Model:
    """The tutorial's graph as one object: its tensors by the tutorial's names, the LSTM's layers,
    and what every entry point reads of it, added to the graph here: the predictions, the answer
    after every step (the reading), the gates of every layer, and the checkpoints' Saver, made last
    so that it saves every variable.

    `order` is the pixel order the LSTM reads (the permuted task's permutation), None for reading
    order; `recurrent_init` and `chrono_init` say how the LSTM's first weights differ from the cell's
    own (recipe_assignments); `data_position`: whether checkpoints hold the training data's position
    (not in a cluster, whose workers each read their own shard)."""

    def __init__(self, *, graph, x, y, sequence, weights, biases, layers, pred, cost, optimizer, correct_pred,
                 accuracy, global_step=None, order=None, recurrent_init="cell", chrono_init=0, keep_checkpoints=3,
                 data_position=True):
        self.graph: tf.Graph = graph
        # The tutorial's
        self.x: tf.Tensor = x  # placeholder (batch, n_steps, n_input): each image, one row per time step
        self.y: tf.Tensor = y  # placeholder (batch, n_classes): the one-hot labels
        self.weights: dict = weights  # {"out": the readout's weights, (n_hidden, n_classes)}
        self.biases: dict = biases  # {"out": the readout's biases, (n_classes,)}
        self.pred: tf.Tensor = pred  # logits of the top layer's last output through the readout
        self.cost: tf.Tensor = cost  # mean softmax cross-entropy of pred against y
        self.optimizer: tf.Operation = optimizer  # the training op (it also increments global_step)
        self.correct_pred: tf.Tensor = correct_pred
        self.accuracy: tf.Tensor = accuracy
        # Beyond the tutorial
        self.sequence: tf.Tensor = sequence  # what the LSTM reads: x, or its pixels in `order`
        self.layers: tuple = tuple(layers)  # Layer, the bottom one first
        self.global_step: tf.Variable = global_step
        self.order = order
        with graph.as_default():
            self.predicted = tf.argmax(pred, 1, name="predicted")
            self.probabilities = tf.nn.softmax(pred, name="probabilities")
            logits = tf.matmul(tf.reshape(self.outputs, [-1, self.n_hidden]), weights["out"]) + biases["out"]
            # the reading: the probabilities after every step, and their argmax
            self.step_probabilities = tf.reshape(tf.nn.softmax(logits), [-1, self.n_steps, pred.shape[1]],
                                                 name="step_probabilities")
            self.step_predicted = tf.argmax(self.step_probabilities, axis=2)
            with tf1.name_scope("gates"):
                self.gates = tuple(layer.gates() for layer in self.layers)  # Gates, layer by layer
            self.saving = checkpoints.add_to_graph(keep_checkpoints, data_position)
            self.init = tf1.global_variables_initializer()
            with tf.control_dependencies([self.init]):
                recipe = recipe_assignments(self.layers, recurrent_init, chrono_init)
            if recipe:
                self.init = tf.group(*recipe, name="init_as_the_recipe_asks")

    @property
    def outputs(self):
        """h at every step of the top layer: dynamic_rnn's outputs, or the fast cell's."""
        return self.layers[-1].outputs

    @property
    def n_steps(self):
        return self.x.shape[1]

    @property
    def n_hidden(self):
        return self.layers[-1].n_hidden

    @functools.cached_property
    def variables(self):
        """What the Keras bridge carries, either way: each layer's kernel and bias, then the readout's
        weights and biases."""
        return [v for layer in self.layers for v in (layer.kernel, layer.bias)] + [self.weights["out"],
                                                                                   self.biases["out"]]

    def feed(self, images, labels=None):
        """A feed_dict for images in any of data.py's shapes ((N, 784), (N, 28, 28, 1)), each
        reshaped to its sequence, (N, n_steps, n_input), and their labels if given."""
        feed = {self.x: images.reshape((-1, *self.x.shape.as_list()[1:]))}
        if labels is not None:
            feed[self.y] = labels
        return feed
