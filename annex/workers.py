"""Independent jobs (a 名簿 workbook to parse, a prefecture to link) spread over the machine's cores.

Worker processes are spawned, not forked: polars' thread pool does not survive a fork. A worker costs about a
second to start (imports), so small runs stay in this process. ANNEX_WORKERS=1 keeps everything in-process
(debugging, profiling); ANNEX_WORKERS=N caps the workers.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import types
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Sequence


def worker_count(jobs: int) -> int:
    wanted = int(os.environ.get("ANNEX_WORKERS", "0") or 0) or (os.cpu_count() or 1)
    return max(1, min(wanted, jobs))


def map_jobs(func: Callable[..., Any], jobs: Sequence[tuple], *, weights: Sequence[float] | None = None,
             parallel_from: int = 2) -> list[Any]:
    """[func(*job) for job in jobs], in worker processes when there are at least parallel_from jobs and more
    than one core. func must be a module-level function and the jobs picklable. Heaviest jobs start first
    (weights) so that the last one to finish is a small one; results come back in the jobs' order. An error
    in a job is raised here, as it would be in the loop."""
    workers = worker_count(len(jobs))
    if workers < 2 or len(jobs) < parallel_from:
        return [func(*job) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -(weights[i] if weights else 0))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        with _bare_main():   # the workers start on the first submit
            futures = {i: pool.submit(func, *jobs[i]) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


@contextmanager
def _bare_main():
    """A spawned worker re-runs the parent's __main__ script unless the script guards itself with
    `if __name__ == "__main__"`; whoever calls the pipeline (a script, a notebook, a Prefect worker) need not
    know that: while the workers start, __main__ is an empty module, so they import only what func needs."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def start(func: Callable[..., Any], *args: Any, parallel: bool = True) -> Future:
    """func(*args) in one worker process, while the caller goes on with something else (the annex workbooks
    are written from the database while the return workbooks are written here). Without a second core, or
    with parallel=False, it runs right away in this process. Either way a Future: result() waits for it."""
    if not parallel or worker_count(2) < 2:
        done: Future = Future()
        try:
            done.set_result(func(*args))
        except Exception as exc:  # kept for result(), as the worker would
            done.set_exception(exc)
        return done
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    with _bare_main():
        future = pool.submit(func, *args)
    pool.shutdown(wait=False)   # the job runs on; the worker exits when it is done
    return future
