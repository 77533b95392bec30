"""The bridge to TF2: the tutorial's TF1 LSTM as a Keras 3 model with the same weights, so the same answers.

Three traps lie between the two (docs/migrate.md), which model.keras_weights and model.tf1_weights
cross, layer by layer:
- the gate blocks: TF1's kernel and bias hold them in the order i, j, f, o; Keras's in i, f, c, o
  (Keras's c is TF1's j);
- forget_bias: BasicLSTMCell adds it at run time; Keras has no such term (its `unit_forget_bias` is
  only an initializer), so it is folded into the f block of the bias;
- TF1 keeps one kernel over [x, h]; Keras splits it into `kernel` (the x rows) and
  `recurrent_kernel` (the h rows).
Stacked layers (num_layers > 1, TF1's MultiRNNCell) are stacked keras.layers.LSTM, each but the
top one giving its output at every step.

Keras 3 needs eager TensorFlow, and this project's processes run TF1's graph mode (tf_setup.py),
so Keras's side runs in a process of its own, this module run as a program, which imports only
numpy, keras and TensorFlow. One way, `python -m lstm_mnist.keras_bridge write WEIGHTS.npz OUT.keras
SHAPE` builds and saves the model from the weights the exporting process read from the checkpoint;
the way back, `python -m lstm_mnist.keras_bridge read MODEL.keras WEIGHTS.npz SHAPE` checks that a
Keras model has the tutorial's shape and hands its weights over for a checkpoint.
"""
import json
import os
import subprocess
import sys

import numpy as np

from lstm_mnist.errors import ConfigError

REFUSED = 2  # the exit code of a Keras model this bridge does not take
LSTM_LAYER, READOUT_LAYER = "lstm", "readout"  # the Keras model's layer names (lstm_2, ... above the first)
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sizes(cfg):
    """The settings that give the Keras model its shape, by keras_model's names."""
    return {name: getattr(cfg, name) for name in ("n_steps", "n_input", "n_hidden", "n_classes", "num_layers")}


def lstm_layer_name(layer):
    """The Keras model's name of an LSTM layer (from 1, the bottom)."""
    return LSTM_LAYER if layer == 1 else f"{LSTM_LAYER}_{layer}"


def write_keras_model(shape, weights, path):
    """`path` (.keras) written by a process of its own (see the module's docstring): the model of
    `shape` (sizes) with `weights` (Keras's LSTM weights, then the readout's). The
    weights go through an .npz file beside `path`, removed after."""
    handed_over = f"{path}.weights.npz"
    np.savez(handed_over, *weights)
    try:
        keras_process("write", handed_over, path, shape)
    finally:
        os.remove(handed_over)


def read_keras_model(path, shape, handed_over):
    """The weights of the Keras model file `path` (Keras's LSTM weights, then the readout's), read by
    a process of its own through the .npz file `handed_over`, removed after. A model of another shape
    than `shape` (sizes) is a ConfigError that says what is supported."""
    try:
        keras_process("read", path, handed_over, shape)
        with np.load(handed_over) as saved:
            return [saved[f"arr_{k}"] for k in range(len(saved.files))]
    finally:
        if os.path.exists(handed_over):
            os.remove(handed_over)


def keras_process(way, source, target, shape):
    """This module as a program (`way` "write" or "read"); its refusal (exit 2) is a ConfigError,
    any other failure an OSError, each with its last line."""
    result = subprocess.run([sys.executable, "-m", "lstm_mnist.keras_bridge", way, source, target, json.dumps(shape)],
                            capture_output=True, text=True, cwd=PROJECT)
    last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
    if result.returncode == REFUSED:
        raise ConfigError(last_line)
    if result.returncode != 0:
        raise OSError(f"Keras's process could not {way} the model: {last_line}")


