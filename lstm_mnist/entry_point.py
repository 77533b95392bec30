"""How every entry point runs: its command line read first (a mistake in it is refused before
TensorFlow's import, seconds), TensorFlow imported, its work done in an open context (context.py)
whose signals it handles, and what a user can cause reported as one line on stderr and an exit
code (errors.py)."""
import gc
import sys

from lstm_mnist import command_line, context, signals, tf_setup
from lstm_mnist.errors import BadInput, Interrupted, TrainingError


def run(argv, doc, add_arguments, settings, work, uses_tensorflow=lambda arguments: True):
    """`work(overrides, arguments)` for the command line `argv` (command_line.parse, described by the
    first paragraph of `doc`, with `settings`, a settings.Settings); returns the exit code: work's own,
    if it returns one, else 0, or the code of the error or signal that ended it. TensorFlow is imported
    before the work where `uses_tensorflow(arguments)` (a launcher of other processes has no use for it)."""
    sys.stdout.reconfigure(line_buffering=True)  # show progress live through pipes too
    try:
        overrides, arguments = command_line.parse(argv, doc.split("\n\n")[0], add_arguments, settings)
        if uses_tensorflow(arguments):
            tf_setup.tensorflow()  # once the command line is good: its seconds before the work, not in its midst
        with signals.handled() as requests, context.opened(requests):
            code = work(overrides, arguments)
            context.check()  # a signal in the last phase, after its last check
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    return code or 0


def exit_process(code):
    """End the process with `code`, without Python's last garbage collection: it would walk
    every object TensorFlow made (0.7 s on 2 cores) only to free memory the system takes back
    anyway. What the entry points write is closed before they return, never left to it."""
    gc.freeze()
    raise SystemExit(code)
