"""Faults (issue #7): the process killed at each stage, a full disk, a read-only output folder, a reader holding
annex.duckdb, the Prefect server down, a download killed half-way. Each test states what the outputs are
afterwards (the previous ones byte for byte, or precisely which new ones) and that the next run succeeds.

Deterministic, not timed: every fault runs in a child process (`python -c`) that patches the function at the
exact stage to SIGKILL itself (or to fail) and then runs the refresh. The children start from a copy of one good
baseline output folder and run side by side (fixture `faulted`), so that the module stays well under 90 s.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from annex import pipeline, returns, runs, warehouse
from annex.fetch import fetch_all, fetch_lock
from annex.reference import facility_file_plan
from tests.conftest import RAW, ROOT

ANNEX_BOOKS = ["03_岩手県_在宅医療_別表.xlsx", "39_高知県_在宅医療_別表.xlsx", "全国_在宅医療_集計.xlsx"]
VISIBLE = sorted([*ANNEX_BOOKS, "annex.duckdb", "returns", "runs.jsonl"])
NOT_OUTPUTS = {".annex.lock", ".cache"}          # the lock file and the parse cache stay; neither is an output
COUNTED = ("facility_links", "annex_institutions", "annex_hubs", "findings", "source_files")
HEX = "[0-9a-f]{32}"

# every child starts with this: the paths, and how to die at a stage
PRELUDE = """
import os, signal, sys
from pathlib import Path
raw, out = Path(sys.argv[1]), Path(sys.argv[2])

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""
# then the patch of the scenario, then one of these
RUN_FORCED = """
from annex import pipeline
pipeline.run(raw, out, force=True)
sys.exit(3)   # not killed: the patch did not fire (the test fails on the return code)
"""
CLI_FORCED = """
from annex.cli import main
sys.exit(main(["refresh", "--raw", str(raw), "--out", str(out), "--force", "--no-prefect", "--quiet"]))
"""


# ------------------------------------------------------------------------------------------------- helpers

def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def output_files(out: Path) -> dict[str, Path]:
    """Every output a reader uses: the database, the run log, the annex workbooks, the return workbooks."""
    files = [out / "annex.duckdb", out / "runs.jsonl", *out.glob("*.xlsx"), *(out / "returns").glob("*.xlsx")]
    return {str(p.relative_to(out)): p for p in files if p.exists()}


def hashes(out: Path) -> dict[str, str]:
    return {k: sha(p) for k, p in output_files(out).items()}


