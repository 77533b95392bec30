"""The PNGs a run leaves."""
import os
import signal

import numpy as np
import pytest
from helpers import SCRIPT, interrupt_after, start, tiny_config
from PIL import Image

import train_lstm_mnist as script
from lstm_mnist import plots


@pytest.mark.parametrize("name", ["curves.png", "predictions.png", "confusion.png", "reading.png"])
def test_plots_are_real_pictures(tiny_run, name):
    _, metrics, _ = tiny_run
    with Image.open(os.path.join(metrics.run_dir, name)) as image:
        assert image.format == "PNG" and min(image.size) > 200
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # not a blank canvas


def test_montage_puts_each_image_at_its_offset_with_blank_gaps():
    images = np.arange(5 * 28 * 28, dtype=np.float64).reshape(5, 28, 28)
    canvas, offsets = plots.montage(images, columns=3, gap=4)
    assert canvas.shape == (2 * 28 + 4, 3 * 28 + 2 * 4) and offsets[4] == (32, 32)
    for image, (top, left) in zip(images, offsets, strict=True):
        np.testing.assert_array_equal(canvas[top:top + 28, left:left + 28], image)
    assert np.isnan(canvas[28:32]).all() and np.isnan(canvas[32:, 64:]).all()  # the gap row, the empty tile


@pytest.mark.slow
def test_ctrl_c_while_writing_plots_says_what_is_saved(tmp_path):
    process = start(SCRIPT, "--training_iters=1500", f"--out_dir={tmp_path}")
    lines, err = interrupt_after(process, signal.SIGINT, lambda lines: lines[-1].startswith("Steady state:"))
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert process.returncode == 130
    assert err == f"Interrupted by SIGINT while writing plots: the model, metrics and events are saved in {run_dir}\n"


def test_a_full_disk_at_the_plots_is_a_warning_and_the_run_is_kept(mnist, tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):  # filling a disk exactly between training and the plots is not practical
        raise OSError(28, "No space left on device")
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", no_space)
    results = script.train(tiny_config(tmp_path, training_iters=1500, plots=True), mnist)
    out, err = capsys.readouterr()
    assert err == (f"warning: could not write the plots in {results.run_dir} (No space left on device); "
                   f"the model, metrics and events are saved\n")
    assert out.splitlines()[-1] == f"Run folder: {results.run_dir}"
    assert not [name for name in os.listdir(results.run_dir) if name.endswith((".png", ".tmp"))]


def test_the_gates_picture_of_a_pixel_task_speaks_of_pixels_and_names_its_layer():
    rng = np.random.RandomState(0)
    digit_gates = {name: rng.rand(1, 784, 4) for name in ("write", "keep", "read", "cell")}
    fig = plots.gates_figure(np.zeros((1, 784)), digit_gates, rng.rand(3, 3, 4), [7], layer=2, num_layers=2)
    assert fig._suptitle.get_text() == ("The gates as the LSTM (layer 2 of 2) reads: what it writes to its cell, "
                                        "keeps and reads, pixel by pixel")
    assert fig.axes[-1].get_xlabel() == "pixel read"
