"""The Prefect flow and the CLI (one Prefect test harness for the session)."""
import json
import logging
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import RAW


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness
    # Prefect sets up logging when the flow module first imports it, replacing the root logger's handlers
    # (pytest's capture among them): done here, before a test's capture (caplog) starts
    import flows.refresh  # noqa: F401
    from annex.cli import EPHEMERAL_STARTUP_SECONDS
    # Prefect's default 30 s wait was too short on a fresh, busy CI machine (its temporary server builds its
    # database first): six flow tests errored with "Timed out while attempting to connect to ephemeral Prefect
    # API server". The harness waits as long as `annex refresh` does.
    with prefect_test_harness(server_startup_timeout=EPHEMERAL_STARTUP_SECONDS):
        yield


def _artifact(key: str):
    from prefect.artifacts import Artifact
    art = Artifact.get(key)
    assert art is not None, key
    return art


def test_refresh_flow(prefect_harness, tmp_path, caplog, monkeypatch):
    from annex import overview, runs
    from flows.refresh import refresh
    monkeypatch.setattr(overview, "FINDINGS_SHOWN", 1)   # the findings table artifact cut after one row
    with caplog.at_level(logging.INFO):
        result = refresh(raw=str(RAW), out=str(tmp_path), prefs=["39"])
    assert result["facility_links"] > 0 and result["institution_reports"] > 0 and result["hub_reports"] > 0
    con = duckdb.connect(str(tmp_path / "annex.duckdb"), read_only=True)
    count = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in overview.MAIN_TABLES}
    severities = dict(con.execute("SELECT severity, count(*) FROM findings GROUP BY 1").fetchall())
    inputs = con.execute("""SELECT kind, count(*), sum(rows_in), sum(accepted), sum(rejected),
                                   count(*) FILTER (WHERE status = 'failed') FROM source_files GROUP BY kind""").fetchall()
    assert con.execute("SELECT DISTINCT pref_code FROM institutions").fetchall() == [("39",)]
    # the one deliberate error of 高知's sample reports: a hub area in 愛媛県
    assert con.execute("SELECT rule, value FROM findings WHERE severity = 'error'").fetchall() == [
        ("area_other_prefecture", "宇和島市")]
    con.close()
    assert (tmp_path / "returns" / "39_四万十市.xlsx").exists()
    # one log line per stage, with its row counts; build-duckdb counts the tables it built
    lines = [r.getMessage() for r in caplog.records]
    for stage in ("入力の確認: 変更あり", "読込 meibo: ", "紐付け 39: ", "報告 39: ", "検証・整形: ", "出力 "):
        assert any(line.startswith(stage) for line in lines), stage
    [built] = [line for line in lines if line.startswith("DuckDB を作成しました")]
    assert all(f"{label} {count[t]:,}行" in built for t, label in overview.MAIN_TABLES.items()), built
    assert count["facilities"] > 0 and count["annex_institutions"] > 0 and count["findings"] > 1
    # the summary artifact holds the database's own numbers
    summary = _artifact("annex-refresh-summary").data
    assert (f"- 医療情報ネット施設 {count['facilities']:,}／医療機関 {count['institutions']:,}／紐付け "
            f"{count['facility_links']:,}（要確認 {count['link_review']:,}）") in summary
    assert (f"- 報告ファイル {count['report_files']:,}／医療機関の報告 {count['institution_reports']:,} 行／"
            f"拠点の報告 {count['hub_reports']:,} 行") in summary
    assert f"- 検証結果: エラー {severities['error']:,} 件、警告 {severities['warning']:,} 件" in summary
    assert len(inputs) >= 4
    for kind, n, rows_in, accepted, rejected, failed in inputs:
        assert f"| {kind} | {n} | {rows_in or 0:,} | {accepted or 0:,} | {rejected or 0:,} | {failed} |" in summary
    assert "宇和島市" not in summary.split("## 圏域の不足")[1]   # an error row is not a coverage gap
    # the findings table is cut, and says so (here and in the summary)
    findings = _artifact("annex-refresh-findings")
    rows = json.loads(findings.data) if isinstance(findings.data, str) else findings.data
    assert [(r["値"], r["区分"]) for r in rows] == [("宇和島市", "エラー")]
    assert f"全 {count['findings']:,} 件のうち先頭 1 件" in findings.description
    assert f"- 検証結果の表 annex-refresh-findings：全 {count['findings']:,} 件のうち先頭 1 件" in summary
    # nothing changed: the second run rebuilds nothing, and its artifact says so with the build it kept
    again = refresh(raw=str(RAW), out=str(tmp_path), prefs=["39"])
    assert again["unchanged"]
    [last] = [r for r in runs.history(tmp_path) if r["outcome"] == "unchanged"]
    kept = _artifact("annex-refresh-summary").data
    assert kept.startswith("# 在宅医療 別表の更新結果：変更なし")
    assert f"`{last['fingerprint']}`" in kept and f"`{runs.last_built(tmp_path)}`" in kept
    assert f"- 医療情報ネット施設 {count['facilities']:,}／医療機関 {count['institutions']:,}" in kept
    assert f"エラー {severities['error']:,} 件、警告 {severities['warning']:,} 件" in kept


