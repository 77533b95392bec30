"""The bridge to TF2: a TF1 checkpoint as a Keras 3 model file, with the same answers, checked by Keras alone."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import SETTINGS, assert_one_line_error, fill

import export
import predict
import serve
from lstm_mnist import errors, images, model, saved_run

# Run in a fresh process, in another folder: Keras 3 and TensorFlow alone, none of this project's modules.
# Its arguments: the images, the labels, then a model file and the folder for its answers, for each model.
KERAS_ALONE = """
import json, sys
import numpy as np
import keras
images_path, labels_path, *models = sys.argv[1:]
images, labels = np.load(images_path), np.load(labels_path)
said = {}
for model_path, out in zip(models[::2], models[1::2], strict=True):
    model = keras.saving.load_model(model_path)
    shaped = images.reshape((-1, *model.inputs[0].shape[1:]))  # a permuted run's model reads 784 steps of 1 pixel
    np.save(out + "/probabilities.npy", model.predict(shaped, batch_size=1000, verbose=0))
    said[out] = {"layers": [layer.__class__.__name__ for layer in model.layers]}
    if shaped.shape != images.shape:
        continue
    lstm = model.get_layer("lstm")
    every_row = keras.layers.LSTM(lstm.units, return_sequences=True)
    every_row.build((None, *images.shape[1:]))
    every_row.set_weights(lstm.get_weights())
    np.save(out + "/outputs.npy", keras.ops.convert_to_numpy(every_row(images[:100])))
    logits = keras.Model(model.inputs, model.get_layer("readout").output)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)(labels[:100],
                                                                  logits.predict(images[:100], verbose=0))
    # Training on starts from the run, not from scratch: the first step's loss (computed before its update)
    # is the run's.
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy")
    first_step = model.train_on_batch(images[:100], labels[:100])
    said[out].update(loss=float(loss), first_step_loss=float(first_step))
print(json.dumps(said))
"""


# The way back, from Keras: a model trained in Keras alone, its answers, and models the bridge refuses.
TRAINED_IN_KERAS = """
import json, sys
import numpy as np
import keras
from lstm_mnist import keras_bridge
images_path, labels_path, digit_path, out = sys.argv[1:]
images, labels, digit = np.load(images_path), np.load(labels_path), np.load(digit_path)
keras.utils.set_random_seed(3)
inputs = keras.Input((28, 28))
model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.LSTM(8)(inputs)))
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
for _ in range(3):
    model.train_on_batch(images[:100], labels[:100])
model.save(out + "/trained.keras")
np.save(out + "/probabilities.npy", model.predict(images, batch_size=1000, verbose=0))
two = keras.Sequential([inputs, keras.layers.LSTM(8, return_sequences=True), keras.layers.LSTM(8),
                        keras.layers.Dense(10, activation="softmax")])
two.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
for _ in range(3):
    two.train_on_batch(images[:100], labels[:100])
two.save(out + "/stacked.keras")
np.save(out + "/stacked.npy", two.predict(images, batch_size=1000, verbose=0))
np.save(out + "/digit.npy", model.predict(digit, verbose=0))
def refused(*layers, num_layers=1):
    return keras_bridge.refusal(keras.Sequential([keras.Input((28, 28)), *layers]), 28, 28, 8, 10, num_layers)
stacked = [keras.layers.LSTM(8, return_sequences=True), keras.layers.LSTM(8), keras.layers.Dense(10)]
diverged = keras.models.clone_model(model)
diverged.set_weights(model.get_weights())
kernel, *rest = diverged.get_layer(index=1).get_weights()
diverged.get_layer(index=1).set_weights([np.where(np.arange(kernel.size).reshape(kernel.shape) == 7, np.nan, kernel),
                                      *rest])
