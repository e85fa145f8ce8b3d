"""Independent jobs (a 名簿 workbook to parse, a prefecture to link) spread over the machine's cores.

Worker processes are never forked from this process: polars' thread pool does not survive a fork. The pools
fork from a fork server that has only imported the pipeline (_context, annex.preload); the helper of a
few-prefecture run is spawned (it imports, ~0.8 s, while the run goes on), so small runs stay in this process.
ANNEX_WORKERS=1 keeps everything in-process (debugging, profiling); ANNEX_WORKERS=N caps the workers.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
import types
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, Callable, Sequence


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fork server that has imported the pipeline once (a spawned worker spends ~0.8 s
    importing polars, pandera, duckdb …; a national run starts six). The server only imports: no polars thread
    pool exists in it yet, so forking it is safe (annex.preload says what else it does). Where there is no fork
    server (not Linux/macOS): spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["annex.preload"])
    return ctx


# CPython's cyclic garbage collector runs a young collection every 700 net allocations and rescans the older
# generations as they fill. A run holds millions of small objects that never form cycles (records being
# linked, cached name and address keys, report cells); rescanning them took ~20 % of the national linking.
# A young collection every 50,000 allocations still frees the few cycles made (tracebacks, frames) soon.
GC_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def fewer_collections():
    """GC_THRESHOLDS for the body (a run), the interpreter's own settings again after it."""
    old = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _worker_started() -> None:
    gc.set_threshold(*GC_THRESHOLDS)   # a worker process lives for the run's jobs only


def prestart() -> None:
    """Start the fork server now, so that its imports (~0.8 s) overlap what the run does before it first
    wants workers (finding what changed, reading the municipality master). It is started by the first worker
    otherwise; either way one per process, and it ends with the process."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver" and worker_count(2) >= 2:
        from multiprocessing import forkserver
        forkserver.ensure_running()


def worker_count(jobs: int) -> int:
    wanted = int(os.environ.get("ANNEX_WORKERS", "0") or 0) or (os.cpu_count() or 1)
    return max(1, min(wanted, jobs))


def map_jobs(func: Callable[..., Any], jobs: Sequence[Any], *, weights: Sequence[float] | None = None,
             parallel_from: int = 2, on_result: Callable[[int, Any], None] | None = None,
             prepare: Callable[[Any], tuple] | None = None,
             here: Callable[..., Any] | None = None) -> list[Any]:
    """[func(*job) for job in jobs], in worker processes when there are at least parallel_from jobs and more
    than one core. func must be a module-level function and the jobs picklable. Heaviest jobs start first
    (weights) so that the last one to finish is a small one; results come back in the jobs' order. An error
    in a job is raised here, as it would be in the loop. on_result(job index, result) is called here as each
    job finishes (to go on with its result while the workers finish the others). prepare: the arguments are
    prepare(job), made here just before the job is handed out, so that the workers start on the first job
    while the others are still being made. here: this process takes jobs too, as one of the workers, running
    here(*args) (func's work, returning what on_result wants without the pickling): it starts on the heaviest
    job at once, while the first worker is forked (the fork server may still be importing), and then takes
    the heaviest job no worker has started, until none is left; on_result is then called from whichever thread
    has the result (one at a time). Worth it where the jobs run without the interpreter lock (parsing): this
    process's own linking, beside the pickling of the jobs it hands out, was slower (README, session 16)."""
    def args(job: Any) -> tuple:
        return prepare(job) if prepare is not None else job
    workers = worker_count(len(jobs))
    if workers < 2 or len(jobs) < parallel_from:
        results = []
        for i, job in enumerate(jobs):
            results.append(func(*args(job)))
            if on_result is not None:
                on_result(i, results[-1])
        return results
    order = sorted(range(len(jobs)), key=lambda i: -(weights[i] if weights else 0))
    if here is not None:
        return _map_with_caller(func, here, jobs, order, workers - 1, args, on_result)
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_worker_started) as pool:
        with _bare_main():   # the workers start on the first submit
            futures = {i: pool.submit(func, *args(jobs[i])) for i in order}
        if on_result is not None:
            index_of = {future: i for i, future in futures.items()}
            for future in as_completed(index_of):
                on_result(index_of[future], future.result())
        return [futures[i].result() for i in range(len(jobs))]


