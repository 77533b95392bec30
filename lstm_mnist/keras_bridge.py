"""The bridge to TF2: the tutorial's TF1 LSTM as a Keras 3 model with the same weights, so the same answers.

Three traps lie between the two (docs/migrate.md):
- the gate blocks: TF1's kernel and bias hold them in the order i, j, f, o; Keras's in i, f, c, o
  (Keras's c is TF1's j);
- forget_bias: BasicLSTMCell adds it at run time; Keras has no such term (its `unit_forget_bias` is
  only an initializer), so it is folded into the f block of the bias;
- TF1 keeps one kernel over [x, h]; Keras splits it into `kernel` (the x rows) and
  `recurrent_kernel` (the h rows).

Keras 3 needs eager TensorFlow, and this project's processes run TF1's graph mode (tf_setup.py),
so the Keras model is built and saved by this module run as a process of its own
(`python -m lstm_mnist.keras_bridge WEIGHTS.npz OUT.keras`), which imports only numpy, keras
and TensorFlow: the exporting process reads the weights from the checkpoint and hands them over.
"""
import json
import os
import subprocess
import sys

import numpy as np

LSTM_LAYER, READOUT_LAYER = "lstm", "readout"  # the Keras model's layer names
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_lstm_weights(kernel, bias, n_input, forget_bias):
    """BasicLSTMCell's kernel [n_input + n_hidden, 4 n_hidden] and bias [4 n_hidden] (blocks i, j, f, o)
    as Keras's LSTM weights: kernel [n_input, 4 n_hidden], recurrent_kernel [n_hidden, 4 n_hidden]
    and bias [4 n_hidden], blocks i, f, c, o, forget_bias added to f."""
    i, j, f, o = np.split(kernel, 4, axis=1)
    bias_i, bias_j, bias_f, bias_o = np.split(bias, 4)
    reordered = np.concatenate([i, f, j, o], axis=1)
    return [reordered[:n_input], reordered[n_input:],
            np.concatenate([bias_i, bias_f + np.float32(forget_bias), bias_j, bias_o])]


def write_keras_model(shape, weights, path):
    """`path` (.keras) written by a process of its own (see the module's docstring): the model of
    `shape` (keras_model's sizes) with `weights` (Keras's LSTM weights, then the readout's). The
    weights go through an .npz file beside `path`, removed after."""
    handed_over = f"{path}.weights.npz"
    np.savez(handed_over, *weights)
    try:
        result = subprocess.run([sys.executable, "-m", "lstm_mnist.keras_bridge", handed_over, path,
                                 json.dumps(shape)], capture_output=True, text=True, cwd=PROJECT)
    finally:
        os.remove(handed_over)
    if result.returncode != 0:
        raise OSError(f"Keras could not write {path}: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")


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


if __name__ == "__main__":
    weights_path, out, needed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with np.load(weights_path) as saved:
        arrays = [saved[f"arr_{k}"] for k in range(len(saved.files))]
    keras_model(**needed, weights=arrays).save(out)
