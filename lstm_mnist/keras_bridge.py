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
top one giving its output at every step. A permuted task's model reads its pixels in its own order:
in Keras, a fixed Dense layer of 0s and 1s (`permutation`, exact in float32) between the image and
the LSTM does what the graph's gather does, so the .keras file answers as the SavedModel, for the
same images.

Keras 3 needs eager TensorFlow, and this project's processes run TF1's graph mode (tf_setup.py),
so Keras's side runs in a process of its own, this module run as a program, which imports only
numpy, keras and TensorFlow. One way, `python -m lstm_mnist.keras_bridge write WEIGHTS.npz OUT.keras
SHAPE` builds and saves the model from the weights the exporting process read from the checkpoint;
the way back, `python -m lstm_mnist.keras_bridge read MODEL.keras WEIGHTS.npz SHAPE` checks that a
Keras model has the tutorial's shape and hands its weights over for a checkpoint.
"""
import contextlib
import json
import os
import subprocess
import sys
import zipfile

import numpy as np

from lstm_mnist import context
from lstm_mnist.errors import ConfigError, TrainingError

REFUSED = 2  # the exit code of a Keras model this bridge does not take
UNWRITTEN = 3  # the exit code of a file the Keras process could not write (a full disk)
LSTM_LAYER, READOUT_LAYER = "lstm", "readout"  # the Keras model's layer names (lstm_2, ... above the first)
PERMUTATION_LAYERS = ("pixels", "permutation", "permuted")  # a permuted task's: Flatten, Dense, Reshape
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sizes(cfg, order):
    """The settings that give the Keras model its shape, by keras_model's names, and `order`, the pixel
    order the model reads (model.Model's: None for reading order)."""
    shape = {name: getattr(cfg, name) for name in ("n_steps", "n_input", "n_hidden", "n_classes", "num_layers")}
    return {**shape, "order": None if order is None else [int(k) for k in order]}


def permutation_matrix(order):
    """The Dense kernel that reads pixel order[k] as pixel k: one 1 in each column."""
    matrix = np.zeros((len(order), len(order)), np.float32)
    matrix[order, np.arange(len(order))] = 1
    return matrix


def lstm_layer_name(layer):
    """The Keras model's name of an LSTM layer (from 1, the bottom)."""
    return LSTM_LAYER if layer == 1 else f"{LSTM_LAYER}_{layer}"


def write_keras_model(shape, weights, path):
    """`path` (.keras) written by a process of its own (see the module's docstring): the model of
    `shape` (sizes) with `weights` (Keras's LSTM weights, then the readout's). The
    weights go through an .npz file beside `path` (inside the export being built), removed after."""
    handed_over = f"{path}.weights.npz"
    np.savez(handed_over, *weights)
    try:
        keras_process("write", handed_over, path, shape)
    finally:
        os.remove(handed_over)


def read_keras_model(path, shape, handed_over):
    """The weights of the Keras model file `path` (Keras's LSTM weights, then the readout's), read by
    a process of its own through the .npz file `handed_over`, removed after. A model of another shape
    than `shape` (sizes) is a ConfigError that says what is supported, and so is one whose weights
    are not all finite (a model that diverged)."""
    not_keras = not_a_keras_file(path)
    if not_keras:
        raise ConfigError(f"{path}: {not_keras}")
    try:
        keras_process("read", path, handed_over, shape)
        with np.load(handed_over) as saved:
            weights = [saved[f"arr_{k}"] for k in range(len(saved.files))]
    finally:
        if os.path.exists(handed_over):
            os.remove(handed_over)
    if not all(np.isfinite(array).all() for array in weights):
        raise ConfigError(f"{path}: its weights are not all finite (NaN or infinity): the model diverged in training; "
                          f"give one that trained well")
    return weights


def keras_process(way, source, target, shape):
    """This module as a program (`way` "write" or "read"), on the TensorFlow backend whatever
    KERAS_BACKEND the user has, given absolute paths (it runs in the project's folder); its refusal
    (exit 2) is a ConfigError, any other failure a TrainingError, each with its last line."""
    command = [sys.executable, "-m", "lstm_mnist.keras_bridge", way, os.path.abspath(source), os.path.abspath(target),
               json.dumps(shape)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT,
                            env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    last_line = (result.stderr.strip().splitlines() or ["no output"])[-1].replace(command[3], source)
    if result.returncode == REFUSED:
        raise ConfigError(last_line)
    if result.returncode == UNWRITTEN:
        raise OSError(last_line)
    if result.returncode != 0:
        context.check()  # a Ctrl-C ends Keras's process too: that failure is the stop's
        raise TrainingError(f"Keras's process could not {way} the model: {last_line}")


def keras_model(n_steps, n_input, n_hidden, n_classes, num_layers, order, weights):
    """The tutorial's model in Keras 3: rows in (their pixels in `order`, where one is given), num_layers
    LSTMs, the linear readout (logits), softmax. `weights`: each LSTM's three arrays, bottom first, then
    the readout's two."""
    import keras  # here: only the converting process, which runs eager, loads Keras 3

    inputs = keras.Input((n_steps, n_input), name="images")
    h = inputs
    if order is not None:
        flat = keras.layers.Flatten(name=PERMUTATION_LAYERS[0])(inputs)
        permuted = keras.layers.Dense(len(order), use_bias=False, trainable=False, name=PERMUTATION_LAYERS[1])(flat)
        h = keras.layers.Reshape((n_steps, n_input), name=PERMUTATION_LAYERS[2])(permuted)
    for layer in range(1, num_layers + 1):
        h = keras.layers.LSTM(n_hidden, return_sequences=layer < num_layers, name=lstm_layer_name(layer))(h)
    logits = keras.layers.Dense(n_classes, name=READOUT_LAYER)(h)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits), name="lstm_mnist")
    for layer in range(1, num_layers + 1):
        model.get_layer(lstm_layer_name(layer)).set_weights(weights[3 * (layer - 1):3 * layer])
    model.get_layer(READOUT_LAYER).set_weights(weights[3 * num_layers:])
    if order is not None:
        model.get_layer(PERMUTATION_LAYERS[1]).set_weights([permutation_matrix(order)])
    return model


