"""predict.py: a saved model scored, or the digit in an image classified."""
import json
import os
import signal

import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_one_line_error,
    interrupt_after,
    png_header_only,
    run_main,
    start,
    tiny_checkpoint,
    write_digit_png,
)
from PIL import Image

import predict
from lstm_mnist import checkpoints


def test_predict_scores_the_run_as_training_did(tiny_run, capsys):
    _, metrics, lines = tiny_run
    assert predict.main([metrics.run_dir]) == 0
    out = capsys.readouterr().out.splitlines()
    testing = [line for line in lines if line.startswith(("Testing Accuracy:", "Full test set:", "Reading:"))]
    assert out[1:] == testing and out[0] == f"Model: {tiny_checkpoint(tiny_run)}"


def test_predict_reads_a_users_png(tiny_run, mnist, tmp_path, capsys):
    cfg, metrics, _ = tiny_run
    checkpoint, _ = checkpoints.find_checkpoint(metrics.run_dir)
    sess, model = predict.restored_session(cfg, checkpoint)
    with sess:
        probabilities = sess.run(model.probabilities, {model.x: mnist.test.images[:200].reshape(-1, 28, 28)})
    true = np.argmax(mnist.test.labels[:200], axis=1)
    confidence = np.where(np.argmax(probabilities, axis=1) == true, probabilities.max(axis=1), 0)
    index = int(np.argmax(confidence))  # the digit this tiny model is surest of, and right about
    write_digit_png(tmp_path / "digit.png", mnist.test.images[index])

    assert predict.main([metrics.run_dir, str(tmp_path / "digit.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Predicted digit: {true[index]}"
    shown = [float(p.split("=")[1]) for p in out[1].removeprefix("Probabilities: ").split()]
    assert len(shown) == 10 and abs(sum(shown) - 1) < 1e-3 and np.argmax(shown) == true[index]


def test_a_huge_image_is_one_line(tiny_run, tmp_path, capsys):
    png_header_only(tmp_path / "huge.png", 20000, 20000)
    code, out, err = run_main(capsys, tiny_run[1].run_dir, str(tmp_path / "huge.png"), main=predict.main)
    assert code == 2 and out == ""
    assert_one_line_error(err, "huge.png: too large to read safely", "give a smaller image")


def test_a_blank_image_is_predicted_with_a_warning(tiny_run, tmp_path, capsys):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    code, out, err = run_main(capsys, tiny_run[1].run_dir, str(tmp_path / "blank.png"), main=predict.main)
    assert code == 0 and out.startswith("Predicted digit: ")
    assert err == (f"warning: {tmp_path / 'blank.png'}: no digit in it (the image is blank); "
                   f"the prediction means nothing\n")


@pytest.mark.slow
def test_ctrl_c_while_predict_scores(tiny_run):
    process = start(os.path.join(ROOT, "predict.py"), tiny_run[1].run_dir)
    lines, err = interrupt_after(process, signal.SIGINT, lambda lines: lines[-1].startswith("Model:"))
    assert process.returncode == 130
    assert err == "Interrupted by SIGINT while scoring the test set: nothing is written, nothing to lose\n"


def test_predict_of_a_file_that_is_not_an_image(tiny_run, tmp_path, capsys):
    (tmp_path / "digit.png").write_text("not a picture")
    code, _, err = run_main(capsys, tiny_run[1].run_dir, str(tmp_path / "digit.png"), main=predict.main)
    assert code == 2
    assert_one_line_error(err, "digit.png: cannot read this image")


def test_several_images_are_predicted_in_one_command_each_named(tiny_run, mnist, tmp_path, capsys):
    paths = [str(tmp_path / f"digit{k}.png") for k in range(3)]
    for k, path in enumerate(paths):
        write_digit_png(path, mnist.test.images[k])
    assert predict.main([tiny_run[1].run_dir, *paths]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [path for path in paths for _ in range(2)]
    alone = []
    for path in paths:  # each answer is the one the image gets alone
        assert predict.main([tiny_run[1].run_dir, path]) == 0
        alone += [f"{path}: {line}" for line in capsys.readouterr().out.splitlines()]
    assert out == alone


def test_one_unreadable_image_among_several_is_one_line_and_nothing_is_predicted(tiny_run, mnist, tmp_path, capsys):
    write_digit_png(tmp_path / "good.png", mnist.test.images[0])
    (tmp_path / "bad.png").write_text("not a picture")
    code, out, err = run_main(capsys, tiny_run[1].run_dir, str(tmp_path / "good.png"), str(tmp_path / "bad.png"),
                              main=predict.main)
    assert code == 2 and out == ""
    assert_one_line_error(err, "bad.png: cannot read this image")


@pytest.mark.parametrize("key,value,words", [("permutation_seed", -5, "permutation_seed = -5 is not allowed"),
                                             ("task", "bogus", 'task = bogus is not allowed')])
def test_a_config_json_edited_by_hand_is_one_line_naming_it(tiny_run_copy, capsys, key, value, words):
    path = os.path.join(tiny_run_copy, "config.json")
    record = json.load(open(path))
    record["config"][key] = value
    json.dump(record, open(path, "w"))
    code, out, err = run_main(capsys, tiny_run_copy, main=predict.main)
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{path}: {words}", "correct it there, or give the value as --name=value")
