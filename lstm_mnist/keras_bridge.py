"""The bridge to TF2: the tutorial's TF1 LSTM as a Keras 3 model with the same weights, so the same answers.

Three traps lie between the two (docs/migrate.md):
- the gate blocks: TF1's kernel and bias hold them in the order i, j, f, o; Keras's in i, f, c, o
  (Keras's c is TF1's j);
- forget_bias: BasicLSTMCell adds it at run time; Keras has no such term (its `unit_forget_bias` is
  only an initializer), so it is folded into the f block of the bias;
- TF1 keeps one kernel over [x, h]; Keras splits it into `kernel` (the x rows) and
  `recurrent_kernel` (the h rows).

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
LSTM_LAYER, READOUT_LAYER = "lstm", "readout"  # the Keras model's layer names
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sizes(cfg):
    """The settings that give the Keras model its shape, by keras_model's names."""
    return {name: getattr(cfg, name) for name in ("n_steps", "n_input", "n_hidden", "n_classes")}


def keras_lstm_weights(kernel, bias, n_input, forget_bias):
    """BasicLSTMCell's kernel [n_input + n_hidden, 4 n_hidden] and bias [4 n_hidden] (blocks i, j, f, o)
    as Keras's LSTM weights: kernel [n_input, 4 n_hidden], recurrent_kernel [n_hidden, 4 n_hidden]
    and bias [4 n_hidden], blocks i, f, c, o, forget_bias added to f."""
    i, j, f, o = np.split(kernel, 4, axis=1)
    bias_i, bias_j, bias_f, bias_o = np.split(bias, 4)
    reordered = np.concatenate([i, f, j, o], axis=1)
    return [reordered[:n_input], reordered[n_input:],
            np.concatenate([bias_i, bias_f + np.float32(forget_bias), bias_j, bias_o])]


def tf1_lstm_weights(kernel, recurrent_kernel, bias, forget_bias):
    """keras_lstm_weights the other way: Keras's LSTM weights (blocks i, f, c, o) as BasicLSTMCell's
    kernel over [x, h] and bias (blocks i, j, f, o), forget_bias taken out of f (the cell adds it)."""
    i, f, c, o = np.split(np.concatenate([kernel, recurrent_kernel]), 4, axis=1)
    bias_i, bias_f, bias_c, bias_o = np.split(bias, 4)
    return (np.concatenate([i, c, f, o], axis=1),
            np.concatenate([bias_i, bias_c, bias_f - np.float32(forget_bias), bias_o]))


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


def keras_model(n_steps, n_input, n_hidden, n_classes, weights):
    """The tutorial's model in Keras 3: rows in, LSTM, the linear readout (logits), softmax."""
    import keras  # here: only the converting process, which runs eager, loads Keras 3

    inputs = keras.Input((n_steps, n_input), name="images")
    h = keras.layers.LSTM(n_hidden, name=LSTM_LAYER)(inputs)
    logits = keras.layers.Dense(n_classes, name=READOUT_LAYER)(h)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits), name="lstm_mnist")
    model.get_layer(LSTM_LAYER).set_weights(weights[:3])
    model.get_layer(READOUT_LAYER).set_weights(weights[3:])
    return model


def tutorial_layers(model):
    """The model's layers but its input, and their kinds (a softmax Activation counts as Softmax)."""
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    kinds = [layer.__class__.__name__ for layer in layers]
    if kinds[-1:] == ["Activation"] and layers[-1].get_config()["activation"] == "softmax":
        kinds[-1] = "Softmax"
    return layers, kinds


def refusal(model, n_steps, n_input, n_hidden, n_classes):
    """Why the Keras `model` is not the tutorial's of these sizes (a line that says what is
    supported), or None: an input [n_steps, n_input], one LSTM(n_hidden) that gives its last
    output, with tanh and a sigmoid recurrent activation, one Dense(n_classes), then softmax
    (in the Dense or a layer of its own) or nothing (logits)."""
    supported = (f"supported: Input(({n_steps}, {n_input})) -> LSTM({n_hidden}) -> Dense({n_classes}) [-> Softmax], "
                 f"as export.py --keras writes it, the sizes from the settings n_steps, n_input, n_hidden, n_classes")
    layers, kinds = tutorial_layers(model)
    if kinds not in (["LSTM", "Dense"], ["LSTM", "Dense", "Softmax"]):
        return f"its layers are {', '.join(kinds) or 'none'}; {supported}"
    lstm, dense = layers[0].get_config(), layers[1].get_config()
    as_tutorial = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                   "return_sequences": False, "go_backwards": False}
    differ = {name: lstm[name] for name, value in as_tutorial.items() if lstm[name] != value}
    if differ or not dense["use_bias"]:
        return f"its LSTM or Dense is not the tutorial's ({differ or 'the Dense has no bias'}); {supported}"
    if dense["activation"] not in (("linear",) if len(kinds) == 3 else ("linear", "softmax")):
        return f"its Dense has the activation {dense['activation']}; {supported}"
    sizes = (tuple(model.inputs[0].shape[1:]), lstm["units"], dense["units"])
    if sizes != ((n_steps, n_input), n_hidden, n_classes):
        return f"its input is {sizes[0]}, its LSTM has {sizes[1]} units and its Dense {sizes[2]}; {supported}"
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
    lstm, dense = tutorial_layers(model)[0][:2]
    np.savez(target, *lstm.get_weights(), *dense.get_weights())


if __name__ == "__main__":
    way, source, target, needed = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if way == "write":
        with np.load(source) as saved:
            arrays = [saved[f"arr_{k}"] for k in range(len(saved.files))]
        keras_model(**needed, weights=arrays).save(target)
    else:
        read_weights(source, target, needed)
