"""Writing files safely: the one atomic path every output of the project goes through.

    with atomic_output("results/run/results.json") as tmp:   # write tmp; it replaces the output only on success
        ...

A temporary file beside the output, named `<output>.<pid>.<random>.tmp`, is renamed onto the
output only when the block succeeds, and removed otherwise. A process killed outright (SIGKILL,
a power cut) cannot remove its own: the next atomic_output for the same output removes every
such file whose process is gone. A full disk or another I/O error becomes a DataError that
names the file and says how much was written and how much space is free.
"""
import contextlib
import errno
import os
import re
import shutil
import tempfile

# errors that say the disk (or quota) is full, rather than that something is wrong with the path
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DataError(Exception):
    """A data, split or output file is missing, damaged or cannot be written; the message says what to do."""


def usual_permissions(path):
    """Give a file made by tempfile.mkstemp (0600) the permissions the umask gives a new file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to `path`; rename it to `path` only if the block succeeds.

    Raises DataError (naming `path`) for an OSError of the file system: a full disk, a
    read-only or vanished folder. The temporary file never outlives the block.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:  # mkstemp inside the try: an interrupt right after it still removes the file
        os.makedirs(directory, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
        yield tmp
        usual_permissions(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise DataError(write_error(path, e, tmp)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_outputs(*paths):
    """atomic_output for several files: the block writes all of them to temporary files, which replace the
    outputs together, one rename after another, only when the block succeeds; a failure or an interrupt
    anywhere in the block leaves every previous output as it was."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_output(path)) for path in paths]


def write_error(path, error, tmp=None):
    """The message for an OSError while writing `path` (through its temporary file `tmp`)."""
    reason = error.strerror or str(error)
    if error.errno in FULL:
        written = os.path.getsize(tmp) if tmp and os.path.exists(tmp) else 0
        return (f"cannot write {path}: {reason} ({written:,} bytes written before it filled, "
                f"{free_bytes(os.path.dirname(os.path.abspath(path))):,} bytes free there); free some space, or "
                "write to another disk")
    return f"cannot write {path}: {reason}"


_TEMPORARY = re.compile(r"\.(\d+)\.[^.]+\.tmp$")


def remove_stale_temporaries(path):
    """Remove the temporary files that earlier atomic_outputs of `path` left when their process was killed."""
    directory, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(directory):
        match = _TEMPORARY.search(entry)
        if entry.startswith(name + ".") and match and entry[:match.start()] == name and \
                not process_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))


def process_alive(pid):
    """True while a process with this id runs (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def free_bytes(directory):
    """Free bytes on the file system of `directory` (or its nearest existing parent)."""
    while directory and not os.path.exists(directory):
        directory = os.path.dirname(directory)
    return shutil.disk_usage(directory or ".").free


def require_free_space(path, needed, what):
    """DataError before any work when the disk of `path` has less than `needed` bytes free for `what` (after
    removing what killed earlier runs left of `path`)."""
    if os.path.isdir(os.path.dirname(os.path.abspath(path))):
        remove_stale_temporaries(path)
    free = free_bytes(os.path.dirname(os.path.abspath(path)))
    if free < needed:
        raise DataError(f"not enough space for {what} ({path}): it needs about {needed:,} bytes and "
                        f"{free:,} are free there; free some space, or write to another disk")
