"""annex.workers: jobs in spawned worker processes give the loop's results, in order, from any caller."""
import os
import subprocess
import sys

import pytest

from annex import codes, workers


def test_results_in_job_order_and_errors_raised(monkeypatch):
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    jobs = [("03201",), ("39201",), ("13101",), ("01100",)]
    got = workers.map_jobs(codes.muni_check_digit, jobs, weights=[1, 9, 5, 3])   # heaviest first, order kept
    assert got == [codes.muni_check_digit(*j) for j in jobs]
    with pytest.raises(ValueError):
        workers.map_jobs(int, [("1",), ("x",)])


@pytest.mark.parametrize("processes", ["1", "2"])
def test_each_result_is_handed_over_as_its_job_finishes(monkeypatch, processes):
    """on_result sees every job once, with its own index and result (read_reference reads each parsed file
    while the workers parse the others), in worker processes and in the loop alike."""
    monkeypatch.setenv("ANNEX_WORKERS", processes)
    jobs = [("03201",), ("39201",), ("13101",), ("01100",)]
    seen: dict[int, int] = {}
    got = workers.map_jobs(codes.muni_check_digit, jobs, weights=[1, 9, 5, 3],
                           on_result=lambda i, r: seen.__setitem__(i, r) if i not in seen else pytest.fail("twice"))
    assert seen == dict(enumerate(got)) and got == [codes.muni_check_digit(*j) for j in jobs]


def _pid_and_digit(code: str) -> tuple[int, int]:
    return os.getpid(), codes.muni_check_digit(code)


@pytest.mark.parametrize("processes", ["2", "3"])
def test_the_caller_takes_jobs_too(monkeypatch, processes):
    """here=: this process runs jobs with here() beside the workers (read_reference parses the largest 名簿
    while the worker is forked) — every job once, by one side or the other, results in the jobs' order, and
    on_result for each, never two at a time."""
    import threading
    import time
    monkeypatch.setenv("ANNEX_WORKERS", processes)
    jobs = [(c,) for c in ("03201", "39201", "13101", "01100", "27100", "40130", "23100", "04100")]
    here_took: list[str] = []
    seen: dict[int, tuple] = {}
    busy = threading.Lock()

    def here(code: str) -> tuple[int, int]:
        here_took.append(code)
        time.sleep(0.05)   # long enough for the workers to take some jobs
        return os.getpid(), codes.muni_check_digit(code)

    def taken(i: int, result: tuple) -> None:
        assert busy.acquire(blocking=False), "on_result called from two threads at once"
        try:
            assert i not in seen
            seen[i] = result
            time.sleep(0.01)
        finally:
            busy.release()
    got = workers.map_jobs(_pid_and_digit, jobs, weights=[8, 7, 6, 5, 4, 3, 2, 1], on_result=taken, here=here)
    assert [digit for _, digit in got] == [codes.muni_check_digit(*j) for j in jobs]
    assert seen == dict(enumerate(got))
    by_here = {jobs[i][0] for i, (pid, _) in enumerate(got) if pid == os.getpid()}
    assert by_here == set(here_took) and 0 < len(by_here) < len(jobs)   # both sides worked, each job once
    assert here_took[0] == "03201"   # the heaviest is the caller's: it starts at once, a worker once forked
    assert len({pid for pid, _ in got}) >= 2


def test_an_error_on_either_side_is_raised_and_no_job_started_after_it(monkeypatch):
    import time
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    started: list[str] = []

    def failing(value: str) -> int:
        started.append(value)
        raise ValueError(value)
    with pytest.raises(ValueError):   # the caller's own job fails: it takes no other
        workers.map_jobs(int, [(str(n),) for n in range(20)], here=failing)
    assert len(started) == 1

    def slow(value: str) -> int:
        started.append(value)
        time.sleep(0.05)   # 400 of them: 20 s, far longer than forking the worker
        return 0
    started.clear()
    with pytest.raises(ValueError):   # a worker's job fails (its first, once forked): the caller stops too
        workers.map_jobs(int, [("x",)] * 400, here=slow)
    assert 0 < len(started) < 399   # without stopping, the caller would run all but the worker's one


def test_one_worker_stays_in_process(monkeypatch):
    monkeypatch.setenv("ANNEX_WORKERS", "1")
    seen = []
    assert workers.map_jobs(lambda x: seen.append(x) or x * 2, [(1,), (2,)]) == [2, 4]   # a lambda: no pickling
    assert seen == [1, 2]


