"""`annex` command line."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


EPHEMERAL_STARTUP_SECONDS = 180   # the longest `annex refresh` waits for Prefect's temporary server to start


def _refresh(args: argparse.Namespace) -> int:
    # Prefect is imported here so that `annex --help` stays fast
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if args.quiet else "INFO")
    # the pipeline's progress lines (logger "annex") among the flow's logs, on the terminal and in the UI
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "annex")
    # Prefect's temporary server creates and migrates its database on the first run with a new PREFECT_HOME
    # before it answers: 14 s on one development machine, past Prefect's 20 s wait on a slower one, where the
    # README's first `annex refresh` then failed ("Timed out while attempting to connect to ephemeral Prefect
    # API server"). An explicit setting still wins.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
    from annex.codes import DateParseError, parse_date
    from annex.pipeline import RunError
    from annex.runs import Busy
    try:
        as_of = parse_date(args.as_of) if args.as_of else None
    except DateParseError as exc:
        print(f"エラー: --as-of の日付が読めません: {exc}", file=sys.stderr)
        return 2
    local = args.no_prefect
    # with --fetch through Prefect, the flow's fetch-reference task fetches and then checks for changes itself
    # (the check must come after the fetch); without Prefect, the fetch happens here
    fetch_in_flow = False
    if args.fetch:
        local = local or _falls_back()
        fetch_in_flow = not local
        if local:
            from annex.fetch import fetch_for_refresh
            report, text = fetch_for_refresh(args.raw)
            if report is None:
                print(f"警告: {text}", file=sys.stderr)
            else:
                print(text)
    if not fetch_in_flow:
        try:
            from annex.pipeline import skip_if_unchanged
            result = skip_if_unchanged(args.raw, args.out, args.pref or None, as_of, args.force, args.wait)
        except Busy as exc:
            print(f"エラー: {exc}", file=sys.stderr)
            return 1
        if result is not None:
            return _print_summary(args, result)
        local = local or _falls_back()
    try:
        if local:
            from annex.pipeline import progress_shown, run
            with contextlib.nullcontext() if args.quiet else progress_shown():
                result = run(args.raw, args.out, args.pref or None, as_of=as_of, force=args.force, wait=args.wait)
        else:
            from flows.refresh import refresh
            result = refresh(raw=str(args.raw), out=str(args.out), prefs=args.pref or None, as_of=as_of,
                             force=args.force, wait=args.wait, fetch=fetch_in_flow)
    except (RunError, Busy) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure ends with one Japanese line
        return _failed(args.out, exc)
    return _print_summary(args, result)


def _falls_back() -> bool:
    """True (after saying so) when the Prefect server configured does not answer: run without Prefect."""
    down = _prefect_server_down()
    if down is not None:
        print(f"警告: Prefect サーバー（{down[0]}）に接続できません（{down[1]}）。Prefect を使わずに、この"
              "コンピューターで直接実行します（出力と実行記録 runs.jsonl は同じです。Prefect の画面には"
              "記録されません）。", file=sys.stderr)
    return down is not None


def _prefect_server_down(timeout: float = 3.0) -> tuple[str, str] | None:
    """(URL, reason) when PREFECT_API_URL (environment or profile) names a server that does not answer its
    health check within timeout; None when it answers or none is configured (Prefect's temporary server)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    url = PREFECT_API_URL.value()
    if not url:
        return None
    try:
        with get_client(httpx_settings={"timeout": timeout}, sync_client=True) as client:
            exc = client.api_healthcheck()
    except Exception as err:  # noqa: BLE001 - a bad URL is as good as no server
        exc = err
    return None if exc is None else (url, f"{type(exc).__name__}: {exc}")


def _failed(out: Path, exc: BaseException) -> int:
    """A refresh that failed: one Japanese line saying what (the traceback only for a failure we do not
    recognise), whether the previous outputs are still in place, and where the run is recorded."""
    from annex import runs, warehouse
    problem = runs.describe_failure(exc)
    if problem is None:
        import traceback
        traceback.print_exception(exc, file=sys.stderr)
        problem = f"更新に失敗しました（{type(exc).__name__}: {exc}）。"
    if warehouse.built_by(out / warehouse.DB_NAME) == runs.last_built(out):
        kept = "前回の出力はそのまま残っています。"
    else:
        kept = "出力の一部が今回の途中のものになっている可能性があります。原因を直して再実行すると作り直されます。"
    print(f"エラー: {problem}{kept}（記録: {out / runs.LOG_NAME}）", file=sys.stderr)
    return 1


def _print_summary(args: argparse.Namespace, result: dict) -> int:
    if result.get("fetch"):   # fetched by the flow's fetch-reference task
        print(result["fetch"])
    if result.get("unchanged"):
        print("入力もプログラムも前回の実行から変わっていないため、作り直しませんでした（--force で作り直します）。")
    elif isinstance(result.get("rebuilt"), list) and result["rebuilt"]:
        print(f"報告だけが変わった都道府県（{'・'.join(result['rebuilt'])}）を作り直し、ほかは前回の結果を引き継ぎました"
              "（--force ですべて作り直します）。")
    print(f"出力: {result['database']}")
    for name in result["workbooks"]:
        print(f"  別表: {Path(args.out) / name}")
    print(f"  医療情報ネット施設 {result['facilities']:,} / 医療機関（厚生局） {result['institutions']:,} / "
          f"届出 {result['notifications']:,}")
    print(f"  紐付け {result['facility_links']:,} / 要確認 {result['link_review']:,}")
    print(f"  報告ファイル {result['report_files']:,} / 医療機関の報告 {result['institution_reports']:,} 行 / "
          f"拠点の報告 {result['hub_reports']:,} 行")
    print(f"  検証結果 エラー {result['errors']:,} 件・警告 {result['warnings']:,} 件（findings 表、返送用は "
          f"{Path(args.out) / 'returns'}）")
    for f in result["failed_files"]:
        print(f"  読めなかったファイル: {f}")
    return 0


def _templates(args: argparse.Namespace) -> int:
    from annex.pipeline import RunError
    from annex.templates import build_templates
    try:
        paths = build_templates(args.raw, args.out, args.pref or None)
    except RunError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    folders = sorted({p.parent.parent for p in paths})
    print(f"調査票 {len(paths):,} ファイルを作成しました:")
    for f in folders:
        print(f"  {f}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", type=Path, default=Path("raw"), metavar="DIR", help="入力フォルダ（既定: raw/）")
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="出力フォルダ（既定: out/）")
    p.add_argument("--pref", action="append", metavar="CODE",
                   help="対象の都道府県コード（複数指定可。既定: raw/ に設定のある全都道府県）")