def visible(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def leftovers(out: Path) -> list[str]:
    """Hidden files a run left in out/, by kind (names carry random ids)."""
    kinds = []
    for p in out.iterdir():
        if p.name in NOT_OUTPUTS or not p.name.startswith("."):
            continue
        for pattern, kind in ((rf"\.annex\.duckdb\.{HEX}\.tmp", "db"), (rf"\.annex\.duckdb\.{HEX}\.tmp\.wal", "db.wal"),
                              (rf"\.annex\.duckdb\.{HEX}\.tmp\.stage", "db.stage"),
                              (rf"\.(.+\.xlsx)\.{HEX}\.tmp", r"part:\1"), (rf"\.returns-{HEX}\.tmp", "returns"),
                              (rf"\.returns-old-{HEX}", "returns-old")):
            if re.fullmatch(pattern, p.name):
                kinds.append(re.sub(pattern, kind, p.name))
                break
        else:
            kinds.append(p.name)
    return sorted(kinds)


def db_state(out: Path) -> dict:
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    try:
        state = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}
        state["runs"] = con.execute("SELECT run_id, outcome FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    return state


def lock_is_free(out: Path) -> bool:
    try:
        with runs.lock(out):   # wait=0: Busy at once if anyone holds it
            return True
    except runs.Busy:
        return False


def outcomes(out: Path) -> list[str]:
    return [r["outcome"] for r in runs.history(out)]


def unchanged(raw: Path, out: Path) -> bool:
    """Would a refresh without --force take the outputs as the last good run's (and rebuild nothing)?"""
    return pipeline.unchanged_since(out, runs.fingerprint(raw, None, None), False) is not None


def child(code: str, *args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ baseline

@dataclass
class Baseline:
    raw: Path
    out: Path
    hashes: dict[str, str]
    state: dict
    log: bytes


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Baseline:
    """One good run on both sample prefectures (3 annex workbooks, 13 return workbooks): 'the previous outputs'."""
    base = tmp_path_factory.mktemp("baseline")
    raw, out = base / "raw", base / "out"
    shutil.copytree(RAW, raw, ignore=shutil.ignore_patterns("*.py", "README.md"))
    pipeline.run(raw, out)
    assert visible(out) == VISIBLE and outcomes(out) == ["success"]
    assert len(list((out / "returns").glob("*.xlsx"))) == 13
    return Baseline(raw, out, hashes(out), db_state(out), (out / "runs.jsonl").read_bytes())


def copy_of(baseline: Baseline, dst: Path) -> Path:
    out = dst / "out"
    shutil.copytree(baseline.out, out)   # copy2: the baseline files keep their modification times
    return out


# ------------------------------------------------------------------------------- the faults, side by side

# SIGKILL at a stage of a forced rebuild (inputs unchanged). "previous": killed before the database swap, every
# output is the previous one byte for byte. "database": killed right after it, annex.duckdb is new and nothing
# else. "new": killed after every swap but before the success line, every output is new.
KILLS = {
    "build-before-checkpoint": ("""
        import duckdb
        from annex import warehouse
        class Con:                      # the new file's connection, dying when asked to CHECKPOINT
            def __init__(self, con): self._con = con
            def __getattr__(self, name): return getattr(self._con, name)
            def execute(self, sql, *args):
                if sql == "CHECKPOINT":
                    die()
                return self._con.execute(sql, *args)
        class DuckDB:
            def __getattr__(self, name): return getattr(duckdb, name)
            def connect(self, *args, **kwargs): return Con(duckdb.connect(*args, **kwargs))
        warehouse.duckdb = DuckDB()
        """, "previous", ["db", "db.stage", "db.wal"]),
    "publish-before-replace": ("""
        import os as real_os
        from annex import warehouse
        class OS:                       # warehouse's os: dies right before replacing annex.duckdb
            def __getattr__(self, name): return getattr(real_os, name)
            def replace(self, src, dst):
                if Path(dst).name == "annex.duckdb":
                    die()
                real_os.replace(src, dst)
        warehouse.os = OS()
        """, "previous", ["db", *(f"part:{b}" for b in ANNEX_BOOKS), "returns"]),
    "publish-after-replace": ("""
        import os as real_os
        from annex import warehouse
        class OS:                       # ... and right after it
            def __getattr__(self, name): return getattr(real_os, name)
            def replace(self, src, dst):
                real_os.replace(src, dst)
                if Path(dst).name == "annex.duckdb":
                    die()
        warehouse.os = OS()
        """, "database", [*(f"part:{b}" for b in ANNEX_BOOKS), "returns"]),
    "annex-after-first-workbook": ("""
        from annex import annex_workbook
        real = annex_workbook.write_annex
        def write_annex(*args, **kwargs):
            real(*args, **kwargs)
            die()
        annex_workbook.write_annex = write_annex
        """, "previous", ["db", f"part:{ANNEX_BOOKS[0]}"]),
    "returns-after-first-workbook": ("""
        from annex import returns
        real = returns._write_one
        def write_one(*args, **kwargs):
            real(*args, **kwargs)
            die()
        returns._write_one = write_one
        """, "previous", ["db", *(f"part:{b}" for b in ANNEX_BOOKS), "returns"]),
    "before-success-line": ("""
        from annex import runs
        real = runs.record
        def record(out, run, outcome, *args, **kwargs):
            if outcome == "success":
                die()
            return real(out, run, outcome, *args, **kwargs)
        runs.record = record
        """, "new", []),
}

# a failed write: the CLI (without Prefect) exits 1 with one Japanese line
DROP_DAC = """
import ctypes
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
libc = ctypes.CDLL(None, use_errno=True)
header, data = Header(0x20080522, 0), (Data * 2)()
if libc.capget(ctypes.byref(header), data) != 0:
    sys.exit(97)
keep = ~((1 << 1) | (1 << 2) | (1 << 3)) & 0xFFFFFFFF    # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
data[0].effective &= keep
data[0].permitted &= keep
if libc.capset(ctypes.byref(header), data) != 0:
    sys.exit(97)
"""


def disk_full(files: str, after: int) -> str:
    """A patch: the file objects the workbooks `files` (a condition on the path `file`) are written into fail
    with ENOSPC once `after` bytes are written: those of xlsxwriter's zip writer (the annex workbooks) and of
    annex.xlsx_pack (the return workbooks), the lowest points Python code can reach (xlsxwriter wraps the
    error in its FileCreateError)."""
    return f"""
        import errno, io, zipfile
        import xlsxwriter.workbook
        import annex.xlsx_pack
        class Full(io.FileIO):
            written = 0
            def write(self, b):
                if self.written + len(b) > {after}:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
                self.written += len(b)
                return super().write(b)
        def ZipFile(file, *args, **kwargs):
            if isinstance(file, str) and {files}:
                file = Full(file, "w")
            return zipfile.ZipFile(file, *args, **kwargs)
        def open_packed(file, mode="r", *args, **kwargs):
            file = os.fspath(file)
            if "w" in mode and {files}:
                return Full(file, "w")
            return io.open(file, mode, *args, **kwargs)
        xlsxwriter.workbook.ZipFile = ZipFile
        annex.xlsx_pack.open = open_packed
        """


FAILURES = {
    # a real file size limit: the kernel refuses writes past 2 MB with EFBIG (annex.duckdb is ~7 MB)
    "file-size-limit": ("""
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
        """, "ファイルの大きさの上限を超えたため書き込めませんでした", rf"\.annex\.duckdb\.{HEX}\.tmp\.wal",
        "ulimit -f またはファイルシステムの上限を確認してください。"),   # the tables go to the WAL first
    # the disk fills up while the first annex workbook is written (its zip stream fails after 4 KB)
    "disk-full-workbook": (disk_full('Path(file).parent == out and file.endswith(".tmp")', 4096),
                           "ディスクの空き容量が足りないため書き込めませんでした",
                           rf"\.03_岩手県_在宅医療_別表\.xlsx\.{HEX}\.tmp", "空きを作ってから再実行してください。"),
    # ... while the first return workbook is written, in the hidden folder that replaces returns/ (after 1 KB)
    "disk-full-returns": (disk_full('Path(file).parent.name.startswith(".returns-")', 1024),
                          "ディスクの空き容量が足りないため書き込めませんでした",
                          rf"\.returns-{HEX}\.tmp/(?:03|39)_[^/]+\.xlsx", "空きを作ってから再実行してください。"),
    # out/ is chmod 0555; as root the child first gives up the capabilities that ignore file permissions
    "read-only-folder": ("if os.geteuid() == 0:\n" + textwrap.indent(DROP_DAC, "    "),
                         "書き込む権限がないため書き込めませんでした", rf"\.annex\.duckdb\.{HEX}\.tmp",
                         "出力フォルダの権限を確認してください。"),
}


@dataclass
class Faulted:
    out: Path
    proc: subprocess.CompletedProcess
    started: int            # time.time_ns() when the child started
    extra: dict


@pytest.fixture(scope="module")
def faulted(baseline, tmp_path_factory) -> dict[str, Faulted]:
    """Every child-process fault, each on its own copy of the baseline outputs, run side by side."""
    base = tmp_path_factory.mktemp("faults")
    jobs: dict[str, tuple] = {}
    for name, (patch, *_) in KILLS.items():
        jobs[name] = (copy_of(baseline, base / name), textwrap.dedent(patch) + RUN_FORCED, None, {})
    for name, (patch, *_) in FAILURES.items():
        jobs[name] = (copy_of(baseline, base / name), textwrap.dedent(patch) + CLI_FORCED, None, {})
    os.chmod(jobs["read-only-folder"][0], 0o555)
    # the real CLI, with PREFECT_API_URL pointing at a port nobody listens on
    port = closed_port()
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_HOME": str(base / "prefect")}
    jobs["prefect-down"] = (copy_of(baseline, base / "prefect-down"), CLI_FORCED.replace(', "--no-prefect"', ""),
                            env, {"port": port})

    def start(name):
        out, code, env, extra = jobs[name]
        started = time.time_ns()
        proc = child(code, baseline.raw, out, env=env)
        return Faulted(out, proc, started, extra)

    try:
        with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
            done = dict(zip(jobs, pool.map(start, jobs)))
    finally:
        os.chmod(jobs["read-only-folder"][0], 0o755)
    return done


# --------------------------------------------------------------------------------------------------- kills

@pytest.mark.parametrize("stage", list(KILLS))
def test_killed_at_stage(baseline, faulted, stage):
    """SIGKILL at one stage of a rebuild; replaces the old kill-after-0.8/2.5/4.5-s tests (which could not say
    which stage they hit)."""
    _, expected, left = KILLS[stage]
    f = faulted[stage]
    out, raw = f.out, baseline.raw
    assert f.proc.returncode == -9, f.proc.stderr[-3000:]
    now = hashes(out)
    assert now.keys() == baseline.hashes.keys()
    assert visible(out) == VISIBLE                              # nothing temporary where readers look
    assert leftovers(out) == sorted(left)                       # only hidden temporaries, removed by the next run
    assert (out / "runs.jsonl").read_bytes() == baseline.log    # a killed run writes no line
    assert lock_is_free(out)                                    # flock died with the process
    books = [k for k in now if k.endswith(".xlsx")]
    if expected == "previous":
        assert now == baseline.hashes                           # every previous output, byte for byte
        assert unchanged(raw, out)                              # ... and they are the last good run's
        result = pipeline.run(raw, out, force=True)
    else:
        state = db_state(out)
        assert now["annex.duckdb"] != baseline.hashes["annex.duckdb"]
        # the killed run's complete database: same content, one run more, listed as successful by itself
        assert {t: state[t] for t in COUNTED} == {t: baseline.state[t] for t in COUNTED}
        assert state["runs"][:-1] == baseline.state["runs"] and state["runs"][-1][1] == "success"
        killed_id = state["runs"][-1][0]
        assert killed_id not in {r["run_id"] for r in runs.history(out)}
        assert warehouse.built_by(out / "annex.duckdb") == killed_id != runs.last_built(out)
        written = {k for k in books if output_files(out)[k].stat().st_mtime_ns >= f.started}
        if expected == "database":   # returns and annex workbooks are swapped in after the database: still old
            assert {k: now[k] for k in books} == {k: baseline.hashes[k] for k in books} and written == set()
        else:                        # every workbook was swapped in: all from the killed run
            assert written == set(books)
        # the log does not vouch for these outputs: the next refresh rebuilds although nothing changed
        assert not unchanged(raw, out)
        result = pipeline.run(raw, out)
    assert not result["unchanged"]
    assert outcomes(out) == ["success", "success"]
    assert warehouse.built_by(out / "annex.duckdb") == runs.last_built(out) == runs.history(out)[-1]["run_id"]
    assert leftovers(out) == [] and visible(out) == VISIBLE
    assert hashes(out).keys() == baseline.hashes.keys()
    state = db_state(out)
    assert {t: state[t] for t in COUNTED} == {t: baseline.state[t] for t in COUNTED}
    assert [r[1] for r in state["runs"]] == ["success", "success"]


# ---------------------------------------------------------------------------------------- failed writes

@pytest.mark.parametrize("fault", list(FAILURES))
def test_failed_write(baseline, faulted, fault):
    """Disk full / file size limit / read-only folder: exit 1 with one Japanese line naming the problem and the
    file, every previous output byte for byte, no temporary file, the failure in runs.jsonl, then a good run.

    file-size-limit: RLIMIT_FSIZE (SIGXFSZ ignored), so the kernel returns EFBIG to DuckDB's writes.
    disk-full-workbook: an OSError(ENOSPC) from the file object xlsxwriter's zip writer writes the first annex
    workbook into (the lowest point Python code can reach; xlsxwriter wraps it in its FileCreateError).
    disk-full-returns: the same for the first return workbook (from the file annex.xlsx_pack writes it into),
    in the hidden folder that replaces returns/.
    read-only-folder: chmod 0555 on out/. As root (where permissions do not stop writes) the child drops
    CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER with capset(2) before anything else, so the kernel
    enforces the mode for real; nothing is injected."""
    _, problem, path, todo = FAILURES[fault]
    f = faulted[fault]
    out, raw = f.out, baseline.raw
    assert f.proc.returncode == 1, f.proc.stderr[-3000:]
    assert "Traceback" not in f.proc.stderr
    last = f.proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"エラー: {re.escape(problem)}（{re.escape(str(out))}/{path}）。{re.escape(todo)}前回の出力はそのまま残っています。"
                        rf"（記録: {re.escape(str(out / 'runs.jsonl'))}）", last), last
    now = hashes(out)
    assert {k: v for k, v in now.items() if k != "runs.jsonl"} == \
        {k: v for k, v in baseline.hashes.items() if k != "runs.jsonl"}
    assert visible(out) == VISIBLE and leftovers(out) == []     # nothing half-written, nothing left over
    log = (out / "runs.jsonl").read_bytes()
    assert log.startswith(baseline.log)                          # one line more, the earlier ones untouched
    failed = runs.history(out)[-1]
    assert outcomes(out) == ["success", "failed"] and failed["error"].startswith(problem)
    assert lock_is_free(out) and unchanged(raw, out)
    result = pipeline.run(raw, out, force=True)
    assert not result["unchanged"] and outcomes(out) == ["success", "failed", "success"]
    assert [r[1] for r in db_state(out)["runs"]] == ["success", "failed", "success"]
    assert visible(out) == VISIBLE and leftovers(out) == []


def test_prefect_server_down(baseline, faulted):
    """`annex refresh` with PREFECT_API_URL naming a server that is down: a Japanese warning, then the same
    refresh without Prefect; the outputs are those of a good run."""
    f = faulted["prefect-down"]
    out = f.out
    assert f.proc.returncode == 0, f.proc.stderr[-3000:]
    url = f"http://127.0.0.1:{f.extra['port']}/api"
    assert f"警告: Prefect サーバー（{url}）に接続できません（ConnectError:" in f.proc.stderr
    assert "Prefect を使わずに、このコンピューターで直接実行します" in f.proc.stderr
    assert f.proc.stdout.startswith(f"出力: {out / 'annex.duckdb'}\n")
    assert outcomes(out) == ["success", "success"]
    assert warehouse.built_by(out / "annex.duckdb") == runs.last_built(out) == runs.history(out)[-1]["run_id"]
    state = db_state(out)
    assert {t: state[t] for t in COUNTED} == {t: baseline.state[t] for t in COUNTED}
    assert visible(out) == VISIBLE and leftovers(out) == []
    assert all(p.stat().st_mtime_ns >= f.started for k, p in output_files(out).items() if k.endswith(".xlsx"))


# ------------------------------------------------------------------------------------------------ readers

def test_reader_holding_the_database(baseline, tmp_path):
    """A Python reader (duckdb.connect(..., read_only=True)) and the DuckDB CLI (`duckdb -readonly`) hold the
    file open in other processes during a refresh: the refresh succeeds, both still read the old file through
    their open connection, a new connection reads the new one."""
    out = copy_of(baseline, tmp_path)
    db = out / "annex.duckdb"
    query = "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1"
    old_id = baseline.state["runs"][-1][0]
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect(sys.argv[1], read_only=True)
            print(con.execute("{query}").fetchone()[0], flush=True)
            sys.stdin.readline()
            print(con.execute("{query}").fetchone()[0], con.execute("SELECT count(*) FROM runs").fetchone()[0])
            """), str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cli = Path(sys.executable).with_name("duckdb")   # the duckdb-cli package's command, as in the README
    shell = subprocess.Popen([str(cli), "-readonly", "-csv", "-noheader", str(db)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == old_id
        shell.stdin.write(f"{query};\n")     # the CLI opens the file on its first statement
        shell.stdin.flush()
        assert shell.stdout.readline().strip() == old_id
        result = pipeline.run(baseline.raw, out, force=True)
        new_id = runs.history(out)[-1]["run_id"]
        assert not result["unchanged"] and new_id != old_id and outcomes(out) == ["success", "success"]
        held, _ = reader.communicate(input="\n", timeout=20)
        assert held.split() == [old_id, "1"]                    # the old file, through the open connection
        shell_out, shell_err = shell.communicate(input=f"{query};\n.quit\n", timeout=20)
        assert shell_out.split() == [old_id], shell_err       # the same open connection: still the old file
    finally:
        for p in (reader, shell):
            if p.poll() is None:
                p.kill()
                p.wait()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(query).fetchone()[0] == new_id
    con.close()
    assert reader.returncode == 0 and shell.returncode == 0


# ----------------------------------------------------------------------------------------------- run log

def test_torn_run_log_line_does_not_swallow_the_next(baseline, tmp_path):
    """The disk fills up in the middle of a runs.jsonl line (a real RLIMIT_FSIZE 100 bytes past its end): the
    failed run says so on stderr without hiding its own error, the torn line is skipped, and the next run's line
    starts on a line of its own instead of being glued to it."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(baseline.out / "runs.jsonl", out / "runs.jsonl")
    limit = len(baseline.log) + 100
    proc = child(f"""
        import errno, resource
        from annex import runs
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        exc = OSError(errno.ENOSPC, "No space left on device", str(out / "annex.duckdb"))
        print(runs.record_failure(out, runs.start(raw, out, None), exc))
        """, baseline.raw, out)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr
    assert proc.stderr.strip() == (f"警告: 実行記録 {out / 'runs.jsonl'} にも書き込めませんでした（ファイルの大きさの上限を"
                                   f"超えたため書き込めませんでした（{out / 'runs.jsonl'}）。ulimit -f またはファイルシステムの"
                                   "上限を確認してください。）。")
    torn = (out / "runs.jsonl").read_bytes()
    assert len(torn) == limit and torn.startswith(baseline.log) and not torn.endswith(b"\n")
    assert outcomes(out) == ["success"]
    runs.record(out, runs.start(baseline.raw, out, None), "success")
    lines = (out / "runs.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and json.loads(lines[-2])["outcome"] == "success"
    assert outcomes(out) == ["success", "success"]


def test_duckdb_disk_full_is_described():
    """DuckDB says a full disk in its own words, not as an OSError: the text below is what DuckDB 1.5.6 raised
    (a TransactionException) when its WAL filled a 512 KB tmpfs; its IO Error when the database file itself
    cannot be written has the same form. The Japanese line names the file and what to do, also when the error
    arrives wrapped in another exception."""
    wal = "/srv/out/.annex.duckdb.0123456789abcdef0123456789abcdef.tmp.wal"
    want = f"ディスクの空き容量が足りないため書き込めませんでした（{wal}）。空きを作ってから再実行してください。"
    commit = duckdb.TransactionException(
        f'TransactionContext Error: Failed to commit: Could not write file "{wal}": No space left on device')
    assert runs.describe_failure(commit) == want
    db = wal.removesuffix(".wal")
    write = duckdb.IOException(f'IO Error: Could not write file "{db}": No space left on device')
    assert runs.describe_failure(write) == want.replace(wal, db)
    try:
        try:
            raise commit
        except duckdb.Error as exc:
            raise RuntimeError("annex.duckdb を作れませんでした") from exc
    except RuntimeError as wrapped:
        assert runs.describe_failure(wrapped) == want
    assert runs.describe_failure(duckdb.IOException('IO Error: Cannot open file "x": Too many open files')) is None


# --------------------------------------------------------------------------------------------- returns/

def test_returns_folder_is_exchanged_atomically(tmp_path, monkeypatch):
    """On Linux the new returns/ takes the old one's place in one renameat2(RENAME_EXCHANGE): the directory
    entry never goes missing."""
    out = tmp_path / "out"
    (out / "returns").mkdir(parents=True)
    (out / "returns" / "old.xlsx").write_bytes(b"old")
    staged = out / ".returns-new.tmp"
    staged.mkdir()
    (staged / "new.xlsx").write_bytes(b"new")
    inode = staged.stat().st_ino
    used = []
    real = returns._exchange
    monkeypatch.setattr(returns, "_exchange", lambda a, b: used.append(real(a, b)) or used[-1])
    returns.publish(staged, out)
    assert used == [True]
    assert (out / "returns").stat().st_ino == inode and sorted(os.listdir(out / "returns")) == ["new.xlsx"]
    assert sorted(os.listdir(staged)) == ["old.xlsx"]          # the old folder, for discard()
    returns.discard(staged)
    assert sorted(p.name for p in out.iterdir()) == ["returns"]


def test_returns_fallback_killed_between_renames(baseline, tmp_path):
    """Where RENAME_EXCHANGE is not available, publish() renames twice. Killed in between: returns/ is missing
    (the previous folder sits under .returns-old-<id>); the next run's remove_leftovers puts it back, byte for
    byte, before anything else."""
    out = copy_of(baseline, tmp_path)
    before = {k: v for k, v in hashes(out).items() if k.startswith("returns/")}
    staged = out / ".returns-0123456789abcdef0123456789abcdef.tmp"
    staged.mkdir()
    (staged / "39_新しい.xlsx").write_bytes(b"new")
    proc = child("""
        import os as real_os
        from annex import returns
        returns._exchange = lambda a, b: False
        class OS:
            def __getattr__(self, name): return getattr(real_os, name)
            def replace(self, src, dst):
                real_os.replace(src, dst)
                if Path(src) == out / "returns":
                    die()
        returns.os = OS()
        returns.publish(Path(sys.argv[3]), out)
        sys.exit(3)
        """, baseline.raw, out, staged)
    assert proc.returncode == -9, proc.stderr
    assert "returns" not in visible(out) and leftovers(out) == ["returns", "returns-old"]
    pipeline.remove_leftovers(out)
    assert {k: v for k, v in hashes(out).items() if k.startswith("returns/")} == before and leftovers(out) == []


# ------------------------------------------------------------------------------------------------ download

def test_download_killed_half_written(tmp_path):
    """`annex fetch` killed with half of a new 01-1 file on disk (same name as the snapshot in place): the
    snapshot in place is byte for byte the old one and still chosen, the fetch log is as before, the half file is
    a hidden .fetch-*.part; the next fetch removes it and saves the whole file."""
    from tests.test_fetch import LIMITS, OLD, Server, facility_zip
    raw = tmp_path / "raw"
    shutil.copytree(RAW / "reference", raw / "reference")
    name = OLD.name.removesuffix(".csv.zip")
    body = facility_zip(name=name, rows=400)
    half = len(body) // 2
    server = Server()
    try:
        base = server.serve("kill", OLD.name, {"body": body})
        config = {"iryo_joho_net": {"base_url": base, "snapshots": ["20250601"],
                                    "kinds": ["01-1_hospital_facility_info"]},
                  "limits": LIMITS | {"max_download_mb": 5}}
        before = (raw / OLD).read_bytes()
        assert hashlib.sha256(before).hexdigest() != hashlib.sha256(body).hexdigest()
        proc = child(f"""
            import json
            from annex import fetch
            real = fetch.download
            def download(client, url, fh, limits):
                class Half:             # the part file dies with exactly half of the body written
                    n = 0
                    def __getattr__(self, name): return getattr(fh, name)
                    def write(self, b):
                        room = {half} - self.n
                        if len(b) >= room:
                            fh.write(b[:room]); fh.flush(); os.fsync(fh.fileno())
                            die()
                        self.n += len(b)
                        return fh.write(b)
                return real(client, url, Half(), limits)
            fetch.download = download
            import httpx
            fetch.fetch_all(raw, json.loads(sys.argv[3]), client=httpx.Client(trust_env=False))
            sys.exit(3)
            """, raw, tmp_path, json.dumps(config))
        assert proc.returncode == -9, proc.stderr
        net = raw / OLD.parent
        parts = list(net.glob(".fetch-*.part"))
        assert len(parts) == 1 and parts[0].stat().st_size == half
        assert (raw / OLD).read_bytes() == before
        assert sorted(p.name for p in net.iterdir() if not p.name.startswith(".")) == \
            sorted(p.name for p in (RAW / OLD.parent).iterdir())
        assert not (raw / "reference/fetch_log.jsonl").exists()       # no line for the killed fetch
        assert raw / OLD in facility_file_plan(raw)[0]                   # the pipeline reads the old snapshot
        with fetch_lock(raw):                                            # the lock died with the process
            pass
        with httpx.Client(trust_env=False) as client:
            report = fetch_all(raw, config, client=client)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    [f] = report.files
    assert f.outcome == "saved" and "置き換えました" in f.message, f.message
    assert (raw / OLD).read_bytes() == body and list(net.glob(".fetch-*")) == []
    [line] = [json.loads(x) for x in (raw / "reference/fetch_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert line["outcome"] == "saved" and line["sha256"] == hashlib.sha256(body).hexdigest()


# ------------------------------------------------------------------------------------ security review checks

def test_returns_folder_is_not_readable_by_others(baseline):
    """out/returns/ holds 記入者 and メール: owner and group only (rwxr-x---), whatever the umask allows more."""
    import stat
    mode = stat.S_IMODE((baseline.out / "returns").stat().st_mode)
    assert mode & 0o007 == 0 and mode & 0o700 == 0o700, oct(mode)


def test_cli_turns_prefect_telemetry_off(monkeypatch):
    """Before Prefect is imported, `annex` asks it not to send telemetry (server heartbeat and client events)."""
    from annex import cli
    for name in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)        # absent now, and absent again after the test
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert os.environ["DO_NOT_TRACK"] == "1" and os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    monkeypatch.setenv("DO_NOT_TRACK", "0")      # an explicit setting wins
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert os.environ["DO_NOT_TRACK"] == "0"


# ------------------------------------------------------------------ the update of a few prefectures (#6)

UPDATE_KILLS = {
    # dies when the copy of annex.duckdb is checkpointed: nothing was swapped in; the next run updates again
    "update-before-checkpoint": (KILLS["build-before-checkpoint"][0], "previous", ["03"]),
    # dies right after the updated copy replaced annex.duckdb: the log does not vouch for it, so the next run
    # may not carry anything over from it and rebuilds everything
    "update-after-replace": (KILLS["publish-after-replace"][0], "database", "all"),
}


@pytest.mark.parametrize("stage", list(UPDATE_KILLS))
def test_killed_while_updating(baseline, tmp_path, stage):
    patch, expected, next_rebuilt = UPDATE_KILLS[stage]
    raw = tmp_path / "raw"
    shutil.copytree(baseline.raw, raw)
    out = copy_of(baseline, tmp_path)
    report = raw / "03" / "reports" / "ishikai" / "紫波郡医師会.csv"
    report.write_bytes(report.read_bytes().decode("cp932").replace("1・2,", "1・2・6,").encode("cp932"))
    proc = child(textwrap.dedent(patch) + "\nfrom annex import pipeline\npipeline.run(raw, out)\nsys.exit(3)\n",
                 raw, out)
    assert proc.returncode == -9, proc.stderr[-3000:]
    now = hashes(out)
    assert visible(out) == VISIBLE and (out / "runs.jsonl").read_bytes() == baseline.log and lock_is_free(out)
    # the return workbooks are written in a thread beside the update: killed wherever it was
    left = set(leftovers(out)) - {"returns"}
    if expected == "previous":
        assert left <= {"db", "db.stage", "db.wal"}
        assert now == baseline.hashes
    else:   # the redone prefecture's workbook and the national summary were ready; 高知's is carried over
        assert left == {f"part:{ANNEX_BOOKS[0]}", f"part:{ANNEX_BOOKS[2]}"}
        assert now["annex.duckdb"] != baseline.hashes["annex.duckdb"]
        assert {k: v for k, v in now.items() if k != "annex.duckdb"} == \
            {k: v for k, v in baseline.hashes.items() if k != "annex.duckdb"}
    result = pipeline.run(raw, out)
    assert result["rebuilt"] == next_rebuilt and outcomes(out) == ["success", "success"]
    assert leftovers(out) == [] and visible(out) == VISIBLE
    assert warehouse.built_by(out / "annex.duckdb") == runs.last_built(out)
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT torikumi_6 FROM annex_institutions WHERE name = '池田内科'").fetchone() == (True,)
    finally:
        con.close()
