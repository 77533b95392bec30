"""Settings: config.py, the command line, the rules, and a run folder's config.json."""
import json
import os
import re

import pytest
from helpers import SETTINGS, assert_one_line_error, run_main, tiny_checkpoint

import config
import predict
import train_lstm_mnist as script
from lstm_mnist import command_line, errors, hardware, saved_run
from lstm_mnist.tf_setup import tf


def test_command_line_overrides_are_typed_like_the_defaults():
    overrides, arguments = command_line.parse(["--learning_rate=1e-3", "--batch_size", "64", "--seed=7",
                                               "--plots=no"], "", script.add_arguments, SETTINGS)
    assert overrides == {"learning_rate": 1e-3, "batch_size": 64, "seed": 7, "plots": False}
    assert isinstance(overrides["batch_size"], int) and arguments.resume is None
    cfg = SETTINGS.make(overrides)
    assert cfg.batch_size == 64 and cfg.n_hidden == 128


@pytest.mark.parametrize("args,expected", [
    (["--batch_size=abc"], "--batch_size=abc: expected int"),
    (["--learning_rate", "fast"], "--learning_rate=fast: expected float"),
    (["--no_such_thing=1"], "unknown setting --no_such_thing=1; valid names: n_input, n_steps"),
    (["--resume"], "argument --resume: expected one argument"),
])
def test_bad_command_line_is_a_config_error(args, expected):
    with pytest.raises(errors.ConfigError, match=re.escape(expected)):
        command_line.parse(args, "", script.add_arguments, SETTINGS)


def test_bad_command_line_through_main(capsys):
    code, out, err = run_main(capsys, "--batch_size=abc")
    assert code == 2 and out == ""
    assert_one_line_error(err, "--batch_size=abc")


@pytest.mark.parametrize("override,words", [
    ("--batch_size=0", ["batch_size = 0", ">= 1"]),
    ("--n_steps=14", ["n_steps * n_input = 14 * 28", "784"]),
    ("--n_input=0", ["n_input = 0", ">= 1"]),
    ("--n_classes=9", ["n_classes = 9", "10"]),
    ("--n_hidden=0", ["n_hidden = 0", ">= 1"]),
    ("--learning_rate=0", ["learning_rate = 0.0", "> 0 and finite"]),
    ("--learning_rate=inf", ["learning_rate = inf", "> 0 and finite"]),
    ("--learning_rate=nan", ["learning_rate = nan", "> 0 and finite"]),
    ("--display_step=0", ["display_step = 0", ">= 1"]),
    ("--training_iters=100", ["training_iters = 100", "at least one step"]),
    ("--test_len=0", ["test_len = 0", "between 1 and the test-set size"]),
    ("--test_len=10001", ["test_len = 10001", "test-set size (10000)"]),
    ("--validation_size=-1", ["validation_size = -1", "between 0 and"]),
    ("--validation_size=60001", ["validation_size = 60001", "between 0 and 60000"]),
    ("--checkpoint_every=0", ["checkpoint_every = 0", ">= 1"]),
    ("--cell=slow", ["cell = slow", '"basic" or "fast"']),
    ("--precision=fp16", ["precision = fp16", '"fp32" or "bf16"']),
    ("--precision=bf16", ["precision = bf16", "cell = \"basic\"", "--cell=fast"]),
])
def test_bad_setting_is_refused_before_anything_is_written(capsys, tmp_path, override, words):
    out_dir = tmp_path / "runs"
    code, out, err = run_main(capsys, override, f"--out_dir={out_dir}")
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)
    assert not out_dir.exists()


def write_config_json(run_dir, values):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"config": values}, f)


def test_paths_inside_the_project_are_saved_relative_to_it(tmp_path):
    cfg = SETTINGS.make({"out_dir": str(tmp_path / "elsewhere")})
    saved_run.save_settings(str(tmp_path), cfg)
    saved = json.loads((tmp_path / "config.json").read_text())["config"]
    assert saved["data_dir"] == os.path.join("data", "mnist")
    assert saved["out_dir"] == str(tmp_path / "elsewhere")  # outside the project: absolute
    assert saved_run.saved_settings(str(tmp_path), SETTINGS) == vars(cfg)


def test_a_moved_checkout_finds_its_own_data(tmp_path):
    # A config.json written by a checkout elsewhere: the relative data_dir resolves against this one.
    write_config_json(tmp_path, {"data_dir": "data/mnist", "n_hidden": 64})
    values = saved_run.saved_settings(str(tmp_path), SETTINGS)
    assert values["data_dir"] == config.data_dir and values["n_hidden"] == 64


@pytest.mark.parametrize("key,value", [("batch_size", "abc"), ("batch_size", 100.5), ("learning_rate", "0.001"),
                                       ("n_hidden", None), ("plots", "false")])
def test_saved_settings_of_the_wrong_type_are_one_line(tmp_path, key, value):
    write_config_json(tmp_path, {key: value})
    with pytest.raises(errors.ConfigError, match=f"config.json: {key} is {re.escape(repr(value))}, expected"):
        saved_run.saved_settings(str(tmp_path), SETTINGS)