diverged.save(out + "/diverged.keras")
print(json.dumps({"trained": keras_bridge.refusal(model, 28, 28, 8, 10),
    "GRU": refused(keras.layers.GRU(8), keras.layers.Dense(10)),
    "stacked": refused(keras.layers.LSTM(8, return_sequences=True), keras.layers.LSTM(8), keras.layers.Dense(10)),
    "bidirectional": refused(keras.layers.Bidirectional(keras.layers.LSTM(8)), keras.layers.Dense(10)),
    "relu": refused(keras.layers.LSTM(8, activation="relu"), keras.layers.Dense(10)),
    "16 units": refused(keras.layers.LSTM(16), keras.layers.Dense(10)),
    "stacked as 2 layers": refused(*stacked, num_layers=2),
    "stacked 2 for 3": refused(*stacked, num_layers=3),
    "stacked, top every step": refused(keras.layers.LSTM(8, return_sequences=True),
                                       keras.layers.LSTM(8, return_sequences=True), keras.layers.Dense(10),
                                       num_layers=2)
}))
"""


def keras_alone(script, *arguments, cwd, project=False):
    """`script` run by a fresh Python with Keras 3 (no TF_USE_LEGACY_KERAS), in the folder `cwd`;
    with `project`, this project's modules can be imported. Returns the JSON of its last line."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_USE_LEGACY_KERAS"}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=saved_run.ROOT if project else "")
    result = subprocess.run([sys.executable, "-c", script, *map(str, arguments)], capture_output=True, text=True,
                            timeout=300, cwd=cwd, env=environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def converted(tiny_run, stacked_run, permuted_run, tmp_path_factory):
    """The tiny run exported with --keras, from a folder outside the checkout with paths relative to it (to a
    folder not there yet) and the user's KERAS_BACKEND set to another backend; the stacked run rebuilt with the
    fast cell; the permuted run. Nothing is written in the checkout."""
    folder = tmp_path_factory.mktemp("keras")
    before = sorted(os.listdir(saved_run.ROOT))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("KERAS_BACKEND", "jax")  # the converting process runs on TensorFlow whatever this says
        shutil.copytree(tiny_run[1].run_dir, "run")
        assert export.main(["run", "exported/basic", "--keras"]) == 0  # exported/ is not there yet
    assert sorted(os.listdir(saved_run.ROOT)) == before
    assert export.main([stacked_run[1].run_dir, str(folder / "exported" / "stacked-fast"), "--cell=fast",
                        "--keras"]) == 0
    assert export.main([permuted_run[1], str(folder / "exported" / "permuted"), "--keras"]) == 0
    return folder / "exported"


def tf1_answers(run, images, labels, cell):
    """The TF1 graph's probabilities of `images`, its bottom layer's outputs (h after every row) and loss on
    the first 100."""
    cfg, checkpoint = saved_run.open_saved_run(run[1].run_dir, {"cell": cell}, SETTINGS)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = np.concatenate([sess.run(model.probabilities, model.feed(images[k:k + 1000]))
                                        for k in range(0, len(images), 1000)])
        outputs, loss = sess.run([model.layers[0].outputs, model.cost], model.feed(images[:100], labels[:100]))
    return probabilities, outputs, loss


def test_the_weights_move_to_keras_gate_blocks_reordered_and_the_forget_bias_folded_in():
    n_input, n_hidden = 2, 1
    kernel = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], dtype=np.float32)  # rows x1, x2, h; i j f o
    kernel_x, kernel_h, bias = model.keras_weights(kernel, np.float32([1, 2, 3, 4]), n_input, 0.5)
    assert kernel_x.tolist() == [[1, 3, 2, 4], [5, 7, 6, 8]] and kernel_h.tolist() == [[9, 11, 10, 12]]
    assert bias.tolist() == [1, 3.5, 2, 4] and bias.dtype == np.float32
    assert kernel_h.shape == (n_hidden, 4 * n_hidden)
    back_kernel, back_bias = model.tf1_weights(kernel_x, kernel_h, bias, 0.5)
    assert back_kernel.tolist() == kernel.tolist() and back_bias.tolist() == [1, 2, 3, 4]
    assert back_bias.dtype == np.float32


