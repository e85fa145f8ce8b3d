"""Nightly refresh: register the `annex-refresh` flow as a deployment with a cron schedule on a real Prefect
server and serve it (this process polls for scheduled and manual runs and executes them).

A schedule only fires on a server that keeps running (`prefect server start`); Prefect's temporary local server
lives only as long as one process, so this module refuses to run without `PREFECT_API_URL` instead of falling
back to it. Prefect is imported inside the functions so that `annex --help` stays fast.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "Asia/Tokyo"
DEFAULT_NAME = "nightly"
EXAMPLE_API_URL = "http://127.0.0.1:4200/api"


class ServeError(RuntimeError):
    """The deployment cannot be served (no Prefect server, bad cron/timezone, bad raw/pref); message in Japanese."""


def _server_hint() -> str:
    return ("定期実行には常時起動の Prefect サーバーが必要です。別のターミナルで `prefect server start` を実行し、"
            f"`export PREFECT_API_URL={EXAMPLE_API_URL}`（または `prefect config set "
            f"PREFECT_API_URL={EXAMPLE_API_URL}`）を設定してから、もう一度実行してください。")


def check_api(timeout: float = 10.0) -> str:
    """The API URL if a Prefect server answers there; ServeError otherwise (never the temporary server)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ServeError("PREFECT_API_URL が設定されていません。" + _server_hint())
    with get_client(httpx_settings={"timeout": timeout}, sync_client=True) as client:
        exc = client.api_healthcheck()
    if exc is not None:
        raise ServeError(f"Prefect サーバー（{url}）に接続できません（{type(exc).__name__}: {exc}）。"
                         + _server_hint())
    return url


def _schedule(cron: str, timezone: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from prefect.schedules import Cron
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServeError(f"タイムゾーン {timezone!r} が見つかりません（例: Asia/Tokyo）。") from None
    try:
        return Cron(cron, timezone=timezone)
    except ValueError:
        raise ServeError(f"cron の指定 {cron!r} が読めません（例: \"0 2 * * *\" は毎日 2:00）。") from None


def serve(raw: str, out: str, prefs: list[str] | None, cron: str = DEFAULT_CRON,
          timezone: str = DEFAULT_TIMEZONE, name: str = DEFAULT_NAME, fetch: bool = False) -> None:
    """Register `annex-refresh/<name>` (cron in `timezone`, raw/out as absolute paths; with fetch, each run first
    downloads what raw/reference/sources.toml names) and serve it until stopped.

    Blocks. Stopping the process (Ctrl+C, SIGTERM) pauses the deployment; serving it again resumes it."""
    raw_dir, out_dir = Path(raw).expanduser().resolve(), Path(out).expanduser().resolve()
    # fail now, not at 2 a.m.: the prefectures must be configured under raw/
    from annex.pipeline import RunError, select_prefectures
    try:
        selected = select_prefectures(raw_dir, prefs)
    except RunError as exc:
        raise ServeError(str(exc)) from None
    schedule = _schedule(cron, timezone)
    url = check_api()

    from prefect import serve as prefect_serve
    from prefect.types.entrypoint import EntrypointType

    from flows.refresh import refresh
    parameters = {"raw": str(raw_dir), "out": str(out_dir),
                  "prefs": [p.code for p in selected] if prefs else None, "fetch": fetch}
    deployment = refresh.to_deployment(
        name=name, schedules=[schedule], parameters=parameters,
        # by module, so the deployment works whatever the current directory
        entrypoint_type=EntrypointType.MODULE_PATH)
    print(f"Prefect サーバー: {url}\n"
          f"登録: annex-refresh/{name}（cron \"{cron}\" {timezone}）入力 {raw_dir} → 出力 {out_dir}"
          + (f" 都道府県 {', '.join(parameters['prefs'])}" if prefs else "")
          + ("（各回の最初に参照データを取得）" if fetch else ""), flush=True)
    # Prefect 3.8's SIGTERM handler leaves this warning behind; the shutdown itself is clean
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited", category=RuntimeWarning)
    # prefect.serve(deployment) rather than refresh.serve(): each run is then `python -m prefect.engine`, which
    # imports flows.refresh afresh (code updated since `annex serve` started is used, and the flow's string
    # annotations resolve in its own module; a cloudpickled copy of the flow loses e.g. `dt` of `dt.date`).
    # limit=1: runs of one deployment share the output folder, so they queue instead of overlapping.
    prefect_serve(deployment, limit=1)


def _serve_cmd(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the runs it starts inherit this: the pipeline's progress lines (logger "annex") go to each run's log
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "annex")
    try:
        serve(str(args.raw), str(args.out), args.pref or None, cron=args.cron, timezone=args.timezone,
              name=args.name, fetch=args.fetch)
    except ServeError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # Prefect's runner ends with sys.exit(0) on SIGTERM
        if exc.code not in (None, 0):
            raise
    print(f"停止しました。annex-refresh/{args.name} は一時停止中です（もう一度 annex serve を実行すると再開します）。")
    return 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add `annex serve` to the `annex` command's subparsers."""
    p = subparsers.add_parser(
        "serve", help="夜間の定期実行（cron）を Prefect サーバーに登録し、実行を待ち受けます",
        description="refresh を Prefect のデプロイ annex-refresh/<name> として cron の予定付きで登録し、"
                    "予定の実行と手動の実行を待ち受けます（Ctrl+C で停止。停止中は予定が一時停止されます）。"
                    "`prefect server start` で起動したサーバーと PREFECT_API_URL（例: "
                    f"{EXAMPLE_API_URL}）が必要です。")
    p.add_argument("--raw", type=Path, default=Path("raw"), metavar="DIR", help="入力フォルダ（既定: raw/）")
    p.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="出力フォルダ（既定: out/）")
    p.add_argument("--pref", action="append", metavar="CODE",
                   help="対象の都道府県コード（複数指定可。既定: raw/ に設定のある全都道府県）")
    p.add_argument("--cron", default=DEFAULT_CRON, metavar="CRON",
                   help=f"実行予定（cron 形式。既定: \"{DEFAULT_CRON}\" = 毎日 2:00）")
    p.add_argument("--timezone", default=DEFAULT_TIMEZONE, metavar="TZ",
                   help=f"cron のタイムゾーン（既定: {DEFAULT_TIMEZONE}）")
    p.add_argument("--name", default=DEFAULT_NAME, metavar="NAME",
                   help=f"デプロイ名（annex-refresh/<NAME>。既定: {DEFAULT_NAME}）")
    p.add_argument("--fetch", action="store_true",
                   help="各回の最初に raw/reference/sources.toml の参照データを取得します（失敗しても前回の版で続けます）")
    p.set_defaults(func=_serve_cmd)
    return p