def _sources_toml(raw, base: str) -> None:
    (raw / "reference" / "sources.toml").write_text(
        f'[iryo_joho_net]\nbase_url = "{base}"\nsnapshots = ["20260601"]\nkinds = ["01-1_hospital_facility_info"]\n'
        '[limits]\ntimeout_seconds = 5\nattempts = 1\n', encoding="utf-8")


def test_refresh_fetch_runs_in_the_flow(prefect_harness, raw_copy, tmp_path, monkeypatch, capsys):
    """`annex refresh --fetch` through Prefect: the flow's fetch-reference task downloads from the loopback
    server before the inputs are checked, and the run reads the new snapshot."""
    from prefect.client.orchestration import get_client
    from annex.cli import main
    from tests.test_fetch import NEW, NEW_NAME, OLD, Server, facility_zip
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)        # fetch_all makes its own client: no proxy for 127.0.0.1
    server = Server()
    try:
        body = facility_zip()
        _sources_toml(raw_copy, server.serve("flow", f"{NEW_NAME}.csv.zip", {"body": body}))
        out = tmp_path / "out"
        assert main(["refresh", "--raw", str(raw_copy), "--out", str(out), "--pref", "39"]) == 0
        assert main(["refresh", "--raw", str(raw_copy), "--out", str(out), "--pref", "39", "--fetch"]) == 0
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    printed = capsys.readouterr().out
    assert "取得結果: 保存 1 件" in printed and "作り直しませんでした" not in printed   # the new file was read
    assert (raw_copy / NEW).read_bytes() == body
    con = duckdb.connect(str(out / "annex.duckdb"), read_only=True)
    status = dict(con.execute("SELECT source_file, status FROM source_files WHERE kind = 'facility_file'").fetchall())
    con.close()
    assert status[NEW.as_posix()] == "read" and status[OLD.as_posix()] == "superseded"
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort
        flow_run = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["annex-refresh"])),
                                         sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        assert flow_run.parameters["fetch"] is True and flow_run.state.is_completed()
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        tasks = {t.name.rsplit("-", 1)[0]: t for t in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))}
    assert tasks["fetch-reference"].state.is_completed() and "check-inputs" in tasks
    assert tasks["fetch-reference"].start_time < tasks["check-inputs"].start_time
    assert "## 参照データの取得" in _artifact("annex-refresh-summary").data


def test_refresh_fetch_without_sources_toml_still_completes(prefect_harness, raw_copy, tmp_path, caplog):
    """No sources.toml: the fetch is skipped with a warning, the refresh completes on the files under raw/."""
    from flows.refresh import refresh
    (raw_copy / "reference" / "sources.toml").unlink()
    with caplog.at_level(logging.INFO):
        result = refresh(raw=str(raw_copy), out=str(tmp_path / "out"), prefs=["39"], fetch=True)
    assert not result["unchanged"] and result["facility_links"] > 0
    assert "取得設定ファイルがありません" in result["fetch"]
    [warning] = [r for r in caplog.records if r.getMessage().startswith("取得: ")]
    assert warning.levelno == logging.WARNING and "raw/ にある版で続けます" in warning.getMessage()
    assert "取得設定ファイルがありません" in _artifact("annex-refresh-summary").data