def _map_with_caller(func: Callable[..., Any], here: Callable[..., Any], jobs: Sequence[Any], order: list[int],
                     workers: int, args: Callable[[Any], tuple], on_result: Callable[[int, Any], None] | None
                     ) -> list[Any]:
    """map_jobs with this process as one more worker (map_jobs' here). The jobs are taken from one list,
    heaviest first, by this process and by one thread per worker process, which hands a job to its worker and
    waits for it before taking the next. This process starts at once: a thread's first hand-out forks a worker,
    which waits for the fork server's imports. A worker's result is taken (on_result) as soon as it is back,
    while this process is busy with its own job; prepare runs in one thread at a time, and so does on_result
    (the two may overlap). After an error no job is started; the jobs under way are waited for and the first
    error is raised."""
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    todo = list(order)
    # two locks: a result being taken (on_result reads a parsed file back) never keeps another side from its next job
    taking, handing_over = threading.Lock(), threading.Lock()

    def take() -> tuple[int, tuple] | None:
        with taking:
            if errors or not todo:
                return None
            i = todo.pop(0)
            return i, args(jobs[i])

    def finish(i: int, value: Any) -> None:
        with handing_over:
            results[i] = value
            if on_result is not None:
                on_result(i, value)

    def run(runner: Callable[[int, tuple], Any], got: tuple[int, tuple] | None = None) -> None:
        try:
            if got is None:
                got = take()
            while got is not None:
                finish(got[0], runner(*got))
                got = take()
        except BaseException as exc:  # kept for the caller, as the loop would raise it
            with taking:
                errors.append(exc)

    with ProcessPoolExecutor(max(1, workers), mp_context=_context(), initializer=_worker_started) as pool:
        def by_worker(_: int, made: tuple) -> Any:
            with _bare_main():
                future = pool.submit(func, *made)
            return future.result()
        first = take()   # the heaviest job is this process's: it can start now, a worker only once forked
        feeders = [threading.Thread(target=run, args=(by_worker,), name=f"annex-feeder-{k}")
                   for k in range(max(1, workers))]
        for t in feeders:
            t.start()
        run(lambda _, made: here(*made), first)
        for t in feeders:
            t.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(jobs))]


@contextmanager
def _bare_main():
    """A spawned worker re-runs the parent's __main__ script unless the script guards itself with
    `if __name__ == "__main__"`; whoever calls the pipeline (a script, a notebook, a Prefect worker) need not
    know that: while the workers start, __main__ is an empty module, so they import only what func needs."""
    with _main_swapped:   # threads handing out jobs (map_jobs' here) swap it one at a time
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


_main_swapped = threading.Lock()


class Helper:
    """One worker process kept for a whole run of a few prefectures, where spawning a worker per stage would
    cost more than it saves. It is started as the run starts, so that its imports (~0.5 s) overlap the run's
    own first steps, and is then given the work that can go on beside this process: facility files parsed
    while the 名簿 parses here, part of the linking and the reports while the rest links here, the return
    workbooks while the database builds. Jobs run one after another, in the order submitted. Without a second
    core (or with ANNEX_WORKERS=1) each job runs at once in this process. A context manager: leaving it waits
    for the jobs submitted (cancels those not started when leaving on an error)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: list[Future] = []
        if worker_count(2) >= 2:
            # spawned, not forked from the fork server: a spawned process imports on its own while this one goes
            # on, where the first fork waits for the server's own imports (~0.5 s of the run's start)
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_started)
            with _bare_main():
                # the worker starts now and imports what the jobs need; it answers with its pid
                self._pid = self._pool.submit(_warm_up)

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def submit(self, func: Callable[..., Any], *args: Any) -> Future:
        if self._pool is None:
            return _run_here(func, *args)
        self._jobs.append(self._pool.submit(func, *args))
        return self._jobs[-1]

    def close(self, failed: bool = False) -> None:
        """Wait for the jobs submitted (failed: cancel those not started, wait for the one running). When
        every job has answered, the idle worker is stopped rather than left to tear its interpreter down
        (~0.2 s of a run's wall time): nothing of it is wanted any more."""
        if self._pool is None:
            return
        if not failed and all(job.done() for job in self._jobs) and self._pid.exception() is None:
            try:
                os.kill(self._pid.result(), signal.SIGTERM)
            except OSError:
                pass   # already gone
        self._pool.shutdown(wait=True, cancel_futures=failed)
        self._pool = None

    def __enter__(self) -> "Helper":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        self.close(failed=exc_type is not None)


def _warm_up() -> int:
    import annex.preload  # noqa: F401  (everything a job of the run imports, pandera's backends registered)
    return os.getpid()


def done(value: Any) -> Future:
    """A Future that already holds value (for a caller that takes either work under way or work done)."""
    future: Future = Future()
    future.set_result(value)
    return future


def _run_here(func: Callable[..., Any], *args: Any) -> Future:
    done: Future = Future()
    try:
        done.set_result(func(*args))
    except Exception as exc:  # kept for result(), as the worker would
        done.set_exception(exc)
    return done


def start(func: Callable[..., Any], *args: Any, parallel: bool = True) -> Future:
    """func(*args) in one worker process, while the caller goes on with something else (the annex workbooks
    are written from the database while the return workbooks are written here). Without a second core, or
    with parallel=False, it runs right away in this process. Either way a Future: result() waits for it."""
    if not parallel or worker_count(2) < 2:
        return _run_here(func, *args)
    pool = ProcessPoolExecutor(1, mp_context=_context(), initializer=_worker_started)
    with _bare_main():
        future = pool.submit(func, *args)
    pool.shutdown(wait=False)   # the job runs on; the worker exits when it is done
    return future