def test_a_script_without_main_guard_can_use_workers(tmp_path):
    """spawn re-runs an unguarded __main__ script in each worker (recursion / RuntimeError) unless prevented."""
    script = tmp_path / "unguarded.py"
    script.write_text("from annex import workers, codes\n"
                      "print(workers.map_jobs(codes.muni_check_digit, [('03201',), ('39201',)]))\n", encoding="utf-8")
    env = {**os.environ, "ANNEX_WORKERS": "2"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[8, 4]"


def test_the_fork_servers_preload_registers_pandera_without_starting_threads():
    """annex.preload runs in the fork server: what it does there each worker need not do again (pandera's
    backends: validate() then finds them registered), and it must start no thread — polars' pool does not
    survive the fork, and validating even an empty frame starts it."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("the thread count is read from /proc")
    code = ("import annex.pipeline\n"
            "def threads():\n"
            "    return next(l for l in open('/proc/self/status') if l.startswith('Threads:'))\n"
            "before = threads()\n"
            "import annex.preload\n"
            "after = threads()\n"
            "from pandera.backends.polars.register import register_polars_backends as register\n"
            "registered = register.cache_info().misses\n"
            "import pandera.polars as pa, polars as pl\n"
            "pa.DataFrameSchema({'a': pa.Column(int)}).validate(pl.DataFrame({'a': [1]}))\n"
            "print(before == after, registered, register.cache_info().misses)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "1", "1"]   # no new thread; registered once, and validate() reused it


@pytest.mark.parametrize("parallel", [True, False])
def test_start_runs_beside_the_caller(monkeypatch, parallel):
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    job = workers.start(codes.muni_check_digit, "03201", parallel=parallel)
    assert job.result(timeout=60) == 8
    failing = workers.start(int, "x", parallel=parallel)
    assert isinstance(failing.exception(timeout=60), ValueError)


def _outputs(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.xlsx"))


def test_national_style_run_writes_the_same_outputs(tmp_path, monkeypatch):
    """With "many" prefectures the prefectures are linked and their reports checked in workers, which write the
    return workbooks too: the same workbooks and table counts as the in-process run."""
    import duckdb
    from annex import pipeline
    from conftest import RAW
    monkeypatch.setenv("ANNEX_WORKERS", "1")
    serial = pipeline.run(RAW, tmp_path / "serial")
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 2)
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    parallel = pipeline.run(RAW, tmp_path / "parallel")
    for key in ("facility_links", "institutions", "report_files", "institution_reports", "hub_reports", "errors",
                "warnings"):
        assert parallel[key] == serial[key], key
    assert _outputs(tmp_path / "parallel") == _outputs(tmp_path / "serial") and len(_outputs(tmp_path / "serial")) > 10
    con = duckdb.connect(str(tmp_path / "parallel" / "annex.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM report_files").fetchone()[0] > 10


def test_fork_server_started_at_once_only_when_everything_is_rebuilt(tmp_path, monkeypatch):
    """A national run with no build to compare with starts the fork server before hashing its inputs; a run
    that may find nothing changed, or one of a few prefectures, does not start it early."""
    from annex import pipeline, runs
    from conftest import RAW
    out = tmp_path / "out"
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 2)            # the sample's two prefectures count as many
    assert pipeline._rebuilds_everything(RAW, out, None, False)
    assert not pipeline._rebuilds_everything(RAW, out, ["03"], False)
    monkeypatch.setattr(runs, "last_success", lambda _out: {"outcome": "success"})
    assert not pipeline._rebuilds_everything(RAW, out, None, False)
    assert pipeline._rebuilds_everything(RAW, out, None, True)
    started = []
    monkeypatch.setattr(pipeline.workers, "prestart", lambda: started.append(True))
    monkeypatch.setattr(runs, "last_success", lambda _out: None)
    monkeypatch.setattr(runs, "manifest", lambda *a: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.run(RAW, out)
    assert started == [True]   # before the inputs were hashed (manifest)


def test_failed_build_discards_the_returns_written_beside_it(tmp_path, monkeypatch):
    from annex import pipeline, warehouse
    from conftest import RAW
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 2)
    monkeypatch.setenv("ANNEX_WORKERS", "2")

    def broken(*args, **kwargs):
        raise OSError("disk gone")
    monkeypatch.setattr(warehouse, "build", broken)
    with pytest.raises(OSError):
        pipeline.run(RAW, tmp_path)
    assert not list(tmp_path.glob(".returns-*")) and not (tmp_path / "returns").exists()
    assert not (tmp_path / "annex.duckdb").exists()


def test_helper_runs_jobs_in_another_process_and_stops_when_done(monkeypatch):
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    with workers.Helper() as helper:
        assert helper.parallel
        pid = helper.submit(os.getpid).result(timeout=60)
        assert pid != os.getpid()
        jobs = [helper.submit(codes.muni_check_digit, c) for c in ("03201", "39201", "13101")]
        assert [j.result(timeout=60) for j in jobs] == [codes.muni_check_digit(c) for c in ("03201", "39201", "13101")]
        assert isinstance(helper.submit(int, "x").exception(timeout=60), ValueError)
    # every job had answered: the idle worker was stopped (and reaped), not left to run on
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_helper_without_a_second_core_runs_each_job_here(monkeypatch):
    monkeypatch.setenv("ANNEX_WORKERS", "1")
    with workers.Helper() as helper:
        assert not helper.parallel
        assert helper.submit(os.getpid).result() == os.getpid()
        assert isinstance(helper.submit(int, "x").exception(), ValueError)


def _tables(db):
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main' AND table_name <> 'runs' ORDER BY 1").fetchall()]
        return {n: con.execute(f'SELECT * FROM "{n}"').fetchall() for n in names}
    finally:
        con.close()


def test_run_with_a_helper_gives_the_same_tables_and_workbooks(tmp_path, monkeypatch):
    """A run of a few prefectures with a helper process (reference files parsed beside the 名簿, reports checked
    and part of the municipalities linked beside the rest, return workbooks beside the database build): every
    table and workbook as the run without it."""
    from annex import pipeline
    from conftest import RAW
    monkeypatch.setenv("ANNEX_WORKERS", "1")
    pipeline.run(RAW, tmp_path / "serial")
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    monkeypatch.setattr(pipeline, "HELPER_BYTES", 0)          # the sample is small: helped anyway
    monkeypatch.setattr(pipeline, "SPLIT_FROM_RECORDS", 0)
    submitted, splits = [], []
    submit, split = workers.Helper.submit, pipeline.split_blocks
    monkeypatch.setattr(workers.Helper, "submit", lambda self, f, *a: submitted.append(f.__name__) or submit(self, f, *a))
    monkeypatch.setattr(pipeline, "split_blocks", lambda *a: splits.append(split(*a)) or splits[-1])
    pipeline.run(RAW, tmp_path / "helped")
    assert {"_parse_into_cache", "reports_of", "link_frames", "prepare"} <= set(submitted)
    assert len(splits) == 2 and all(splits)                    # both prefectures linked in two parts
    serial, helped = _tables(tmp_path / "serial" / "annex.duckdb"), _tables(tmp_path / "helped" / "annex.duckdb")
    assert serial.keys() == helped.keys() and len(serial) > 20
    for name in serial:
        assert helped[name] == serial[name], name
    assert _outputs(tmp_path / "helped") == _outputs(tmp_path / "serial")


def test_batches_heaviest_first_small_at_the_end():
    """National linking goes to the workers in batches (fewer pandera calls): every prefecture once, the big
    ones in the first batches, the last batches single small prefectures so that no worker finishes alone."""
    from pathlib import Path
    from annex import pipeline
    from annex.reference import Prefecture
    # shaped like the country: a few big prefectures, many small ones
    weights = {f"{i:02d}": w for i, w in enumerate([140, 95, 90, 80, 60, 50, *[20] * 25, *[10] * 10], 1)}
    prefs = [Prefecture(code, code, Path(code)) for code in weights]
    batches = pipeline.batches_of(prefs, weights, 2)
    assert sorted(p.code for b in batches for p in b) == sorted(weights)
    sizes = [sum(weights[p.code] for p in b) for b in batches]
    assert len(batches) <= len(prefs) / 2 and len(batches[-1]) == 1 and sizes[-1] == 10
    assert sizes[0] == max(sizes) <= sum(sizes) / 4                  # a worker's half share at most
    flat = [weights[p.code] for b in batches for p in b]
    assert flat == sorted(flat, reverse=True)
    assert pipeline.batches_of(prefs, weights, 1)[0][0].code == "01" and pipeline.batches_of([], {}, 2) == []
