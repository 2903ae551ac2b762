"""Files every floor writes and reads: atomic writes (a reader sees the old file or the new
one, never a torn one), .npz and JSON with errors that name the file, and a file's recorded
digest (so a file changed after its writer finished is caught).

Used by the model's parameter files, run directories, cached measurements, figures and
ledgers. Imports nothing from the package: it sits under every floor.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile

import numpy as np


def atomic_write(path, write_fn, mode="wb") -> None:
    """Write ``path`` by ``write_fn(fileobj)`` into a temp file beside it, fsync, then
    rename over ``path``: a reader sees the old file or the new one, never a torn one.
    A text ``mode`` ("w") writes UTF-8 whatever the locale (LC_ALL=C would fail on "±")."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{os.path.basename(path)}.pid{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp creates 0600; use normal perms
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


_TMP = re.compile(r"\.pid(\d+)\.[^.]*\.tmp$")


def clean_stale_tmp(folder) -> list:
    """Remove temp files that killed writers left in ``folder`` (atomic_write names them
    ``<file>.pid<N>.<random>.tmp``); a live process's are kept, so concurrent writers of
    the same folder are safe. Returns the paths removed."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        m = _TMP.search(name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            os.remove(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
        except FileNotFoundError:                 # another cleaner got there first
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                      # exists, owned by someone else
        return True
    return True



def host(x):
    """A NumPy array of ``x``; a device (CuPy) array is copied to the host."""
    return x.get() if hasattr(x, "__cuda_array_interface__") else np.asarray(x)


def save_npz(path, arrays: dict) -> None:
    """np.savez of host copies of ``arrays``, written atomically."""
    host_arrays = {k: host(v) for k, v in arrays.items()}
    atomic_write(path, lambda f: np.savez(f, **host_arrays))


def save_json(path, obj) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True)), mode="w")


def read_npz(path) -> dict:
    """Every array of an .npz, loaded. Raises ValueError naming the file if it is missing
    or not a readable .npz."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None


def read_json(path):
    """json.load of ``path``; a corrupt file raises ValueError naming it."""
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None


def file_digest(path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def digest_path(path) -> str:
    return f"{path}.sha256"


def record_digest(path) -> None:
    """Write ``<path>.sha256``, the digest of the file just written at ``path``: a run's
    summary and every cached measurement (``trajectories.rundir``) carry one, so a file
    changed or truncated after its writer finished is caught by ``changed``."""
    digest = file_digest(path)
    atomic_write(digest_path(path), lambda f: f.write(digest + "\n"), mode="w")


def changed(path):
    """None if ``path`` is the file whose digest was recorded beside it; else why not (no
    digest recorded: written before digests were kept, or its writer was killed first)."""
    try:
        with open(digest_path(path), encoding="utf-8") as f:
            want = f.read().strip()
    except FileNotFoundError:
        return "has no recorded digest"
    return None if file_digest(path) == want else "is not the file its writer wrote (changed or truncated)"