def main(argv: list[str] | None = None) -> int:
    # Prefect sends usage telemetry unless told not to: its server a heartbeat to sens-o-matic.prefect.io every
    # 10 minutes (the temporary server of `annex refresh` too), its client events to Amplitude. Offices often
    # have no route out, and nothing about a prefecture's run needs to leave the machine. Set before Prefect
    # is imported (for refresh and serve, and the flow runs serve starts); an explicit setting still wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    ap = argparse.ArgumentParser(prog="annex", description="在宅医療 別表作成パイプライン（zaitaku-annex）")
    sub = ap.add_subparsers(dest="command", required=True, metavar="コマンド")
    r = sub.add_parser("refresh", help="参照データを読み込み annex.duckdb を作り直します",
                       description="参照データ（医療情報ネット・厚生局名簿・市区町村コード）を読み込み、"
                                   "医療機関を紐付けて <out>/annex.duckdb を作り直します。")
    _common(r)
    r.add_argument("--as-of", metavar="DATE",
                   help="この日に有効だった参照データの版で作ります（締切前の再実行の再現。例: 2026-12-01、令和8年12月1日）")
    r.add_argument("--force", action="store_true", help="入力が前回から変わっていなくても作り直します")
    r.add_argument("--fetch", action="store_true",
                   help="先に raw/reference/sources.toml の参照データを取得します（失敗しても前回の版で続けます）")
    r.add_argument("--wait", type=float, default=0.0, metavar="秒",
                   help="別の更新が実行中のとき、終わるまで待つ秒数（既定: 待たずに中止）")
    r.add_argument("--no-prefect", action="store_true",
                   help="Prefect を使わずに直接実行します（Prefect サーバーに接続できないときは自動でこうなります）")
    r.add_argument("--quiet", action="store_true", help="進行状況のログを抑えます")
    r.set_defaults(func=_refresh)
    t = sub.add_parser("templates", help="医師会・市町村に送る調査票（Excel）を作ります",
                       description="医師会ごと（空欄の調査票と、区域の在宅療養支援病院・診療所を記入済みの調査票）と"
                                   "市町村ごとの調査票を <out>/templates/ に作ります。")
    _common(t)
    t.set_defaults(func=_templates)
    from annex.fetch import register_cli as fetch_cli
    fetch_cli(sub)
    from flows.serve import register_cli as serve_cli
    serve_cli(sub)
    from annex.bench import register_cli as bench_cli
    bench_cli(sub)
    from annex.synth import register_cli as synth_cli
    synth_cli(sub)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
