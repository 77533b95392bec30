"""What a run leaves behind: config, metrics, TensorBoard events, checkpoints, plots;
and what can be done with it: restore, resume, eval-only, predict."""
import csv
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, fresh_copy, run_main, tiny_config
from PIL import Image

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, plots, run_folder, scoring
from lstm_mnist.tf_setup import tf, tf1


def test_run_folder_is_named_by_time_and_printed_last(tiny_run):
    cfg, metrics, lines = tiny_run
    assert re.fullmatch(r"\d{8}-\d{6}", os.path.basename(metrics["run_dir"]))
    assert lines[-1] == f"Run folder: {metrics['run_dir']}"


def test_second_run_in_the_same_second_gets_its_own_folder(tmp_path):
    first, second = run_folder.create_run_dir(str(tmp_path)), run_folder.create_run_dir(str(tmp_path))
    assert first != second and os.path.isdir(first) and os.path.isdir(second)


def test_config_json_round_trips(tiny_run):
    cfg, metrics, _ = tiny_run
    with open(os.path.join(metrics["run_dir"], "config.json")) as f:
        record = json.load(f)
    assert record["config"] == {**vars(cfg), "data_dir": os.path.join("data", "mnist")}
    assert record["versions"]["tensorflow"] == tf.__version__
    assert run_folder.saved_settings(metrics["run_dir"]) == vars(cfg)