def tutorial_layers(model):
    """(the permutation's kernel, or None where the model has no permutation layers, the model's other
    layers but its input, and their kinds: a softmax Activation counts as Softmax)."""
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    permutation = None
    if [layer.name for layer in layers[:3]] == list(PERMUTATION_LAYERS):
        permutation, layers = layers[1].get_weights()[0], layers[3:]
    kinds = [layer.__class__.__name__ for layer in layers]
    if kinds[-1:] == ["Activation"] and layers[-1].get_config()["activation"] == "softmax":
        kinds[-1] = "Softmax"
    return permutation, layers, kinds


def refusal(model, n_steps, n_input, n_hidden, n_classes, num_layers=1, order=None):
    """Why the Keras `model` is not the tutorial's of these sizes (a line that says what is
    supported), or None: an input [n_steps, n_input], where `order` is given the permutation
    layers that read the pixels in that order, num_layers LSTM(n_hidden) with tanh and a sigmoid
    recurrent activation, each but the top one giving its output at every step, the top one its
    last output; one Dense(n_classes), then softmax (in the Dense or a layer of its own) or
    nothing (logits)."""
    lstms = " -> ".join([f"LSTM({n_hidden})"] * num_layers)
    supported = (f"supported: Input(({n_steps}, {n_input})) -> {lstms} -> Dense({n_classes}) [-> Softmax], "
                 f"as export.py --keras writes it, the sizes from the settings n_steps, n_input, n_hidden, n_classes, "
                 f"num_layers")
    permutation, layers, kinds = tutorial_layers(model)
    if permutation is not None and order is None:
        return ("it reads the pixels in a fixed order of its own (a permuted task's model): give --task=permuted "
                "and the run's --permutation_seed")
    if permutation is None and order is not None:
        return "it reads the pixels in reading order, not a permuted task's: give --task=pixels"
    if order is not None and not np.array_equal(permutation, permutation_matrix(order)):
        return "its permutation is not the one permutation_seed gives: give the run's own --permutation_seed"
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


def not_a_keras_file(path):
    """What a file given as a .keras model is, in words, where its bytes tell it is none: empty, a Keras 2
    HDF5 file, not a zip archive, a damaged one; None where it looks like a .keras file (Keras's
    process loads it, or says why not)."""
    with open(path, "rb") as f:
        start = f.read(8)
    if not start:
        return "it is empty"
    if start == b"\x89HDF\r\n\x1a\n":
        return ("it is a Keras 2 HDF5 file, not a Keras 3 .keras file: load it with Keras 2 (tf.keras) and save it "
                "again as MODEL.keras")
    if not zipfile.is_zipfile(path):
        if start.startswith(b"PK"):
            return "it is a damaged .keras file (its zip archive has no end: cut short?)"
        return "it is not a .keras file (the zip archive Keras 3 writes)"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip() or ("config.json" not in archive.namelist() and "has no config.json")
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        damaged = str(e)
    return f"it is a damaged .keras file ({damaged})" if damaged else None


def read_weights(path, target, sizes):
    """The way back, in the Keras process: the weights of the model at `path` (the LSTM's, then the
    Dense's) into `target` (.npz); or, for a file or model this bridge does not take, its line and
    exit 2. Keras loads it in safe mode: no code that the file names runs."""
    import keras  # as in keras_model

    try:
        model = keras.saving.load_model(path, compile=False)
        refused = refusal(model, **sizes)
    except Exception as e:  # whatever Keras raises on a file it cannot take (safe mode's refusals too), the file's
        refused = f"cannot read this Keras model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e}); " \
                  f"give a .keras file that Keras saved"
    if refused:
        print(f"{path}: {refused}", file=sys.stderr)
        sys.exit(REFUSED)
    layers = tutorial_layers(model)[1][:sizes["num_layers"] + 1]  # the LSTMs, then the Dense
    with written(target):
        np.savez(target, *[array for layer in layers for array in layer.get_weights()])


@contextlib.contextmanager
def written(target):
    """In the Keras process: a failure to write `target` (a full disk) ends it with UNWRITTEN and the reason."""
    try:
        yield
    except OSError as e:
        print(e.strerror or e, file=sys.stderr)
        sys.exit(UNWRITTEN)


if __name__ == "__main__":
    way, source, target, needed = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if way == "write":
        with np.load(source) as saved:
            arrays = [saved[f"arr_{k}"] for k in range(len(saved.files))]
        with written(target):
            keras_model(**needed, weights=arrays).save(target)
    else:
        read_weights(source, target, needed)