def test_cli_help_is_japanese():
    out = subprocess.run([sys.executable, "-m", "annex.cli", "refresh", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--pref" in out and "都道府県コード" in out
    out = subprocess.run([sys.executable, "-m", "annex.cli", "templates", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "調査票" in out and "--pref" in out


def test_refresh_flow_many_prefectures_in_workers(prefect_harness, tmp_path, monkeypatch):
    """A national run links in worker processes through one task; the result is the per-prefecture one's."""
    from annex import pipeline
    from flows.refresh import refresh
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 2)     # the sample's two prefectures count as "many"
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    result = refresh(raw=str(RAW), out=str(tmp_path / "parallel"))
    monkeypatch.setenv("ANNEX_WORKERS", "1")              # the reference: everything in this process
    serial = pipeline.run(RAW, tmp_path / "serial")
    for key in ("facility_links", "institution_reports", "hub_reports"):
        assert result[key] == serial[key] > 0
    con = duckdb.connect(str(tmp_path / "parallel" / "annex.duckdb"), read_only=True)
    assert con.execute("SELECT count(DISTINCT pref_code) FROM facility_links").fetchone() == (2,)


def test_refresh_flow_with_a_helper_process(prefect_harness, tmp_path, monkeypatch):
    """A prefecture's run through the flow has the helper process pipeline.run has (reference files, reports,
    part of the linking and the return workbooks beside the rest), handed to its tasks: the same tables."""
    from annex import pipeline, workers
    from flows.refresh import refresh
    from tests.test_workers import _tables
    monkeypatch.setenv("ANNEX_WORKERS", "1")
    pipeline.run(RAW, tmp_path / "serial", ["03"])
    monkeypatch.setenv("ANNEX_WORKERS", "2")
    monkeypatch.setattr(pipeline, "HELPER_BYTES", 0)          # the sample is small: helped anyway
    monkeypatch.setattr(pipeline, "SPLIT_FROM_RECORDS", 0)
    submitted = []
    submit = workers.Helper.submit
    monkeypatch.setattr(workers.Helper, "submit", lambda self, f, *a: submitted.append(f.__name__) or submit(self, f, *a))
    result = refresh(raw=str(RAW), out=str(tmp_path / "flow"), prefs=["03"])
    assert {"_parse_into_cache", "reports_of", "link_frames", "prepare"} <= set(submitted)
    assert result["institution_reports"] > 0
    serial, flow = _tables(tmp_path / "serial" / "annex.duckdb"), _tables(tmp_path / "flow" / "annex.duckdb")
    assert serial.keys() == flow.keys() and len(serial) > 20
    for name in serial:
        assert flow[name] == serial[name], name


def test_refresh_flow_redoes_only_the_prefecture_whose_report_changed(prefect_harness, raw_copy, tmp_path):
    """The flow takes the same path as annex.pipeline.run: plan-rebuild, then update-reports."""
    from flows.refresh import refresh
    from annex import pipeline
    out, truth = tmp_path / "out", tmp_path / "truth"
    first = refresh(raw=str(raw_copy), out=str(out))
    assert first["rebuilt"] == "all"
    with open(raw_copy / "39" / "reports" / "shichoson" / "四万十市.csv", "ab") as f:
        f.write(b"\r\n")
    again = refresh(raw=str(raw_copy), out=str(out))
    assert again["rebuilt"] == ["39"] and not again["unchanged"]
    expected = pipeline.run(raw_copy, truth)   # the same inputs built from scratch
    assert {k: v for k, v in again.items() if k not in ("database", "rebuilt")} == \
        {k: v for k, v in expected.items() if k not in ("database", "rebuilt")}


@pytest.mark.parametrize("given", [None, "7"])
def test_refresh_gives_prefects_temporary_server_time_to_start(tmp_path, given):
    """A first `annex refresh` with a new PREFECT_HOME waits while Prefect's temporary server builds its database
    (past Prefect's own 20 s on a slow machine: the quick start failed); a value the user set is kept. In a
    process of its own: Prefect reads its settings once, when first imported (the flow is a stand-in that
    reports the wait Prefect would use)."""
    import os
    from annex import cli
    name = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    code = ("import sys, types\n"
            "from annex import cli\n"
            "def refresh(**_):\n"
            "    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as wait\n"
            "    print('WAIT', wait.value())\n"
            "    raise RuntimeError('the flow itself is not run here')\n"
            "sys.modules['flows.refresh'] = types.SimpleNamespace(refresh=refresh)\n"
            f"sys.exit(cli.main(['refresh', '--raw', {str(RAW)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet']))\n")
    env = {k: v for k, v in os.environ.items() if k not in (name, "PREFECT_API_URL")}
    if given is not None:
        env[name] = given
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    [wait] = [float(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("WAIT ")]
    assert wait == (float(given) if given else cli.EPHEMERAL_STARTUP_SECONDS)
