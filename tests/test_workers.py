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


@pytest.mark.parametrize("parallel", [True, False])
def test_start_runs_beside_the_caller(monkeypatch, parallel):
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    job = workers.start(codes.muni_check_digit, "03201", parallel=parallel)
    assert job.result(timeout=60) == 8
    failing = workers.start(int, "x", parallel=parallel)
    assert isinstance(failing.exception(timeout=60), ValueError)
