"""`annex` command line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _refresh(args: argparse.Namespace) -> int:
    # Prefect is imported here so that `annex --help` stays fast
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if args.quiet else "INFO")
    # the temporary server would try to send usage telemetry: offices often have no route out, and nothing
    # about a prefecture's run needs to leave the machine
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from annex.codes import DateParseError, parse_date
    from annex.pipeline import RunError
    from annex.runs import Busy
    try:
        as_of = parse_date(args.as_of) if args.as_of else None
    except DateParseError as exc:
        print(f"エラー: --as-of の日付が読めません: {exc}", file=sys.stderr)
        return 2
    if args.fetch:
        from annex.fetch import fetch_all
        print(fetch_all(args.raw).summary())
    try:
        from annex.pipeline import skip_if_unchanged
        result = skip_if_unchanged(args.raw, args.out, args.pref or None, as_of, args.force, args.wait)
    except Busy as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        return _print_summary(args, result)
    from flows.refresh import refresh
    try:
        result = refresh(raw=str(args.raw), out=str(args.out), prefs=args.pref or None, as_of=as_of,
                         force=args.force, wait=args.wait)
    except (RunError, Busy) as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    return _print_summary(args, result)


def _print_summary(args: argparse.Namespace, result: dict) -> int:
    if result.get("unchanged"):
        print("入力もプログラムも前回の実行から変わっていないため、作り直しませんでした（--force で作り直します）。")
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
