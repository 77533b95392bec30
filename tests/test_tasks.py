"""The tasks: how an image becomes a sequence (rows, pixels, permuted), read the same by every entry point."""
import numpy as np
import pytest
from helpers import SETTINGS, assert_one_line_error, run_main, tiny_config, write_dataset
from PIL import Image

import export
import predict
import serve
import train_lstm_mnist as script
from lstm_mnist import saved_run, tasks
from lstm_mnist.tf_setup import tf1


def test_the_permutation_is_fixed_by_its_seed():
    # Pinned: a permuted run's checkpoint means nothing under another order.
    assert tasks.permutation(1)[:6].tolist() == [649, 265, 111, 301, 339, 559]
    assert sorted(tasks.permutation(1)) == list(range(784))
    assert tasks.permutation(2)[:3].tolist() == [193, 747, 583]


@pytest.mark.parametrize("task", ["rows", "pixels", "permuted"])
def test_each_task_reads_its_sequence(mnist, task):
    cfg = SETTINGS.make({"task": task, "n_hidden": 8, "cell": "fast"})
    model = script.build_graph(cfg)
    images = mnist.test.images[:3]
    with tf1.Session(graph=model.graph) as sess:
        sess.run(model.init)
        read = sess.run(model.graph.get_tensor_by_name("permuted:0") if task == "permuted" else model.x,
                        model.feed(images))
    expected = {"rows": images.reshape(3, 28, 28), "pixels": images.reshape(3, 784, 1),
                "permuted": images[:, tasks.permutation(1)].reshape(3, 784, 1)}[task]
    assert (cfg.n_steps, cfg.n_input) == expected.shape[1:]
    np.testing.assert_array_equal(read, expected)


@pytest.mark.parametrize("arguments,words", [
    (["--task=pixel"], ['task = pixel is not allowed', '(did you mean "pixels"?)']),
    (["--task=pixels", "--n_steps=28"], ["n_steps * n_input = 28 * 28", "784 * 1 for the pixels and permuted"]),
    (["--permutation_seed=5"], ['permutation_seed = 5 is not allowed', 'unless task = "permuted"']),
    (["--clip_norm=-1"], ["clip_norm = -1.0 is not allowed"]),
])
def test_a_bad_task_setting_is_one_line_and_writes_nothing(tmp_path, capsys, arguments, words):
    code, _, err = run_main(capsys, *arguments, f"--out_dir={tmp_path / 'runs'}", main=script.main)
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "runs").exists()


def test_clipping_bounds_the_step_adam_takes(mnist):
    """Adam's first step is about learning_rate per weight whatever the gradient's scale; clipped to a
    norm far below Adam's epsilon, the step all but vanishes. Off (0), the graph is the tutorial's."""
    batch = mnist.train.next_batch(100)

    def first_step(clip_norm):
        model = script.build_graph(SETTINGS.make({"n_hidden": 8, "clip_norm": clip_norm}))
        with tf1.Session(graph=model.graph) as sess:
            sess.run(model.init)
            before = sess.run(model.weights["out"])
            sess.run(model.optimizer, model.feed(*batch))
            return np.abs(sess.run(model.weights["out"]) - before).max(), model.graph

    moved, graph = first_step(0.0)
    assert moved == pytest.approx(0.001, rel=0.01)
    assert not [op for op in graph.get_operations() if "clip_by_global_norm" in op.name]
    assert first_step(1e-12)[0] < 1e-5


def test_a_permuted_run_resumes_identically_and_every_entry_point_reads_its_order(tmp_path, capsys):
    # A small data set of its own (1,000 training, 200 validation and 300 test images): at 784 steps,
    # scoring MNIST's 15,000 validation and test images at each of four runs would take most of a minute.
    write_dataset(str(tmp_path), n_train=1200, n_test=300)

    def train(iters, resume=None):
        cfg = tiny_config(tmp_path, task="permuted", permutation_seed=7, n_hidden=8, eval_every=2,
                          checkpoint_every=2, training_iters=iters, learning_rate=0.01, data_dir=str(tmp_path),
                          validation_size=200)
        results = script.train(cfg, resume=resume)
        return results, [line for line in capsys.readouterr().out.splitlines()
                         if line.startswith(("Iter ", "Validation", "Testing", "Full test set"))]

    first, _ = train(300)
    resumed, resumed_lines = train(500, resume=first.run_dir)
    straight, straight_lines = train(500)
    assert resumed_lines == [line for line in straight_lines if "at Iter 200" not in line]
    run_dir = resumed.run_dir
    # predict.py rebuilds the run's graph, its permutation with it: the run's own figures
    cfg, checkpoint = saved_run.open_saved_run(run_dir, {}, SETTINGS)
    assert (cfg.task, cfg.permutation_seed, cfg.n_steps) == ("permuted", 7, 784)
    assert predict.score(cfg, checkpoint).accuracy == straight.full_test_accuracy
    # the export carries the permutation: a TF1 loader of the SavedModel alone gives predict's answers
    out = tmp_path / "export"
    export.export(cfg, checkpoint, str(out))
    images = script.load_mnist(cfg).test.images[:50].reshape(-1, 784, 1)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        expected = sess.run(model.probabilities, model.feed(images))
    with tf1.Session(graph=tf1.Graph()) as sess:
        meta = tf1.saved_model.loader.load(sess, ["serve"], str(out))
        signature = meta.signature_def["serving_default"]
        got = sess.run(signature.outputs["probabilities"].name, {signature.inputs["images"].name: images})
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # serve.py reads a drawing through the run's graph, its permutation with it: after the last pixel, the
    # SavedModel's answer for the pixels it read
    reader = serve.Reader(cfg, checkpoint)
    try:
        order = reader.sess.run(reader.model.graph.get_tensor_by_name("permutation:0"))
        served = reader.read(Image.fromarray(np.uint8(np.rint(images[0].reshape(28, 28) * 255))))
    finally:
        reader.close()
    np.testing.assert_array_equal(order, tasks.permutation(7))
    with tf1.Session(graph=tf1.Graph()) as sess:
        meta = tf1.saved_model.loader.load(sess, ["serve"], str(out))
        signature = meta.signature_def["serving_default"]
        pixels = np.array(served["image"], dtype=np.float32).reshape(1, 784, 1)
        got = sess.run(signature.outputs["probabilities"].name, {signature.inputs["images"].name: pixels})
    assert np.array(served["steps"]).shape == (28, 10)  # a frame every 28 pixels
    np.testing.assert_allclose(served["steps"][-1], got[0], rtol=0, atol=1e-3)
    # another task, or another order, is not this run's
    capsys.readouterr()  # the lines above (this data set is not MNIST, say its warnings)
    for override in ("--task=pixels", "--permutation_seed=8"):
        code, _, err = run_main(capsys, run_dir, override, main=predict.main)
        assert code == 2
        assert_one_line_error(err, "differs from the saved run's")
