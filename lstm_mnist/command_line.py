"""An entry point's command line: `--name=value` for every setting, typed like its default, and the
entry point's own arguments. Read before anything heavy is imported, so that a mistyped flag is one
line at once."""
import argparse
import sys

from lstm_mnist.errors import ConfigError
from lstm_mnist.settings import did_you_mean


def parse_value(name, text, default):
    """`text` as the type of `default`; ConfigError naming the setting otherwise.
    An int may be written as any number that is exactly an integer (1e4)."""
    kind = type(default)
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(text) if text.strip().lstrip("+-").isdigit() else int(number)
        return kind(text)
    except (KeyError, ValueError, OverflowError):
        raise ConfigError(f"--{name}={text}: expected {kind.__name__} like the default {default!r}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises ConfigError instead of printing usage and exiting."""

    def error(self, message):
        raise ConfigError(message)


def parse(argv, description, add_arguments, settings):
    """(overrides, arguments): the settings the command line gives, as {name: value} of the defaults'
    types (`settings`, a settings.Settings), and the entry point's own arguments (`add_arguments`),
    with `argv`, the command line as given (sys.argv's where None)."""
    defaults = settings.defaults
    parser = ArgumentParser(description=description, allow_abbrev=False,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Every setting of config.py can be overridden as --name=value. "
                                   "Where a saved run is named, its config.json gives the defaults.")
    add_arguments(parser)
    group = parser.add_argument_group("settings (config.py)")
    for name, default in defaults.items():
        group.add_argument(f"--{name}", default=argparse.SUPPRESS, metavar=type(default).__name__.upper(),
                           type=lambda text, name=name, default=default: parse_value(name, text, default),
                           help=f"{settings.comments.get(name, '')} (default: {default})")
    arguments, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}{did_you_mean(unknown[0], defaults)}; "
                          f"valid names: {', '.join(defaults)}")
    overrides = {name: vars(arguments).pop(name) for name in defaults if name in vars(arguments)}
    arguments.argv = list(sys.argv[1:] if argv is None else argv)
    return overrides, arguments
