"""Per-run records: what the reports read of each run, committed beside a preset's ledger so
that the ledger and its figures rebuild from the repository alone, in seconds, with no run
cache and no training.

    figures/<preset>/records/<run key>/seed_<n>/   config.json, summary.json, metrics.json,
                                                   every cached measurement the reports read
                                                   (with its .sha256), record.json
    figures/<preset>/records/<run key>/            measurements across a configuration's seeds
                                                   (the seeds' orientations, claim 5)

A record is a run directory without its heavy files (trajectory.npz, checkpoints, the full
commutator vectors, the PCA directions): a report reads a record exactly as it reads the run.
``record.json`` lists every file's sha256. What a record lacks (a measurement added or
changed after it was made) raises ``rundir.MissingRecord`` naming the file: that needs the
run itself. ``export`` writes them: after a whole ledger, exactly the files its reports
read in this process (``rundir.READ``), each record directory replaced whole and
atomically; after a partial sitting (``--train``, ``--finished-only``), what that sitting
read is added and nothing removed, so each sitting commits what it finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil

from ..files import file_digest, read_json, save_json
from .rundir import READ, RECORD, is_record

ALWAYS = ("config.json", "summary.json", "summary.json.sha256", "metrics.json")
MAX_BYTES = 1 << 20     # a record file this large is a heavy file kept by mistake: refused, named


class RecordError(ValueError):
    """A record that cannot be written as it should (a file too large to commit)."""


def record_dir(records_root, run_dir) -> str:
    """Where the record of the run in ``run_dir`` (``<root>/<key>/seed_<n>``) goes."""
    return os.path.join(records_root, os.path.basename(os.path.dirname(run_dir)), os.path.basename(run_dir))


def find(records_root, run_dir):
    """The committed record of the run ``run_dir`` would hold, or None."""
    if not records_root:
        return None
    d = record_dir(records_root, run_dir)
    return d if is_record(d) else None


def as_sweep_record(spec, d) -> dict:
    """A record in the form the sweep gives a run it loaded (``sweep._train_locked``)."""
    return {"name": spec.name, "seed": spec.train.seed, "dir": d, "cached": True, "diverged": None,
            "damaged": None, "twin": None, "worker": None, "record": True,
            "summary": read_json(os.path.join(d, "summary.json"))}


def _files_read(folder, read) -> list:
    """Names of the cached measurements in ``folder`` read in this process, with digests."""
    names = sorted(os.path.basename(p) for p in read if os.path.dirname(p) == os.path.abspath(folder))
    return [n for name in names for n in (name, name + ".sha256") if os.path.exists(os.path.join(folder, n))]


def _copy_into(src_folder, names, dst_folder) -> dict:
    """Copy ``names`` from ``src_folder`` to ``dst_folder``; {name: sha256}."""
    digests = {}
    for name in names:
        src = os.path.join(src_folder, name)
        if os.path.getsize(src) > MAX_BYTES:
            raise RecordError(f"{src} is {os.path.getsize(src) / 2**20:.1f} MiB: too large for a committed "
                              f"record (over {MAX_BYTES >> 20} MiB); records keep small measurements only")
        dst = os.path.join(dst_folder, name)
        shutil.copyfile(src, f"{dst}.tmp-{os.getpid()}")
        os.replace(f"{dst}.tmp-{os.getpid()}", dst)          # a reader never sees half a file
        digests[name] = file_digest(dst)
    return digests


def _replace(tmp, dst) -> None:
    """Put the folder ``tmp`` at ``dst``, the old one (if any) removed only after."""
    old = f"{dst}.old-{os.getpid()}"
    if os.path.exists(dst):
        os.rename(dst, old)
    os.rename(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)


SAME_RUN = ("final_step", "final_loss", "final_acc")   # a retraining of a run that reproduces it ends the same


def same_run(record_dir, run_dir) -> bool:
    """The record is of the run in ``run_dir``: the same configuration and seed (its path)
    and the same end (``SAME_RUN`` of both summaries; training is deterministic on one
    machine, so a run retrained where the record was made ends bit for bit the same)."""
    try:
        mine, theirs = (read_json(os.path.join(d, "summary.json")) for d in (run_dir, record_dir))
    except (OSError, ValueError):
        return False
    return (os.path.basename(run_dir) == os.path.basename(record_dir)
            and os.path.basename(os.path.dirname(run_dir)) == os.path.basename(os.path.dirname(record_dir))
            and all(mine.get(k) == theirs.get(k) for k in SAME_RUN))


def tag(run_dir) -> str:
    """The run's end (``SAME_RUN`` of its summary) in 8 hex digits. A measurement that reads
    another run names that run by it, so a retraining that ends elsewhere (another kernel
    or thread count) is measured anew instead of read from the record of the run it replaced."""
    summary = read_json(os.path.join(run_dir, "summary.json"))
    return hashlib.sha256(json.dumps({k: summary.get(k) for k in SAME_RUN}, sort_keys=True).encode()).hexdigest()[:8]


def adopt(record_dir, run_dir, names=None) -> list:
    """Copy into ``run_dir`` the measurements (``names``; None: every one) that the record
    ``record_dir`` holds of the same run (``same_run``) and the run directory lacks, each
    with its digest, so they are read, not recomputed (a retraining that needs the run's
    trajectory also needs what was measured of it, some of it from runs that only a record
    holds now). Nothing there is overwritten; the digest lands last, so a copy cut short
    is recomputed, never trusted. Returns the names copied."""
    if not record_dir or os.path.abspath(record_dir) == os.path.abspath(run_dir) or not same_run(record_dir, run_dir):
        return []
    listed = read_json(os.path.join(record_dir, RECORD)).get("files", {}) if names is None else names
    names = [n for n in listed if n not in ALWAYS and not n.endswith(".sha256") and n != RECORD
             and os.path.isfile(os.path.join(record_dir, n)) and os.path.isfile(os.path.join(record_dir, n + ".sha256"))
             and not os.path.exists(os.path.join(run_dir, n))]
    for n in names:
        _copy_into(record_dir, [n, n + ".sha256"], run_dir)
    return names


def _same_run_files(dst, files) -> list:
    """The files of the record at ``dst`` if it records the same run as ``files`` ({name:
    sha256}, just copied: the same summary), else none (a retrained run: its record is new)."""
    if not is_record(dst):
        return []
    theirs = read_json(os.path.join(dst, RECORD))["files"]
    if theirs.get("summary.json") != files.get("summary.json"):
        return []
    return [n for n in theirs if os.path.exists(os.path.join(dst, n))]      # one lost from disk: not kept


def export(runs, records_root, read=None, whole=True) -> list:
    """Write the record of every run in ``runs`` (sweep records) under ``records_root``, and
    the measurements across each configuration's seeds. Returns the record directories. A
    run that is itself a record is copied as it is (its files were read from it).

    ``whole`` (a whole ledger): the records are exactly what it read; records of runs it no
    longer uses and measurements it no longer reads are removed. Otherwise (a partial
    sitting, ``--train`` or ``--finished-only``: what each sitting finishes is committed)
    nothing is removed: a run's record keeps the files an earlier sitting wrote of the same
    run (same ``summary.json``) beside what this one read, and other runs' records stay."""
    read = READ if read is None else read
    os.makedirs(records_root, exist_ok=True)
    written, keys = [], {}
    for rec in runs:
        src = rec["dir"]
        dst = record_dir(records_root, src)
        if os.path.abspath(src) == os.path.abspath(dst) and not whole:
            written.append(dst)                 # a partial sitting reading a record: nothing to add
            keys.setdefault(os.path.dirname(dst), {})[os.path.dirname(src)] = None
            continue                            # (a whole ledger rewrites it with only what it read)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        names = [n for n in ALWAYS if os.path.exists(os.path.join(src, n))] + _files_read(src, read)
        try:
            files = _copy_into(src, names, tmp)
            if not whole:                        # an earlier sitting's files of this same run stay
                kept = [n for n in _same_run_files(dst, files) if n not in files]
                files.update(_copy_into(dst, kept, tmp))
            save_json(os.path.join(tmp, RECORD), {"run": f"{os.path.basename(os.path.dirname(src))}/"
                                                         f"{os.path.basename(src)}",
                                                  "files": files})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)     # the record there stays as it was
            raise
        _replace(tmp, dst)
        written.append(dst)
        keys.setdefault(os.path.dirname(dst), {})[os.path.dirname(src)] = None
    for dst_key, src_keys in keys.items():           # across seeds: the configuration's folder(s): the
        names = {}                                   # run cache's, and the records' for runs read there
        for src_key in src_keys:
            names.update({n: src_key for n in _files_read(src_key, read) if n not in names})
        for name in os.listdir(dst_key) if whole else []:
            if os.path.isfile(os.path.join(dst_key, name)) and name not in names:
                os.remove(os.path.join(dst_key, name))
        for src_key in src_keys:
            if os.path.abspath(dst_key) != os.path.abspath(src_key):
                _copy_into(src_key, [n for n, k in names.items() if k == src_key], dst_key)
    if not whole:
        return written
    keep = set(map(os.path.abspath, written))
    for key in os.listdir(records_root):             # runs this ledger no longer reads
        folder = os.path.join(records_root, key)
        for name in (os.listdir(folder) if os.path.isdir(folder) else []):
            d = os.path.join(folder, name)
            if os.path.isdir(d) and os.path.abspath(d) not in keep:
                shutil.rmtree(d)
        if os.path.isdir(folder) and not any(os.path.isdir(os.path.join(folder, n)) for n in os.listdir(folder)):
            shutil.rmtree(folder)
    return written
