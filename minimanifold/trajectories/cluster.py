"""Training and the per-run measurements on a Dask cluster (``run_all.py --dask ADDRESS``,
the optional extra ``dist``): the cluster's workers as a ``concurrent.futures.Executor``
that the sweep and the pipeline use as they use a local pool.

    run_all.py ── connect(ADDRESS) -> Workers ── submit(fn, *args) ──> a Dask worker:
                                                  on_worker(fn, *args): one BLAS thread, fn(*args)

Every call runs with one BLAS thread, as a local pool worker does (the GEMM kernels sum in
a thread-dependent order, so the thread count decides the last bits), whatever the
worker was started with: a worker without a nanny, or one whose shell sets
OPENBLAS_NUM_THREADS, has loaded OpenBLAS with more, so the limit is set at run time
(threadpoolctl). A run directory's ``trained_by.json`` names the worker that trained it.

A worker that dies mid-run: the scheduler hands its task to another worker (at most
``distributed.scheduler.allowed-failures`` times, 3 by default, a setting of the
scheduler), which resumes the run from its last checkpoint in the run directory, so the
runs directory must be one path on a filesystem every worker and ``run_all.py`` share.
"""
from __future__ import annotations

import importlib.util
import os
from concurrent.futures import Executor, Future
from importlib.machinery import ModuleSpec

NEEDS_EXTRA = "--dask needs the dist extra: pip install minimanifold[dist]"
WORKER = None        # in a Dask worker: its address (``on_worker`` sets it; the sweep records it)
_ready = False       # this process has been set up for training (``on_worker``)


class ClusterError(RuntimeError):
    """The cluster cannot be used or lost a task; the message is the one line to print."""


def require() -> None:
    """ClusterError(NEEDS_EXTRA) unless the dist extra (dask.distributed, threadpoolctl) is
    installed here."""
    try:
        import distributed  # noqa: F401, PLC0415
        import threadpoolctl  # noqa: F401, PLC0415
    except ImportError:
        raise ClusterError(NEEDS_EXTRA) from None


def one_blas_thread() -> None:
    """In this process: one BLAS thread from now on (the libraries already loaded are
    limited at run time; the variables tell ``train.blas_threads`` and any child).
    ClusterError if a library still reports more: a limit it ignored (seen once with
    OpenBLAS, from a task thread, after the worker's main thread had raised its count)."""
    from threadpoolctl import threadpool_info, threadpool_limits  # noqa: PLC0415
    os.environ.update({k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    threadpool_limits(1, user_api="blas")
    if more := [i["filepath"] for i in threadpool_info() if i["user_api"] == "blas" and i["num_threads"] != 1]:
        raise ClusterError(f"cannot limit BLAS to one thread in this worker ({', '.join(more)}): start it "
                           f"with OPENBLAS_NUM_THREADS=1")


def on_worker(fn, *args):
    """On a Dask worker: ``fn(*args)`` with one BLAS thread, the worker's address in
    ``WORKER`` (training records it), and the allocator set up once as a local pool
    worker's is (``backend.keep_freed_memory``)."""
    global WORKER, _ready
    from distributed import get_worker  # noqa: PLC0415
    if not _ready:
        from ..model.backend import keep_freed_memory  # noqa: PLC0415
        keep_freed_memory()
        _ready = True
    one_blas_thread()                   # every call: a task thread may be new, and cheap
    WORKER = get_worker().address
    return fn(*args)


class Workers(Executor):
    """The workers of a connected ``distributed.Client`` as an Executor: each call goes
    through ``on_worker``, is never deduplicated (``pure=False``: calls write files), and a
    task whose workers kept dying, or that the scheduler dropped, raises ClusterError."""

    def __init__(self, client):
        self.client = client
        self._inner = client.get_executor(pure=False)

    @property
    def slots(self) -> int:
        """Calls the cluster runs at once: its workers' threads, summed."""
        return sum(self.client.nthreads().values())

    def submit(self, fn, /, *args, **kwargs):
        if kwargs:
            raise TypeError("Workers.submit takes positional arguments only")
        out, inner = Future(), self._inner.submit(on_worker, fn, *args)
        inner.add_done_callback(lambda f: _relay(f, out))
        return out

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._inner.shutdown(wait=wait and not cancel_futures)
        self.client.close()


def _relay(inner: Future, out: Future) -> None:
    """``inner``'s outcome to ``out``; a lost task as one ClusterError line."""
    from distributed import KilledWorker  # noqa: PLC0415
    if inner.cancelled():
        out.set_exception(ClusterError("the Dask scheduler dropped a task (was it restarted, or the "
                                       "connection to it lost?); rerun to resume from the checkpoints"))
    elif isinstance(e := inner.exception(), KilledWorker):
        out.set_exception(ClusterError(f"every Dask worker that ran a task died ({' '.join(str(e).split())}); "
                                       f"its run keeps its checkpoints: rerun to resume"))
    elif e is not None:
        out.set_exception(e)
    else:
        out.set_result(inner.result())


def cannot_import(client, code=__name__, worker_only=("threadpoolctl",)) -> list:
    """Where the tasks cannot run: the scheduler (it unpickles them) if it cannot import
    the module ``code`` (this one), and each worker that cannot import ``code`` or a module
    of ``worker_only``; each named with the module."""
    try:
        out = [] if client.run_on_scheduler(importlib.util.find_spec, code) else [f"the scheduler ({code})"]
    except ImportError:                                   # its package is missing there
        out = [f"the scheduler ({code})"]
    for name in (code, *worker_only):
        specs = client.run(importlib.util.find_spec, name, on_error="return")
        out += [f"worker {w} ({name})" for w, spec in specs.items() if not isinstance(spec, ModuleSpec)]
    return out


def connect(address) -> Workers:
    """The cluster whose scheduler listens at ``address`` (``tcp://host:8786``), waiting
    for at least one worker; ClusterError (one line) when the extra is missing, no
    scheduler answers within ``distributed.comm.timeouts.connect`` (DASK_DISTRIBUTED__COMM
    __TIMEOUTS__CONNECT in the environment), no worker joins in that time, or the
    scheduler or a worker cannot import minimanifold (``cannot_import``)."""
    require()
    import dask  # noqa: PLC0415
    from distributed import Client  # noqa: PLC0415
    from dask.utils import parse_timedelta  # noqa: PLC0415
    from distributed.comm import get_address_host_port  # noqa: PLC0415
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    try:
        get_address_host_port(address)            # before a Client: a half-made one hangs its exit
    except ValueError as e:
        raise ClusterError(f"--dask {address}: not a scheduler address like tcp://host:8786 ({e})") from None
    try:
        client = Client(address, set_as_default=False)
    except (OSError, ValueError, TypeError) as e:         # unreachable, refused, no scheduler there
        why = " ".join(str(e).split()) or type(e).__name__
        raise ClusterError(f"--dask {address}: cannot reach a Dask scheduler there ({why})") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        client.close()
        raise ClusterError(f"--dask {address}: the scheduler answers but no worker joined it "
                           f"within {timeout:g}s") from None
    if lacking := cannot_import(client):
        client.close()
        raise ClusterError(f"--dask {address}: cannot import minimanifold's cluster code there: {', '.join(lacking)}; "
                           f"install the same minimanifold with the dist extra there (docs/dask.md)")
    return Workers(client)