@pytest.mark.slow
def test_keras_alone_gives_the_tf1_graphs_answers_on_every_test_image(converted, tiny_run, stacked_run,
                                                                     permuted_run, mnist, tmp_path):
    images, labels = mnist.test.images.reshape(-1, 28, 28), mnist.test.labels
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    cells = ("basic", "stacked-fast", "permuted")
    for cell in cells:
        (tmp_path / cell).mkdir()
    answers = keras_alone(KERAS_ALONE, tmp_path / "images.npy", tmp_path / "labels.npy",
                          *[path for cell in cells for path in (converted / cell / export.KERAS_NAME, tmp_path / cell)],
                          cwd=tmp_path)  # one Keras process for both models: its start-up is most of its time
    # A permuted run's model reads the images as its SavedModel does, in reading order, with its permutation inside.
    out, said = tmp_path / "permuted", answers.pop(str(tmp_path / "permuted"))
    assert said["layers"] == ["InputLayer", "Flatten", "Dense", "Reshape", "LSTM", "Dense", "Softmax"]
    cfg, checkpoint = permuted_run
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, model.feed(images[:1000]))
    np.testing.assert_allclose(np.load(out / "probabilities.npy")[:1000], probabilities, rtol=0, atol=1e-5)
    for cell in cells[:-1]:
        out, said = tmp_path / cell, answers[str(tmp_path / cell)]
        run = stacked_run if cell.startswith("stacked") else tiny_run
        assert said["layers"] == ["InputLayer", *["LSTM"] * run[0].num_layers, "Dense", "Softmax"]
        probabilities, outputs, loss = tf1_answers(run, images, labels, cell.split("-")[-1])
        keras_probabilities = np.load(out / "probabilities.npy")
        assert keras_probabilities.shape == (10000, 10)
        np.testing.assert_allclose(keras_probabilities, probabilities, rtol=0, atol=1e-5)
        accuracy = np.mean(np.argmax(keras_probabilities, axis=1) == np.argmax(labels, axis=1))
        assert accuracy == run[1].full_test_accuracy  # the run's "Full test set" line
        np.testing.assert_allclose(np.load(out / "outputs.npy"), outputs, rtol=0, atol=1e-5)
        assert said["loss"] == pytest.approx(float(loss), abs=1e-5)
        assert said["first_step_loss"] == pytest.approx(float(loss), abs=1e-5)


# Keras 3 on another backend (JAX, PyTorch): each model's probabilities of the images, into its folder.
ON_ANOTHER_BACKEND = """
import sys
import numpy as np
import keras
images = np.load(sys.argv[1])
for model_path, out in zip(sys.argv[2::2], sys.argv[3::2], strict=True):
    model = keras.saving.load_model(model_path)
    shaped = images.reshape((-1, *model.inputs[0].shape[1:]))
    np.save(out, keras.ops.convert_to_numpy(model.predict(shaped, batch_size=500, verbose=0)))
print(keras.backend.backend())
"""
# An interpreter with Keras 3, JAX and PyTorch (CI installs neither): e.g. a venv made with
# `pip install keras jax torch --index-url ...`; the test below skips without it.
BACKENDS_PYTHON = os.environ.get("LSTM_MNIST_KERAS_BACKENDS_PYTHON")


@pytest.mark.slow
@pytest.mark.skipif(not BACKENDS_PYTHON, reason="set LSTM_MNIST_KERAS_BACKENDS_PYTHON to a Python with keras, jax "
                                                "and torch to check the Keras file on those backends")
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_keras_file_gives_the_same_answers_on_jax_and_pytorch(backend, converted, tiny_run, stacked_run,
                                                                  permuted_run, mnist, tmp_path):
    images = mnist.test.images[:1000].reshape(-1, 28, 28)
    np.save(tmp_path / "images.npy", images)
    runs = {"basic": saved_run.open_saved_run(tiny_run[1].run_dir, {}, SETTINGS),
            "stacked-fast": saved_run.open_saved_run(stacked_run[1].run_dir, {"cell": "fast"}, SETTINGS),
            "permuted": permuted_run}
    environment = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([BACKENDS_PYTHON, "-c", ON_ANOTHER_BACKEND, tmp_path / "images.npy",
                             *[path for name in runs for path in (converted / name / export.KERAS_NAME,
                                                                   tmp_path / f"{name}.npy")]],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment)
    assert result.returncode == 0 and result.stdout.split()[-1] == backend, result.stderr
    for name, (cfg, checkpoint) in runs.items():
        sess, graph = predict.restored_session(cfg, checkpoint)
        with sess:
            probabilities = sess.run(graph.probabilities, graph.feed(images))
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), probabilities, rtol=0, atol=1e-5)