def test_metrics_csv_rows_match_the_log(tiny_run):
    cfg, metrics, lines = tiny_run
    with open(os.path.join(metrics["run_dir"], "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    iter_lines = [line for line in lines if line.startswith("Iter ")]
    assert [f"Iter {r['examples']}, Minibatch Loss= {r['minibatch_loss']}, Training Accuracy= "
            f"{r['minibatch_accuracy']}" for r in rows] == iter_lines
    validation = [line for line in lines if line.startswith("Validation Accuracy= ")]
    assert [f"Validation Accuracy= {r['validation_accuracy']} (5000 images) at Iter {r['examples']}"
            for r in rows] == validation
    assert [r["step"] for r in rows] == ["10", "20"]


def test_event_file_holds_the_scalars_and_graph(tiny_run):
    _, metrics, _ = tiny_run
    (events_file,) = glob.glob(os.path.join(metrics["run_dir"], "events.out.tfevents.*"))
    tags, has_graph = {}, False
    for event in tf1.train.summary_iterator(events_file):
        has_graph |= bool(event.graph_def)
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert has_graph
    assert [step for step, _ in tags["minibatch/loss"]] == [1000, 2000]
    assert set(tags) == {"minibatch/loss", "minibatch/accuracy", "validation/accuracy"}


@pytest.mark.parametrize("name", ["curves.png", "predictions.png", "confusion.png", "reading.png"])
def test_plots_are_real_pictures(tiny_run, name):
    _, metrics, _ = tiny_run
    with Image.open(os.path.join(metrics["run_dir"], name)) as image:
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


def test_the_time_line_gives_every_phase_of_the_run_in_order(tiny_run):
    _, metrics, lines = tiny_run
    phases = metrics["phase_seconds"]
    assert [name for name in phases if name != "start-up"] == ["data", "graph", "session", "training", "scoring",
                                                                "plots"]
    assert all(seconds >= 0 for seconds in phases.values())
    assert phases["training"] == metrics["train_seconds"]
    assert lines[-2] == "Time: {:.1f} s so far: {}".format(
        sum(phases.values()), ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))


def test_start_up_counts_from_the_start_of_the_process():
    code = "import time; time.sleep(1.5); import phases; print(phases.seconds_since_process_start())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert 1.45 <= float(result.stdout) < 30, result.stderr  # /proc counts in hundredths


def test_checkpoints_are_kept_as_configured(tiny_run):
    cfg, metrics, _ = tiny_run
    index_files = sorted(glob.glob(os.path.join(metrics["run_dir"], "model.ckpt-*.index")))
    assert [int(re.search(r"-(\d+)\.index$", f).group(1)) for f in index_files] == [10, 20, 29]


def test_restore_gives_the_predictions_of_the_saved_model(tiny_run, mnist):
    cfg, metrics, _ = tiny_run
    checkpoint, _ = checkpoints.find_checkpoint(metrics["run_dir"])
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        score = scoring.evaluate(sess, model, mnist.test, cfg)
    assert np.array_equal(score.predicted, metrics["predicted"])
    assert score.accuracy == metrics["full_test_accuracy"]


def test_predict_scores_the_run_as_training_did(tiny_run, capsys):
    _, metrics, lines = tiny_run
    assert predict.main([metrics["run_dir"]]) == 0
    out = capsys.readouterr().out.splitlines()
    testing = [line for line in lines if line.startswith(("Testing Accuracy:", "Full test set:", "Reading:"))]
    assert out[1:] == testing and out[0] == f"Model: {os.path.join(metrics['run_dir'], 'model.ckpt-29')}"


def test_a_moved_run_folder_still_resumes_and_scores(tiny_run, tmp_path, capsys):
    _, metrics, lines = tiny_run
    moved = str(tmp_path / "moved")
    shutil.copytree(metrics["run_dir"], moved)
    assert predict.main([moved]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Model: {os.path.join(moved, 'model.ckpt-29')}"
    assert out[1:] == [line for line in lines if line.startswith(("Testing Accuracy:", "Full test set:", "Reading:"))]


def test_resume_continues_exactly_like_an_uninterrupted_run(loaded_mnist, tmp_path, capsys):
    first = script.train(tiny_config(tmp_path, training_iters=2000, eval_every=10), fresh_copy(loaded_mnist))
    capsys.readouterr()
    resumed = script.train(tiny_config(tmp_path, training_iters=4000, eval_every=10), fresh_copy(loaded_mnist),
                           resume=first["run_dir"])
    resumed_lines = capsys.readouterr().out.splitlines()
    straight = script.train(tiny_config(tmp_path, training_iters=4000, eval_every=10), fresh_copy(loaded_mnist))
    straight_lines = capsys.readouterr().out.splitlines()

    def progress(lines):
        return [line for line in lines if line.startswith(("Iter ", "Validation", "Testing"))]
    assert resumed_lines[4] == f"Resuming {first['run_dir']} after Iter 1900 (step 19)"
    before_resume = [line for line in straight_lines if "Iter 1000" in line]  # the Iter and Validation lines
    assert len(before_resume) == 2
    assert progress(resumed_lines) == [line for line in progress(straight_lines) if line not in before_resume]
    assert resumed["steps"] == straight["steps"] == 39
    with open(os.path.join(first["run_dir"], "metrics.csv"), newline="") as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["10", "20", "30"]


def test_resume_takes_the_saved_settings_with_overrides(tiny_run):
    cfg, metrics, _ = tiny_run
    resumed, checkpoint = run_folder.open_saved_run(metrics["run_dir"], {"training_iters": 4000})
    assert checkpoint == os.path.join(metrics["run_dir"], "model.ckpt-29")
    assert resumed.eval_every == 10 and resumed.training_iters == 4000 and resumed.out_dir == cfg.out_dir


def write_digit_png(path, image, size=84):
    """A 28x28 MNIST image as a larger, dark-on-light RGB PNG, as a user might draw it."""
    pixels = (255 - image.reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC).convert("RGB").save(path)


def test_predict_reads_a_users_png(tiny_run, mnist, tmp_path, capsys):
    cfg, metrics, _ = tiny_run
    checkpoint, _ = checkpoints.find_checkpoint(metrics["run_dir"])
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, {model.x: mnist.test.images[:200].reshape(-1, 28, 28)})
    true = np.argmax(mnist.test.labels[:200], axis=1)
    confidence = np.where(np.argmax(probabilities, axis=1) == true, probabilities.max(axis=1), 0)
    index = int(np.argmax(confidence))  # the digit this tiny model is surest of, and right about
    write_digit_png(tmp_path / "digit.png", mnist.test.images[index])

    assert predict.main([metrics["run_dir"], str(tmp_path / "digit.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Predicted digit: {true[index]}"
    shown = [float(p.split("=")[1]) for p in out[1].removeprefix("Probabilities: ").split()]
    assert len(shown) == 10 and abs(sum(shown) - 1) < 1e-3 and np.argmax(shown) == true[index]


def test_load_digit_inverts_dark_on_light_only(tmp_path, mnist):
    image = mnist.test.images[0]
    write_digit_png(tmp_path / "paper.png", image, size=28)
    Image.fromarray((image.reshape(28, 28) * 255).astype(np.uint8)).save(tmp_path / "mnist.png")
    paper, screen = scoring.load_digit(str(tmp_path / "paper.png")), scoring.load_digit(str(tmp_path / "mnist.png"))
    assert np.abs(paper - image).max() < 0.02 and np.abs(screen - image).max() < 0.02


@pytest.mark.parametrize("pen", [0, 255], ids=["dark-pen", "light-pen"])
def test_a_drawing_on_a_transparent_background_reads_like_the_digit(tmp_path, mnist, pen):
    image = mnist.test.images[0].reshape(28, 28)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = pen
    rgba[..., 3] = np.rint(image * 255)  # the stroke is in the alpha channel alone
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawing.png")
    assert np.abs(scoring.load_digit(str(tmp_path / "drawing.png")) - image.reshape(1, 784)).max() < 0.02


def png_header_only(path, width, height):
    """A PNG that declares a size without holding its pixels, as a decompression bomb does."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_a_huge_image_is_one_line(tiny_run, tmp_path, capsys):
    png_header_only(tmp_path / "huge.png", 20000, 20000)
    code, out, err = run_main(capsys, tiny_run[1]["run_dir"], str(tmp_path / "huge.png"), main=predict.main)
    assert code == 2 and out == ""
    assert_one_line_error(err, "huge.png: too large to read safely", "give a smaller image")


def test_a_blank_image_is_predicted_with_a_warning(tiny_run, tmp_path, capsys):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    code, out, err = run_main(capsys, tiny_run[1]["run_dir"], str(tmp_path / "blank.png"), main=predict.main)
    assert code == 0 and out.startswith("Predicted digit: ")
    assert err == (f"warning: {tmp_path / 'blank.png'}: no digit in it (the image is blank); "
                   f"the prediction means nothing\n")