def test_config_json_that_is_not_settings(tmp_path):
    (tmp_path / "config.json").write_text('{"config": [1, 2]}')
    with pytest.raises(errors.ConfigError, match="cannot read the run's settings"):
        saved_run.saved_settings(str(tmp_path), SETTINGS)


@pytest.mark.parametrize("override,words", [
    ("--seed=-1", ["seed = -1", "between 0 and 2**32 - 1"]),
    ("--seed=1e20", ["seed = 100000000000000000000", "between 0 and 2**32 - 1"]),
    ("--forget_bias=nan", ["forget_bias = nan", "finite"]),
    ("--max_loss=-1", ["max_loss = -1.0", ">= 0"]),
    ("--validation_size=60000", ["validation_size = 60000", "below 60000", "leave some to train on"]),
    ("--n_hidden=100000", ["n_hidden = 100000", "GiB", "choose smaller sizes"]),
    ("--batch_size=1000000", ["n_hidden = 128, batch_size = 1000000", "GiB", "choose smaller sizes"]),
    ("--batch_size=56000", ["batch_size = 56000", "at most the training images (55000)"]),
])
def test_settings_that_would_fail_inside_tensorflow_are_refused_first(capsys, tmp_path, override, words):
    out_dir = tmp_path / "runs"
    code, out, err = run_main(capsys, override, "--training_iters=1e7", f"--out_dir={out_dir}")
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)
    assert not out_dir.exists()


def test_an_int_may_be_written_as_a_whole_number_in_any_notation():
    overrides, _ = command_line.parse(["--training_iters=1e4", "--batch_size=64.0"], "", script.add_arguments,
                                      SETTINGS)
    assert overrides == {"training_iters": 10000, "batch_size": 64}
    assert type(overrides["training_iters"]) is int


def test_a_misspelt_setting_gets_a_suggestion():
    with pytest.raises(errors.ConfigError, match=re.escape("unknown setting --batchsize=5 (did you mean "
                                                           "--batch_size?)")):
        command_line.parse(["--batchsize=5"], "", script.add_arguments, SETTINGS)


@pytest.mark.parametrize("name,value", [("n_hidden", 64), ("n_input", 14), ("batch_size", 50)])
def test_a_resume_cannot_change_what_a_checkpoint_means(name, value):
    saved = SETTINGS.defaults
    with pytest.raises(errors.ConfigError, match=f"{name} = {value} differs from the saved run's {saved[name]}"):
        saved_run.check_resume_overrides({name: value}, saved)
    saved_run.check_resume_overrides({name: saved[name], "training_iters": 5}, saved)  # unchanged: fine


@pytest.mark.parametrize("flags,lacks", [("fpu sse2 avx2 avx512f", True), ("fpu avx512f avx512_bf16", False),
                                         ("fpu amx_bf16 amx_tile", False), (None, False)])
def test_bf16_needs_the_cpu_to_say_it_has_bfloat16(tmp_path, flags, lacks):
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:  # None: no such file, as on a system without /proc: it cannot tell, so it allows
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: {flags}\n\n")
    assert hardware.cpu_lacks_bf16(str(cpuinfo)) is lacks


def test_bf16_on_a_cpu_without_it_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_lacks_bf16", lambda: True)
    code, out, err = run_main(capsys, "--cell=fast", "--precision=bf16", f"--out_dir={tmp_path}")
    assert code == 2 and out == ""
    assert_one_line_error(err, "precision = bf16 needs a CPU with AVX512-BF16 or AMX", "--precision=fp32")


def test_config_json_round_trips(tiny_run):
    cfg, metrics, _ = tiny_run
    with open(os.path.join(metrics.run_dir, "config.json")) as f:
        record = json.load(f)
    assert record["config"] == {**vars(cfg), "data_dir": os.path.join("data", "mnist")}
    assert record["versions"]["tensorflow"] == tf.__version__
    assert saved_run.saved_settings(metrics.run_dir, SETTINGS) == vars(cfg)


def test_resume_takes_the_saved_settings_with_overrides(tiny_run):
    cfg, metrics, _ = tiny_run
    resumed, checkpoint = saved_run.open_saved_run(metrics.run_dir, {"training_iters": 4000}, SETTINGS)
    assert checkpoint == tiny_checkpoint(tiny_run)
    assert resumed.eval_every == 10 and resumed.training_iters == 4000 and resumed.out_dir == cfg.out_dir


def test_a_resume_with_another_architecture_is_one_line_and_the_run_folder_stays_usable(tiny_run_copy, capsys):
    run_dir = tiny_run_copy
    before = {name: open(os.path.join(run_dir, name), "rb").read() for name in ("config.json", "metrics.csv")}
    code, out, err = run_main(capsys, f"--resume={run_dir}", "--n_hidden=64", "--training_iters=4000")
    assert code == 2 and out == ""
    assert_one_line_error(err, "n_hidden = 64 differs from the saved run's 128")
    assert {name: open(os.path.join(run_dir, name), "rb").read() for name in before} == before
    assert run_main(capsys, run_dir, main=predict.main)[0] == 0
