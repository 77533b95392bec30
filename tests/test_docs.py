"""The README and the guides cannot go stale: every command they show names a file that exists and
only flags and settings that exist."""
import argparse
import glob
import importlib
import os
import re
import shlex

import pytest
from helpers import ROOT, SETTINGS

DOCS = ["README.md", "benchmarks/README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(f"{ROOT}/docs/*.md"))]
COMMAND = re.compile(r"python3? (\S+\.py)((?: +(?!#)[^\s`|&;)]+)*)")


def commands_in(doc):
    """(script, [arguments]) of every `python X.py ...` in a document, up to a comment or the line's end."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        text = f.read()
    return [(m.group(1), shlex.split(m.group(2))) for m in COMMAND.finditer(text)]


def flags_of(script):
    """The flags a script takes: an entry point's own (its add_arguments) and every setting of
    config.py; for another script, the flags its argparse declares."""
    path = os.path.join(ROOT, script)
    module_name = os.path.splitext(script)[0].replace("/", ".")
    if os.path.dirname(script) == "" and hasattr(importlib.import_module(module_name), "add_arguments"):
        parser = argparse.ArgumentParser(add_help=False)
        importlib.import_module(module_name).add_arguments(parser)
        own = {flag for action in parser._actions for flag in action.option_strings}
        return own | {f"--{name}" for name in SETTINGS.defaults} | {"--help", "-h"}
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", f.read())) | {"--help", "-h"}


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_shown_names_a_file_and_flags_that_exist(doc):
    commands = commands_in(doc)
    for script, arguments in commands:
        assert os.path.isfile(os.path.join(ROOT, script)), f"{doc}: python {script}: no such file"
        known = flags_of(script)
        for argument in arguments:
            if argument.startswith("-"):
                flag = argument.split("=", 1)[0]
                assert flag in known, f"{doc}: python {script} {' '.join(arguments)}: no flag or setting {flag}"


def test_the_readme_shows_commands_and_is_the_front_page():
    assert commands_in("README.md")
    assert os.path.getsize(os.path.join(ROOT, "README.md")) <= 12_000


def test_a_stale_command_is_caught(tmp_path, monkeypatch):
    """The check itself: an unknown setting and a missing script are found."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "old.md").write_text("    python train_lstm_mnist.py --eval_only\n    python gone.py\n")
    monkeypatch.setattr(f"{__name__}.ROOT", str(tmp_path))
    (script, arguments), (missing, _) = commands_in("old.md")
    monkeypatch.undo()
    assert "--eval_only" not in flags_of(script) and arguments == ["--eval_only"]
    assert not os.path.isfile(os.path.join(ROOT, missing))
