"""One writer per workdir, and each workdir used for one kind of job.

    with lock_workdir("runs/lstm", kind="run"):
        train_and_evaluate(config, "runs/lstm")

`lock_workdir` takes an exclusive lock on `WORKDIR/.rnntune.lock`
(`flock`), so the operating system releases it when the holder dies: a
killed run never leaves a stale lock. A second process asking for it gets
a `WorkdirError` naming the workdir and the holder's process id.
`finished_metrics` tells a finished run from one to resume, and refuses a
run of another config.
"""

import contextlib
import fcntl
import os
import pathlib
import shlex
import stat
from typing import Literal

from tuning.trial.config import (Config, ConfigError, WorkdirError,
                                 differences)
from tuning.trial.run import RunDir, RunMetrics, StudyDir

LOCK_FILE = ".rnntune.lock"
JobKind = Literal["run", "comparison", "study"]
# The file that marks each kind of workdir, and the command that makes it.
MARKERS: dict[str, tuple[str, str]] = {
    "study": (StudyDir.SPEC, "rnntune tune"),
    "comparison": ("comparison.json", "rnntune compare"),
    "run": (RunDir.CONFIG, "rnntune train"),
}


def kind_of(workdir: pathlib.Path) -> str | None:
    """What `workdir` holds: `study`, `comparison`, `run`, or None."""
    for kind, (marker, _) in MARKERS.items():
        if (workdir / marker).exists():
            return kind
    return None


def check_kind(workdir: pathlib.Path, kind: JobKind) -> None:
    """Raises `WorkdirError` if `workdir` holds another kind of job."""
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"{workdir}: exists and is not a directory; "
                           "choose another --workdir")
    found = kind_of(workdir) if workdir.is_dir() else None
    if found not in (None, kind):
        marker, command = MARKERS[found]
        raise WorkdirError(
            f"{workdir} holds a {found} ({marker}, written by {command}), "
            f"not a {kind}; choose another --workdir")


def finished_metrics(run: RunDir, config: Config) -> RunMetrics | None:
    """The metrics of the finished run of `config` in `run`; None when
    there is none yet (nothing there, or a run to resume).

    Raises:
        WorkdirError: `run` holds a run of another config, or a damaged
            one.
    """
    if not run.has_config():
        return None
    try:
        previous = run.read_config()
    except (ValueError, KeyError, ConfigError) as e:
        raise WorkdirError(f"{run.config_path}: unreadable run config "
                           f"({e})") from None
    changed = differences(previous, config)
    if changed:
        raise WorkdirError(
            f"{run.path} holds a run with another config "
            f"({'; '.join(changed)}); choose another --workdir or remove it")
    try:
        return run.read_metrics()
    except (ValueError, TypeError) as e:
        raise WorkdirError(f"{run.metrics_path}: unreadable run metrics "
                           f"({e}); remove it to train the run again"
                           ) from None


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").split()
    return f"process {text[0]}" if text else "another process"


def _lock(workdir: pathlib.Path) -> int:
    """Opens and locks `WORKDIR/.rnntune.lock`; returns its descriptor."""
    path = workdir / LOCK_FILE
    while True:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WorkdirError(f"{workdir}: cannot write there "
                               f"({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise WorkdirError(
                f"{workdir} is in use by {holder}; wait for it to end or "
                "choose another --workdir") from None
        except OSError as e:  # ENOLCK, ENOSYS: no locks on this mount
            os.close(fd)
            raise WorkdirError(
                f"{workdir}: its file system refuses file locks "
                f"({e.strerror}); use a directory on a file system that "
                "supports flock") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # a holder removed the file meanwhile: lock the new one


def private_umask() -> None:
    """Files this process creates from now on are writable by their owner
    alone, so that a study it writes passes `check_private` on resume even
    where the default umask (002) makes them group-writable."""
    os.umask(os.umask(0) | 0o022)


@contextlib.contextmanager
def lock_workdir(workdir: str | os.PathLike, *, kind: JobKind):
    """Holds `workdir` exclusively while the block runs.

    Creates `workdir` if needed (and removes it again if the block leaves
    nothing in it, so that a refused job writes nothing).

    Raises:
        WorkdirError: `workdir` is a file, cannot be written, holds another
            kind of job, or another process holds it.
    """
    workdir = pathlib.Path(workdir)
    check_kind(workdir, kind)
    created = not workdir.exists()
    fd = _lock(workdir)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield workdir
    finally:
        # Unlinked while still locked: a process waiting on this file then
        # finds it gone and locks a new one (see `_lock`).
        empty = created and [p.name for p in workdir.iterdir()] == [
            LOCK_FILE]
        if empty:
            (workdir / LOCK_FILE).unlink(missing_ok=True)
        os.close(fd)
        if empty:
            with contextlib.suppress(OSError):
                workdir.rmdir()


def _private_group(gid: int) -> bool:
    """A user private group: the user's own primary group with no other
    members (where umask 002 makes files group-writable by default)."""
    import grp
    import pwd

    try:
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(os.geteuid())
    except KeyError:
        return False
    return (gid == user.pw_gid and group.gr_name == user.pw_name
            and not [m for m in group.gr_mem if m != user.pw_name])


def _problem(path: pathlib.Path) -> str | None:
    info = path.lstat()
    if info.st_uid != os.geteuid():
        import pwd

        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        return f"owned by {owner}, not you"
    if stat.S_ISLNK(info.st_mode):
        return None
    mode = f"mode {stat.S_IMODE(info.st_mode):04o}"
    if info.st_mode & stat.S_IWOTH:
        return f"writable by others ({mode})"
    if info.st_mode & stat.S_IWGRP and not _private_group(info.st_gid):
        return f"writable by its group ({mode})"
    return None


def check_private(workdir: pathlib.Path) -> None:
    """Refuses a study directory whose state others could have changed.

    Resuming loads the backends' state, and Ray's is pickled: whoever can
    write it could run code as the user who resumes.

    Raises:
        WorkdirError: `workdir`, `study.json`, `runtime.json` or anything
            under `ray/` or `keras_tuner/` is owned by another user or
            writable by group (other than a user private group) or others.
    """
    paths = [workdir, workdir / StudyDir.SPEC, workdir / StudyDir.RUNTIME]
    for backend in ("ray", "keras_tuner"):
        if (workdir / backend).is_dir():
            paths.append(workdir / backend)
            paths.extend(sorted((workdir / backend).rglob("*")))
    for path in paths:
        if not os.path.lexists(path):
            continue
        problem = _problem(path)
        if problem:
            raise WorkdirError(
                f"{path}: {problem}; resuming loads the study's saved state "
                "(Ray's is a pickle), so whoever can change it could run "
                "code as you. Make it yours alone (chmod -R go-w "
                f"{shlex.quote(str(workdir))}) or pass --trust-study-dir")
