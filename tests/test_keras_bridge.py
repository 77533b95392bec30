"""The bridge to TF2: a TF1 checkpoint as a Keras 3 model file, with the same answers, checked by Keras alone."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import export
import predict
from lstm_mnist import keras_bridge, settings

# Run in a fresh process, in another folder: Keras 3 and TensorFlow alone, none of this project's modules.
KERAS_ALONE = """
import json, sys
import numpy as np
import keras
model_path, images_path, labels_path, out = sys.argv[1:]
images, labels = np.load(images_path), np.load(labels_path)
model = keras.saving.load_model(model_path)
np.save(out + "/probabilities.npy", model.predict(images, batch_size=1000, verbose=0))
lstm = model.get_layer("lstm")
every_row = keras.layers.LSTM(lstm.units, return_sequences=True)
every_row.build((None, *images.shape[1:]))
every_row.set_weights(lstm.get_weights())
np.save(out + "/outputs.npy", keras.ops.convert_to_numpy(every_row(images[:100])))
logits = keras.Model(model.inputs, model.get_layer("readout").output)
loss = keras.losses.CategoricalCrossentropy(from_logits=True)(labels[:100], logits.predict(images[:100], verbose=0))
# Training on starts from the run, not from scratch: the first step's loss (computed before its update) is the run's.
model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy")
first_step = model.train_on_batch(images[:100], labels[:100])
print(json.dumps({"loss": float(loss), "first_step_loss": float(first_step),
                  "layers": [layer.__class__.__name__ for layer in model.layers]}))
"""


@pytest.fixture(scope="module")
def converted(tiny_run, tmp_path_factory):
    """The tiny run exported with --keras, as it is (basic cell) and rebuilt with the fast cell."""
    folder = tmp_path_factory.mktemp("keras")
    run_dir = tiny_run[1]["run_dir"]
    assert export.main([run_dir, str(folder / "basic"), "--keras"]) == 0
    assert export.main([run_dir, str(folder / "fast"), "--cell=fast", "--keras"]) == 0
    return folder


def tf1_answers(tiny_run, images, labels, cell):
    """The TF1 graph's probabilities of `images`, its outputs (h after every row) and loss on the first 100."""
    cfg, checkpoint = settings.open_saved_run(tiny_run[1]["run_dir"], {"cell": cell})
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = np.concatenate([sess.run(model.probabilities, model.feed(images[k:k + 1000]))
                                        for k in range(0, len(images), 1000)])
        outputs, loss = sess.run([model.outputs, model.cost], model.feed(images[:100], labels[:100]))
    return probabilities, outputs, loss


def test_the_weights_move_to_keras_gate_blocks_reordered_and_the_forget_bias_folded_in():
    n_input, n_hidden = 2, 1
    kernel = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], dtype=np.float32)  # rows x1, x2, h; i j f o
    kernel_x, kernel_h, bias = keras_bridge.keras_lstm_weights(kernel, np.float32([1, 2, 3, 4]), n_input, 0.5)
    assert kernel_x.tolist() == [[1, 3, 2, 4], [5, 7, 6, 8]] and kernel_h.tolist() == [[9, 11, 10, 12]]
    assert bias.tolist() == [1, 3.5, 2, 4] and bias.dtype == np.float32
    assert kernel_h.shape == (n_hidden, 4 * n_hidden)


@pytest.mark.slow
def test_keras_alone_gives_the_tf1_graphs_answers_on_every_test_image(converted, tiny_run, mnist, tmp_path):
    images, labels = mnist.test.images.reshape(-1, 28, 28), mnist.test.labels
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    environment = {name: value for name, value in os.environ.items() if name != "TF_USE_LEGACY_KERAS"}
    for cell in ("basic", "fast"):
        out = tmp_path / cell
        out.mkdir()
        result = subprocess.run([sys.executable, "-c", KERAS_ALONE, str(converted / cell / export.KERAS_NAME),
                                 str(tmp_path / "images.npy"), str(tmp_path / "labels.npy"), str(out)],
                                capture_output=True, text=True, timeout=300, cwd=out,
                                env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == 0, result.stderr
        said = json.loads(result.stdout.splitlines()[-1])
        assert said["layers"] == ["InputLayer", "LSTM", "Dense", "Softmax"]
        probabilities, outputs, loss = tf1_answers(tiny_run, images, labels, cell)
        keras_probabilities = np.load(out / "probabilities.npy")
        assert keras_probabilities.shape == (10000, 10)
        np.testing.assert_allclose(keras_probabilities, probabilities, rtol=0, atol=1e-5)
        accuracy = np.mean(np.argmax(keras_probabilities, axis=1) == np.argmax(labels, axis=1))
        assert accuracy == tiny_run[1]["full_test_accuracy"]  # the run's "Full test set" line
        np.testing.assert_allclose(np.load(out / "outputs.npy"), outputs, rtol=0, atol=1e-5)
        assert said["loss"] == pytest.approx(float(loss), abs=1e-5)
        assert said["first_step_loss"] == pytest.approx(float(loss), abs=1e-5)
