"""tutorial.ipynb through a real Jupyter kernel: every cell runs, the numbers are the script's, a cell runs
again safely, the stop button leaves a usable model, and the committed outputs are the current code's."""
import json
import os
import re

import nbformat
import numpy as np
import pytest
from helpers import ROOT, SETTINGS
from jupyter_client.utils import run_sync
from nbclient import NotebookClient

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, errors, notebook, tasks
from lstm_mnist.tf_setup import tf1

NOTEBOOK = os.path.join(ROOT, "tutorial.ipynb")
CELL_TIMEOUT_S = 300


def text_of(cell):
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output["output_type"] == "stream")


def tutorial_lines(cells):
    return [line for cell in cells for line in text_of(cell).splitlines()
            if line.startswith(("Iter ", "Testing Accuracy:"))]


def picture_cells(nb):
    return [cell for cell in nb.cells
            if any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]


def index_of(nb, words):
    return next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and words in cell.source)


def with_parameters(**values):
    """The notebook with a cell of `values` after the one tagged `parameters` (papermill's way)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (at,) = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    injected = nbformat.v4.new_code_cell("\n".join(f"{name} = {value!r}" for name, value in values.items()))
    nb.cells.insert(at + 1, injected)
    return nb


def client_for(nb):
    return NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": ROOT}})


def test_the_committed_outputs_are_the_current_codes(tiny_run):
    """The committed run's first Iter lines depend only on the first steps: the tiny run's must match."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    committed = [line for line in tutorial_lines(nb.cells) if line.startswith("Iter ")]
    ours = [line for line in tiny_run[2] if line.startswith("Iter ")]
    assert len(committed) == 99 and committed[:len(ours)] == ours
    assert any(line.startswith("Testing Accuracy:") for line in tutorial_lines(nb.cells))
    assert len(picture_cells(nb)) == 4  # curves, predictions, reading, gates


@pytest.fixture(scope="module")
def kernel(tiny_run):
    """One real kernel for the tests below, in order: the notebook run through at the tiny run's budget,
    then the stop button pressed in it (a second kernel would cost its start and TensorFlow's import
    again): (client, notebook)."""
    nb = with_parameters(training_iters=tiny_run[0].training_iters)
    client = client_for(nb)
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        yield client, nb


def run_new_cell(client, nb, source):
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1)
    return text_of(cell)


@pytest.mark.slow
def test_the_notebook_runs_in_a_kernel_as_the_script_runs(kernel, tiny_run):
    client, nb = kernel
    first = tutorial_lines(nb.cells)
    script_lines = [line for line in tiny_run[2] if line.startswith(("Iter ", "Testing Accuracy:"))]
    assert first == script_lines  # same seeds, threads and data order as the script

    assert len(picture_cells(nb)) == 4  # curves, predictions, reading, gates
    # the same weights, the same gates as the script's run found
    (gates_line,) = [line for line in tiny_run[2] if line.startswith("Gates: ")]
    assert gates_line in text_of(nb.cells[index_of(nb, "gates.gates_line")]).splitlines()

    # The data, graph, training and test cells again: a fresh graph and session, the same numbers.
    again = [index_of(nb, "read_data_sets"), index_of(nb, "graph = tf.Graph()"), index_of(nb, "fresh_session"),
             index_of(nb, "test_len = 128")]
    for index in again:
        client.execute_cell(nb.cells[index], index)
    assert tutorial_lines([nb.cells[i] for i in again]) == script_lines
    # The training cell alone, twice more: no error, a fresh session each time (the batches go on).
    for _ in range(2):
        client.execute_cell(nb.cells[again[2]], again[2])
        assert text_of(nb.cells[again[2]]).splitlines()[-1] == "Optimization Finished!"
    # the earlier session was closed, not leaked
    assert run_new_cell(client, nb, "print(len(notebook._open_sessions), sess._closed)") == "1 False\n"


def run_pressing_stop(client, nb, index, presses):
    """Run cell `index`, press the stop button `presses` times (at once) when it has logged its
    first step, and return what it printed and how it ended ("ok" or "error")."""
    stop_button = run_sync(client.km.interrupt_kernel)  # what Jupyter's stop button calls
    sent, printed, pressed = client.kc.execute(nb.cells[index].source), "", False
    while True:
        message = run_sync(client.kc.get_iopub_msg)(timeout=CELL_TIMEOUT_S)
        if message["parent_header"].get("msg_id") != sent:
            continue
        if message["msg_type"] == "stream":
            printed += message["content"]["text"]
        if "Iter " in printed and not pressed:  # training is under way
            for _ in range(presses):
                stop_button()
            pressed = True
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    reply = next(reply for reply in iter(lambda: run_sync(client.kc.get_shell_msg)(timeout=CELL_TIMEOUT_S), None)
                 if reply["parent_header"].get("msg_id") == sent)
    return printed, reply["content"]["status"]


@pytest.mark.slow
def test_the_stop_button_ends_training_after_a_step_and_the_model_stays_usable(kernel):
    client, nb = kernel
    run_new_cell(client, nb, "training_iters = 10_000_000")
    training = index_of(nb, "fresh_session")
    printed, status = run_pressing_stop(client, nb, training, presses=1)
    last = printed.splitlines()[-1]
    assert status == "ok" and re.fullmatch(r"Interrupted after Iter \d+ \(step \d+\): `sess` holds the model as "
                                           r"trained so far, and the cells below use it", last), last
    client.execute_cell(nb.cells[training + 1], training + 1)
    assert re.fullmatch(r"Testing Accuracy: [01]\.\d+\n", text_of(nb.cells[training + 1]))


