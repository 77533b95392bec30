"""Files written whole or not at all: under a temporary name beside the target, renamed when complete.

A crash, a signal or a full disk midway leaves the previous file as it was
(or no file), never half of one. config.json, metrics.csv (rewritten on
resume), the plots and a downloaded MNIST file are all written this way.
"""
import contextlib
import os


@contextlib.contextmanager
def replaced_atomically(path, mode="w"):
    """An open file to write `path`'s new contents to: renamed into place when the block ends
    normally, removed when it raises (the OSError of a full disk, say, goes on to the caller,
    who knows what to tell the user)."""
    tmp = f"{path}.{os.getpid()}.tmp"  # per process: two writers never share one
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomically(path, contents):
    """Write `contents` (str or bytes) to `path` through replaced_atomically."""
    with replaced_atomically(path, "wb" if isinstance(contents, bytes) else "w") as f:
        f.write(contents)
