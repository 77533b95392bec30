"""The project's errors. What a user can cause ends as one line on stderr and an exit code
(entry_point.py): 2 for bad input (BadInput: ConfigError, data.DataError), 1 when the work cannot
go on (TrainingError), 128 + the signal for SIGINT/SIGTERM (Interrupted). Anything else is a bug
and keeps its traceback.
"""
import signal


class BadInput(Exception):
    """What the user gave cannot be used: a setting, an argument, a path, a file (exit code 2)."""


class ConfigError(BadInput):
    """A setting, command-line argument or input path is not usable."""


class TrainingError(Exception):
    """The work cannot go on: a diverged loss, a file that cannot be written (exit code 1)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (exit code 128 + signal); the message says what is safe.

    Raised by the code at its safe points (signals.StopRequests), never by the signal
    handler. A BaseException, as KeyboardInterrupt is, so that library code that
    catches Exception (TensorFlow's does, around its feeds and hooks) lets it pass
    on to the entry point.
    """

    def __init__(self, signum, what):
        super().__init__(f"Interrupted by {signal.Signals(signum).name} {what}")
        self.exit_code = 128 + signum


def cannot_write(what, reason, then="then resume from the last checkpoint"):
    """The TrainingError for `what` (a file or folder) that could not be written (a full disk, a read-only
    folder), for `reason` (an OSError, or its words); `then` says what the user can do once the cause is mended."""
    if isinstance(reason, OSError):
        reason = reason.strerror or reason
    return TrainingError(f"cannot write {what}: {reason}; free some space (or make it writable), {then}")