@pytest.fixture(scope="module")
def trained_in_keras(loaded_mnist, tmp_path_factory):
    """A Keras LSTM(8) + Dense trained a few steps in Keras alone, as a run folder of this project
    (export.py MODEL.keras RUN): (folder, the model's file, its probabilities on the first 1000 test
    images and on one digit's image file, that file, the refusals)."""
    folder = tmp_path_factory.mktemp("from_keras")
    mnist = loaded_mnist[0]
    images_ = mnist.test.images[:1000].reshape(-1, 28, 28)
    np.save(folder / "images.npy", images_)
    np.save(folder / "labels.npy", mnist.test.labels[:1000])
    digit_file = folder / "digit.png"
    from PIL import Image
    Image.fromarray((mnist.test.images[7] * 255).astype(np.uint8).reshape(28, 28)).save(digit_file)
    np.save(folder / "digit_pixels.npy", images.load_digit(digit_file).reshape(1, 28, 28))
    refusals = keras_alone(TRAINED_IN_KERAS, folder / "images.npy", folder / "labels.npy",
                           folder / "digit_pixels.npy", folder, cwd=folder, project=True)
    with pytest.MonkeyPatch.context() as patch:  # the way back with paths relative to where the command runs
        patch.chdir(folder)
        assert export.main(["trained.keras", "run", "--n_hidden=8"]) == 0
        assert export.main(["stacked.keras", "back/stacked", "--n_hidden=8", "--num_layers=2"]) == 0  # back/: new
    return (folder / "run", folder / "trained.keras", np.load(folder / "probabilities.npy"),
            np.load(folder / "digit.npy")[0], digit_file, refusals)


@pytest.mark.parametrize("cell", ["basic", "fast"])
def test_a_model_trained_in_keras_gives_its_answers_here(trained_in_keras, mnist, cell):
    run_dir, _, keras_probabilities, keras_digit, digit_file, _ = trained_in_keras
    cfg, checkpoint = saved_run.open_saved_run(str(run_dir), {"cell": cell}, SETTINGS)
    assert (cfg.n_hidden, os.path.basename(checkpoint)) == (8, "model.ckpt-0")
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, model.feed(mnist.test.images[:1000]))
    np.testing.assert_allclose(probabilities, keras_probabilities, rtol=0, atol=1e-5)
    [(digit, predicted)] = predict.predict(cfg, checkpoint, [str(digit_file)])
    np.testing.assert_allclose(predicted, keras_digit, rtol=0, atol=1e-5)
    assert digit == int(np.argmax(keras_digit))
    from PIL import Image
    reader = serve.Reader(cfg, checkpoint)
    try:
        np.testing.assert_allclose(reader.read(Image.open(digit_file))["steps"][-1], keras_digit, rtol=0, atol=2e-5)
    finally:
        reader.close()


def test_a_stack_trained_in_keras_gives_its_answers_here(trained_in_keras, mnist):
    cfg, checkpoint = saved_run.open_saved_run(str(trained_in_keras[0].parent / "back" / "stacked"), {}, SETTINGS)
    assert (cfg.num_layers, cfg.n_hidden) == (2, 8)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, model.feed(mnist.test.images[:1000]))
    np.testing.assert_allclose(probabilities, np.load(trained_in_keras[0].parent / "stacked.npy"), rtol=0, atol=1e-5)


def test_a_run_made_from_keras_exports_and_trains_on(trained_in_keras, tmp_path, capsys):
    run_dir = trained_in_keras[0]
    assert export.main([str(run_dir), str(tmp_path / "exported")]) == 0
    assert (tmp_path / "exported" / "saved_model.pb").is_file()
    import train_lstm_mnist
    assert train_lstm_mnist.main(["--resume=" + str(run_dir), "--training_iters=300", "--plots=False"]) == 0
    assert "Resuming" in capsys.readouterr().out
    assert os.path.basename(saved_run.open_saved_run(str(run_dir), {}, SETTINGS)[1]) == "model.ckpt-2"


def test_keras_models_of_another_shape_are_refused_saying_what_is_supported(trained_in_keras):
    refusals = trained_in_keras[-1]
    assert refusals.pop("trained") is None
    assert refusals["GRU"].startswith("its layers are GRU, Dense;")
    assert refusals["stacked"].startswith("its layers are LSTM, LSTM, Dense;")
    assert refusals["bidirectional"].startswith("its layers are Bidirectional, Dense;")
    assert refusals["relu"].startswith("its LSTM is not the tutorial's ({'activation': 'relu'})")
    assert refusals["16 units"].startswith("its LSTM has 16 units;")
    assert refusals.pop("stacked as 2 layers") is None and refusals.pop("stacked 2 for 3").startswith(
        "its layers are LSTM, LSTM, Dense; supported: Input((28, 28)) -> LSTM(8) -> LSTM(8) -> LSTM(8) -> Dense(10)")
    assert refusals.pop("stacked, top every step").startswith(
        "its LSTM is not the tutorial's ({'return_sequences': True})")
    for line in refusals.values():
        assert "supported: Input((28, 28)) -> LSTM(8) -> Dense(10) [-> Softmax]" in line