def keras_model(n_steps, n_input, n_hidden, n_classes, num_layers, weights):
    """The tutorial's model in Keras 3: rows in, num_layers LSTMs, the linear readout (logits), softmax.
    `weights`: each LSTM's three arrays, bottom first, then the readout's two."""
    import keras  # here: only the converting process, which runs eager, loads Keras 3

    inputs = keras.Input((n_steps, n_input), name="images")
    h = inputs
    for layer in range(1, num_layers + 1):
        h = keras.layers.LSTM(n_hidden, return_sequences=layer < num_layers, name=lstm_layer_name(layer))(h)
    logits = keras.layers.Dense(n_classes, name=READOUT_LAYER)(h)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits), name="lstm_mnist")
    for layer in range(1, num_layers + 1):
        model.get_layer(lstm_layer_name(layer)).set_weights(weights[3 * (layer - 1):3 * layer])
    model.get_layer(READOUT_LAYER).set_weights(weights[3 * num_layers:])
    return model


def tutorial_layers(model):
    """The model's layers but its input, and their kinds (a softmax Activation counts as Softmax)."""
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    kinds = [layer.__class__.__name__ for layer in layers]
    if kinds[-1:] == ["Activation"] and layers[-1].get_config()["activation"] == "softmax":
        kinds[-1] = "Softmax"
    return layers, kinds


def refusal(model, n_steps, n_input, n_hidden, n_classes, num_layers=1):
    """Why the Keras `model` is not the tutorial's of these sizes (a line that says what is
    supported), or None: an input [n_steps, n_input], num_layers LSTM(n_hidden) with tanh and a
    sigmoid recurrent activation, each but the top one giving its output at every step, the top
    one its last output; one Dense(n_classes), then softmax (in the Dense or a layer of its own)
    or nothing (logits)."""
    lstms = " -> ".join([f"LSTM({n_hidden})"] * num_layers)
    supported = (f"supported: Input(({n_steps}, {n_input})) -> {lstms} -> Dense({n_classes}) [-> Softmax], "
                 f"as export.py --keras writes it, the sizes from the settings n_steps, n_input, n_hidden, n_classes, "
                 f"num_layers")
    layers, kinds = tutorial_layers(model)
    if kinds not in (["LSTM"] * num_layers + ["Dense"], ["LSTM"] * num_layers + ["Dense", "Softmax"]):
        return f"its layers are {', '.join(kinds) or 'none'}; {supported}"
    dense = layers[num_layers].get_config()
    for k, layer in enumerate(layers[:num_layers], start=1):
        lstm = layer.get_config()
        as_tutorial = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                       "return_sequences": k < num_layers, "go_backwards": False}
        differ = {name: lstm[name] for name, value in as_tutorial.items() if lstm[name] != value}
        if differ:
            return f"its LSTM is not the tutorial's ({differ}); {supported}"
        if lstm["units"] != n_hidden:
            return f"its LSTM has {lstm['units']} units; {supported}"
    if not dense["use_bias"]:
        return f"its Dense is not the tutorial's (the Dense has no bias); {supported}"
    if dense["activation"] not in (("linear",) if len(kinds) == num_layers + 2 else ("linear", "softmax")):
        return f"its Dense has the activation {dense['activation']}; {supported}"
    sizes = (tuple(model.inputs[0].shape[1:]), dense["units"])
    if sizes != ((n_steps, n_input), n_classes):
        return f"its input is {sizes[0]} and its Dense has {sizes[1]} units; {supported}"
    return None


def read_weights(path, target, sizes):
    """The way back, in the Keras process: the weights of the model at `path` (the LSTM's, then the
    Dense's) into `target` (.npz); or, for a model this bridge does not take, its line and exit 2."""
    import keras  # as in keras_model

    try:
        model = keras.saving.load_model(path, compile=False)
        refused = refusal(model, **sizes)
    except (OSError, ValueError) as e:
        refused = f"cannot read this Keras model ({e}); give a .keras file that Keras saved"
    if refused:
        print(f"{path}: {refused}", file=sys.stderr)
        sys.exit(REFUSED)
    layers = tutorial_layers(model)[0][:sizes["num_layers"] + 1]  # the LSTMs, then the Dense
    np.savez(target, *[array for layer in layers for array in layer.get_weights()])


if __name__ == "__main__":
    way, source, target, needed = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if way == "write":
        with np.load(source) as saved:
            arrays = [saved[f"arr_{k}"] for k in range(len(saved.files))]
        keras_model(**needed, weights=arrays).save(target)
    else:
        read_weights(source, target, needed)
