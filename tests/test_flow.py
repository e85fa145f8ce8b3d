"""The Prefect flow and the CLI (one Prefect test harness for the session)."""
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import RAW


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness():
        yield


def test_refresh_flow(prefect_harness, tmp_path):
    from flows.refresh import refresh
    result = refresh(raw=str(RAW), out=str(tmp_path), prefs=["39"])
    assert result["facility_links"] > 0 and result["institution_reports"] > 0 and result["hub_reports"] > 0
    con = duckdb.connect(str(tmp_path / "annex.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT pref_code FROM institutions").fetchall() == [("39",)]
    # the one deliberate error of 高知's sample reports: a hub area in 愛媛県
    assert con.execute("SELECT rule, value FROM findings WHERE severity = 'error'").fetchall() == [
        ("area_other_prefecture", "宇和島市")]
    assert (tmp_path / "returns" / "39_四万十市.xlsx").exists()
    # the run published its summary and its findings as artifacts
    from prefect.artifacts import Artifact
    summary = Artifact.get("annex-refresh-summary")
    assert summary is not None and "圏域の不足" in summary.data and "宇和島市" not in summary.data
    findings = Artifact.get("annex-refresh-findings")
    import json
    rows = json.loads(findings.data) if isinstance(findings.data, str) else findings.data
    assert any(r["値"] == "宇和島市" and r["区分"] == "エラー" for r in rows)


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