@pytest.mark.parametrize("problem", ["other units", "damaged", "missing", "out exists"])
def test_a_keras_model_the_bridge_cannot_take_is_one_line_and_leaves_nothing(trained_in_keras, tmp_path, capsys,
                                                                             problem):
    source, out = trained_in_keras[1], tmp_path / "run"
    arguments = {"other units": [str(source), str(out)],  # the settings say n_hidden = 128
                 "damaged": [str(tmp_path / "damaged.keras"), str(out), "--n_hidden=8"],
                 "missing": [str(tmp_path / "missing.keras"), str(out)],
                 "out exists": [str(source), str(tmp_path), "--n_hidden=8"]}[problem]
    (tmp_path / "damaged.keras").write_bytes(source.read_bytes()[:300])
    assert export.main(arguments) == 2
    said = capsys.readouterr().err.strip().splitlines()
    expected = {"other units": "its LSTM has 8 units", "damaged": "it is a damaged .keras file",
                "missing": "no such Keras model file", "out exists": "exists and is not an empty folder"}[problem]
    assert len(said) == 1 and expected in said[0], said
    assert os.listdir(tmp_path) == ["damaged.keras"]  # no run folder, nothing half-written


def test_a_full_disk_leaves_no_half_written_run_folder(trained_in_keras, small_disk, capsys):
    fill(small_disk)
    out = small_disk / "run"
    assert export.main([str(trained_in_keras[1]), str(out), "--n_hidden=8"]) == 1
    assert_one_line_error(capsys.readouterr().err, f"cannot write the run folder {out}:", "nothing was left there")
    assert os.listdir(small_disk) == ["filler"]


def test_ctrl_c_while_keras_writes_its_model_is_the_stop_and_leaves_nothing(tiny_run, tmp_path):
    out = tmp_path / "export"
    # As a terminal's Ctrl-C does: the signal goes to the export and to Keras's process alike.
    process = subprocess.Popen([sys.executable, "export.py", tiny_run[1].run_dir, str(out), "--keras"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=saved_run.ROOT,
                               process_group=0)
    try:
        handed_over = tmp_path / f"export.partial-{process.pid}" / f"{export.KERAS_NAME}.weights.npz"
        deadline = time.monotonic() + 120
        while not handed_over.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # a poll for the file Keras's process is started on, not a wait for readiness
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    stopped = f"Interrupted by SIGINT while exporting: nothing is left at {out}, the run is untouched"
    assert err.strip().splitlines()[-1] == stopped
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name,contents,words", [
    ("empty.keras", b"", "it is empty"),
    ("text.keras", b"a text, not a model", "it is not a .keras file"),
    ("cut.keras", "cut", "it is a damaged .keras file (its zip archive has no end"),
    ("old.keras", b"\x89HDF\r\n\x1a\n" + bytes(100), "it is a Keras 2 HDF5 file"),
    ("old.h5", b"\x89HDF\r\n\x1a\n" + bytes(100), "a Keras 2 HDF5 file; the way back takes a Keras 3 .keras file"),
    ("diverged.keras", None, "its weights are not all finite (NaN or infinity)"),
])
def test_a_file_that_is_no_keras_model_for_the_bridge_is_bad_input_in_one_line(trained_in_keras, tmp_path, capsys,
                                                                             name, contents, words):
    path = tmp_path / name
    if contents == "cut":
        path.write_bytes(trained_in_keras[1].read_bytes()[:2000])
    elif contents is None:
        path = trained_in_keras[1].parent / name
    else:
        path.write_bytes(contents)
    assert export.main([str(path), str(tmp_path / "out"), "--n_hidden=8"]) == 2
    assert_one_line_error(capsys.readouterr().err, words)
    assert not (tmp_path / "out").exists()


def test_the_same_out_written_by_another_process_meanwhile_is_theirs_and_one_line(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(errors.ConfigError, match="written meanwhile by another process"):
        with export.written_whole(str(out), "the run folder", "converting") as building:
            os.mkdir(building)
            (tmp_path / "out").mkdir()
            (out / "theirs").write_text("the other conversion's")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["theirs"]