@pytest.mark.slow
def test_a_second_press_within_a_step_interrupts_the_cell_and_the_kernel_stays(kernel):
    client, nb = kernel
    run_new_cell(client, nb, "training_iters = 10_000_000")
    # Two presses at once: where the second comes after the first was noted, it interrupts the cell (in a long
    # step both are one signal by the time Python sees them, and the cell ends after the step); either way the
    # kernel, with the notebook's state, stays.
    run_pressing_stop(client, nb, index_of(nb, "fresh_session"), presses=2)
    assert run_sync(client.km.is_alive)()
    assert run_new_cell(client, nb, "print(sess.run(accuracy, {x: testings[:10].reshape(-1, 28, 28), "
                                    "y: testlabels[:10]}) >= 0)") == "True\n"  # the state, the session too


@pytest.mark.slow
def test_a_diverged_loss_ends_the_training_cell_as_the_script_stops(kernel):
    client, nb = kernel
    run_new_cell(client, nb, "learning_rate = 1e38\ntraining_iters = 5000")
    for words in ("cfg = notebook.settings_of", "graph = tf.Graph()", "fresh_session"):
        client.execute_cell(nb.cells[index_of(nb, words)], index_of(nb, words))
    lines = text_of(nb.cells[index_of(nb, "fresh_session")]).splitlines()
    assert lines[-1] == ("Training diverged: minibatch loss is nan at Iter 1000 (step 10); lower learning_rate "
                         "(now 1e+38) and run this cell again")
    assert len([line for line in lines if line.startswith("Iter ")]) == 1  # the first nan is the last step


@pytest.mark.slow
def test_the_notebook_starts_from_a_trained_run_and_answers_as_it(kernel, tiny_run, mnist):
    client, nb = kernel
    # One step at a rate too small to move the weights: the answers are the run's
    run_new_cell(client, nb, f"start_from = {tiny_run[1].run_dir!r}\ntraining_iters = 101\nlearning_rate = 1e-12")
    for words in ("cfg = notebook.settings_of", "graph = tf.Graph()", "fresh_session"):
        client.execute_cell(nb.cells[index_of(nb, words)], index_of(nb, words))
    checkpoint = checkpoints.latest_checkpoint(tiny_run[1].run_dir)
    assert text_of(nb.cells[index_of(nb, "fresh_session")]).splitlines() == [f"Starting from {checkpoint}",
                                                                            "Optimization Finished!"]
    logits = json.loads(run_new_cell(client, nb, "import json\nprint(json.dumps(sess.run(pred, "
                                                  "{x: testings[:100].reshape(-1, 28, 28)}).tolist()))\n"
                                                  "start_from = ''"))
    sess, model = predict.restored_session(tiny_run[0], checkpoint)
    with sess:
        np.testing.assert_allclose(logits, sess.run(model.pred, model.feed(mnist.test.images[:100])), rtol=0,
                                   atol=1e-5)


@pytest.mark.slow
def test_a_stacked_permuted_task_reads_the_pixels_in_the_scripts_order(kernel, mnist):
    # Last: it leaves the kernel with a 784-step graph. The settings, their check and the graph's cells again, with
    # two layers and a setting the parameters cell did not have (permutation_seed).
    client, nb = kernel
    run_new_cell(client, nb, 'task = "permuted"\nn_hidden = 8\nnum_layers = 2\npermutation_seed = 3')
    for words in ("cfg = notebook.settings_of", "graph = tf.Graph()"):
        client.execute_cell(nb.cells[index_of(nb, words)], index_of(nb, words))
    printed = run_new_cell(client, nb, "import json\n"
                                       "first = mnist.test.images[:2].reshape(-1, n_steps, n_input)\n"
                                       "with tf1.Session(graph=graph) as s:\n"
                                       "    s.run(init)\n"
                                       "    read, logits = s.run([sequence, pred], {x: first})\n"
                                       "print(json.dumps([read.tolist(), logits.tolist()]))")
    read, logits = json.loads(printed)
    cfg = SETTINGS.make({"task": "permuted", "n_hidden": 8, "num_layers": 2, "permutation_seed": 3})
    np.testing.assert_allclose(read, mnist.test.images[:2, tasks.pixel_order(cfg), None], rtol=0, atol=1e-6)
    model = script.build_graph(cfg)  # the same seed: the same initial weights, so the same answers
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        np.testing.assert_allclose(logits, sess.run(model.pred, model.feed(mnist.test.images[:2])), rtol=0, atol=1e-5)


def test_every_setting_given_to_the_notebook_is_used_or_refused_in_one_line():
    cfg = notebook.settings_of({"clip_norm": 1.0, "num_layers": 2, "n_steps": 28, "plots": notebook}, SETTINGS)
    assert (cfg.clip_norm, cfg.num_layers) == (1.0, 2)  # n_steps follows from the task; the module plots is no setting
    with pytest.raises(errors.ConfigError, match="^the notebook does not use cell, eval_every: .* remove them from the "
                                                 "parameters cell, or run python train_lstm_mnist.py --cell=...$"):
        notebook.settings_of({"cell": "fast", "eval_every": 10}, SETTINGS)


def test_a_run_to_start_from_must_have_the_notebooks_shape_said_in_one_line(stacked_run):
    folder = stacked_run[1].run_dir
    with pytest.raises(errors.ConfigError, match=f"^start_from = '{folder}' was trained with n_hidden = 16, "
                                                 "num_layers = 2: set them so in the parameters cell$"):
        notebook.settings_of({"start_from": folder}, SETTINGS)
    cfg = notebook.settings_of({"start_from": folder, "n_hidden": 16, "num_layers": 2}, SETTINGS)
    assert (cfg.n_hidden, cfg.num_layers) == (16, 2)
