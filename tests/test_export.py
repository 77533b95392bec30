"""export.py: a run as a SavedModel that TensorFlow 2 loads alone, and as TFLite."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import SETTINGS, assert_one_line_error, fill, run_main

import export
import predict
from lstm_mnist import gates, saved_run

# Run in a fresh process: TensorFlow alone, eager, none of this project's modules or settings.
LOAD_ALONE = """
import json, sys
import numpy as np
import tensorflow as tf
images = np.load(sys.argv[1])
answers = {}
for name, path in json.loads(sys.argv[2]).items():
    if path.endswith(".tflite"):  # converted from a TF1 SavedModel: the graph's tensor names, no signature runner
        interpreter = tf.lite.Interpreter(model_path=path)
        (given,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(given["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        (out,) = [d for d in interpreter.get_output_details() if d["name"] == "probabilities"]
        answers[name] = interpreter.get_tensor(out["index"]).tolist()
    else:
        signatures = tf.saved_model.load(path).signatures
        answers[name] = signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy().tolist()
        reading = signatures["reading"](images=tf.constant(images))["step_probabilities"]
        answers[name + "/reading"] = reading.numpy().tolist()
        row_by_row = signatures["gates"](images=tf.constant(images[:5]))
        answers[name + "/gates"] = {key: value.numpy().tolist() for key, value in row_by_row.items()}
        try:  # flat images, as data.py gives them: the signature's shape refuses them
            signatures["serving_default"](images=tf.zeros([2, 784]))
        except tf.errors.InvalidArgumentError as e:
            answers[name + "/flat"] = e.message
        nan = signatures["serving_default"](images=tf.fill([1, 28, 28], float("nan")))
        answers[name + "/nan"] = [nan["probabilities"].numpy().tolist(), nan["classes"].numpy().tolist()]
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def exported(tiny_run, stacked_run, tmp_path_factory):
    """The tiny run exported as it is (basic cell) and with the fast cell (and TFLite), and the stacked run."""
    folder = tmp_path_factory.mktemp("export")
    run_dir = tiny_run[1].run_dir
    assert export.main([run_dir, str(folder / "basic")]) == 0
    assert export.main([run_dir, str(folder / "fast"), "--cell=fast", "--tflite"]) == 0
    assert export.main([stacked_run[1].run_dir, str(folder / "stacked")]) == 0
    return folder


def tensorflow_alone():
    """The environment of a plain TensorFlow 2 user: not this process's legacy-Keras switch."""
    return {**{name: value for name, value in os.environ.items() if name != "TF_USE_LEGACY_KERAS"},
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def answers_of_the_run(run, images, **overrides):
    """The training graph's probabilities, the answer after every row, and the gates of the first 5 images,
    by the gates signature's names."""
    cfg, checkpoint = saved_run.open_saved_run(run[1].run_dir, overrides, SETTINGS)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        every_layer = gates.gates_of(sess, model.gates, model.feed(images[:5]))
        return (*sess.run([model.probabilities, model.step_probabilities], model.feed(images)),
                {export.gate_output_name(name, layer): values for layer, layer_gates in enumerate(every_layer, start=1)
                 for name, values in layer_gates.items()})


@pytest.mark.slow
def test_tensorflow_alone_gives_predicts_answers(exported, tiny_run, stacked_run, mnist, tmp_path):
    images = mnist.test.images[:100].reshape(-1, 28, 28)
    np.save(tmp_path / "images.npy", images)
    paths = {"basic": str(exported / "basic"), "fast": str(exported / "fast"),
             "tflite": str(exported / "fast" / export.TFLITE_NAME), "stacked": str(exported / "stacked")}
    result = subprocess.run([sys.executable, "-c", LOAD_ALONE, str(tmp_path / "images.npy"), json.dumps(paths)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=tensorflow_alone())
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.splitlines()[-1])
    for cell in ("basic", "fast", "stacked"):  # what docs/export.md says of bad input
        assert "Shape of tensor images [2,784] is not compatible with expected shape [?,28,28]" in \
            answers.pop(cell + "/flat")
        probabilities, classes = answers.pop(cell + "/nan")
        assert np.all(np.isnan(probabilities)) and classes == [0]
    exported_gates = {cell: answers.pop(cell + "/gates") for cell in ("basic", "fast", "stacked")}
    answers = {name: np.array(value) for name, value in answers.items()}
    assert {"write", "write_layer2", "cell_layer2", "output_layer2"} <= set(exported_gates["stacked"])
    for cell, run in (("basic", tiny_run), ("fast", tiny_run), ("stacked", stacked_run)):
        probabilities, step_probabilities, row_by_row = answers_of_the_run(run, images, **{"cell": cell} if
                                                                           cell != "stacked" else {})
        np.testing.assert_allclose(answers[cell], probabilities, rtol=0, atol=1e-6)
        np.testing.assert_allclose(answers[cell + "/reading"], step_probabilities, rtol=0, atol=1e-6)
        assert set(exported_gates[cell]) == set(row_by_row)
        for name, values in row_by_row.items():
            assert values.shape == (5, 28, run[0].n_hidden)
            np.testing.assert_allclose(exported_gates[cell][name], values, rtol=0, atol=1e-6, err_msg=f"{cell}: {name}")
    np.testing.assert_allclose(answers["tflite"], answers["fast"], rtol=0, atol=1e-5)
    assert answers["basic"].shape == (100, 10) and answers["basic/reading"].shape == (100, 28, 10)


def test_saved_model_cli_lists_the_signatures(exported):
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli is not on PATH (it comes with the tensorflow package)")
    result = subprocess.run([cli, "show", "--dir", str(exported / "basic"), "--all"], capture_output=True, text=True,
                            timeout=300, env=tensorflow_alone())
    assert result.returncode == 0, result.stderr
    for words in ("signature_def['serving_default']", "signature_def['reading']", "signature_def['gates']",
                  "outputs['keep']", "inputs['images']",
                  "shape: (-1, 28, 28)", "outputs['probabilities']", "outputs['classes']", "dtype: DT_INT64",
                  "outputs['step_probabilities']", "shape: (-1, 28, 10)"):
        assert words in result.stdout, words


def test_the_default_out_is_inside_the_run_folder(tiny_run, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[1].run_dir, run_dir)
    code, out, err = run_main(capsys, run_dir, main=export.main)
    assert code == 0 and err == ""
    assert os.path.isfile(os.path.join(run_dir, export.EXPORT_NAME, "saved_model.pb"))
    assert out.splitlines()[0].endswith(f"to {os.path.join(run_dir, export.EXPORT_NAME)}")


def test_a_folder_without_a_complete_checkpoint_is_one_line(tmp_path, capsys):
    code, _, err = run_main(capsys, str(tmp_path), main=export.main)
    assert code == 2
    assert_one_line_error(err, "no usable checkpoint in this folder")


def test_an_out_that_holds_anything_is_never_overwritten(tiny_run, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    code, _, err = run_main(capsys, tiny_run[1].run_dir, str(tmp_path / "mine"), main=export.main)
    assert code == 2
    assert_one_line_error(err, f"{tmp_path / 'mine'}: exists and is not an empty folder")
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_a_full_disk_leaves_no_half_written_export(tiny_run, small_disk, capsys):
    fill(small_disk, leave=64 * 1024)  # room for a start, not for the variables
    out = small_disk / "export"
    code, _, err = run_main(capsys, tiny_run[1].run_dir, str(out), main=export.main)
    assert code == 1
    assert_one_line_error(err, f"cannot write the export {out}:", "nothing was left there")
    assert sorted(os.listdir(small_disk)) == ["filler"]
