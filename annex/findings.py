"""Findings: what the pipeline says about a row or a file, in Japanese, with the place the user sees.

A finding with severity 'error' rejects its row (it goes to rejected_rows); 'warning' keeps the row and
reports. A file-level finding has row = None.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

FINDING_SCHEMA = {
    "source_file": pl.String, "sheet": pl.String, "row": pl.Int64, "column": pl.String,
    "value": pl.String, "rule": pl.String, "severity": pl.String, "message": pl.String,
}


def finding(file: str | Path, sheet: str | None, row: int | None, column: str | None, value: object,
            rule: str, message: str, severity: str = "error") -> dict:
    return {"source_file": str(file), "sheet": sheet, "row": row, "column": column,
            "value": None if value is None else str(value)[:500], "rule": rule,
            "severity": severity, "message": message}


def findings_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FINDING_SCHEMA)


@dataclass
class ReadResult:
    """One source file read: accepted rows, findings, and the row accounting that must add up.

    rows_in = accepted + rejected + skipped_blank + out_of_scope, where rejected counts the distinct rows
    with an error finding and out_of_scope counts rows for prefectures not in this run.
    """
    kind: str
    file: str
    accepted: pl.DataFrame
    findings: list[dict] = field(default_factory=list)
    rows_in: int = 0
    skipped_blank: int = 0
    out_of_scope: int = 0
    status: str = "read"          # read / failed / superseded
    as_of: str | None = None      # the publisher's as-of date for the file
    # the parse cache's Parquet file holding exactly these accepted rows in this order, written from one chunk
    # (source_file aside: the cache keeps the path the file was parsed under); the warehouse stages from it
    parquet: str | None = field(default=None, compare=False, repr=False)

    @property
    def rejected(self) -> int:
        return len({(f["sheet"], f["row"]) for f in self.findings
                    if f["severity"] == "error" and f["row"] is not None})

    def accounting(self) -> dict:
        return {"kind": self.kind, "source_file": self.file, "status": self.status, "as_of": self.as_of,
                "rows_in": self.rows_in, "accepted": self.accepted.height, "rejected": self.rejected,
                "skipped_blank": self.skipped_blank, "out_of_scope": self.out_of_scope}

    def balanced(self) -> bool:
        a = self.accounting()
        return a["rows_in"] == a["accepted"] + a["rejected"] + a["skipped_blank"] + a["out_of_scope"]


def failed_file(kind: str, file: str | Path, rule: str, message: str, rows_in: int = 0,
                sheet: str | None = None, empty_schema: dict | None = None) -> ReadResult:
    """A file that could not be read at all: one clear file-level finding, no rows accepted.

    Its rows (if any could be counted) are reported as rejected through rows_in so that nothing is
    silently lost from the totals.
    """
    res = ReadResult(kind=kind, file=str(file), accepted=pl.DataFrame(schema=empty_schema or {}),
                     findings=[finding(file, sheet, None, None, None, rule, message)], status="failed")
    res.rows_in = rows_in
    return res


def reject_every_row(res: ReadResult, path: Path, records: Iterable[tuple[int, list[str]]],
                     in_scope: Callable[[list[str]], bool] | None = None) -> ReadResult:
    """A file given up at its header (res: its failed_file) loses every row below: each non-blank line becomes a
    rejected row of its own, as the 名簿 does for a sheet without a needed column, so that rows_in = accepted +
    rejected + skipped + out_of_scope holds for the failed file too. in_scope(fields) False: a row of a
    prefecture outside this run (out_of_scope, not rejected)."""
    for line, fields in records:
        res.rows_in += 1
        if not any(f.strip() for f in fields):
            res.skipped_blank += 1
        elif in_scope is not None and not in_scope(fields):
            res.out_of_scope += 1
        else:
            res.findings.append(finding(path, None, line, None, None, res.findings[0]["rule"],
                                        "見出しに必要な列がないため、この行を読めません。"))
    return res


def validate(df: pl.DataFrame, model: type[pa.DataFrameModel], file: str, *,
             sheet_col: str = "source_sheet", row_col: str = "source_row",
             labels: dict[str, str] | None = None) -> tuple[pl.DataFrame, list[dict]]:
    """Validate lazily with a pandera model; every failing cell becomes a finding with its row.

    Returns the rows that passed and the findings. The message for a column comes from the Field's
    description (Japanese, written next to the check it explains). Rows of many files: validate_each.
    """
    bad, found = _failures(df, model, file, sheet_col, row_col, labels)
    return (df, []) if not bad else (df[[i for i in range(df.height) if i not in bad]], [f for _, f in found])


PART = "__part"   # validate_each's column telling whose frame a row came from


def validate_each(frames: list[pl.DataFrame], model: type[pa.DataFrameModel], files: list[str], *,
                  sheet_col: str = "source_sheet", row_col: str = "source_row",
                  labels: dict[str, str] | None = None) -> list[tuple[pl.DataFrame, list[dict]]]:
    """validate() of each frame (the rows of files[i]): what validating it alone gives, in one pandera call per
    set of columns. Nationally the reports of 47 prefectures would otherwise cost two calls each (~5 s). A check
    across rows (unique …) must compare rows within the column PART, which tells whose frame a row came from
    (AreaConfig's does); any other would see the other frames' rows."""
    out: list[tuple[pl.DataFrame, list[dict]]] = [(f, []) for f in frames]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(tuple(f.columns), []).append(i)
    for parts in groups.values():
        # one chunk: the in-memory engine runs a check's batch function once per chunk (1,266 files' chunks
        # made the hubs' checks 5 × slower than on the same rows in one)
        heights = [frames[i].height for i in parts]
        whole = pl.concat([frames[i] for i in parts], how="vertical_relaxed", rechunk=True)
        failed, found = _stacked_failures(whole, heights, model, [files[i] for i in parts], sheet_col, row_col,
                                          labels, empty_parts=True)
        for i, rows, f in zip(parts, failed, found):
            out[i] = (_without(frames[i], rows), f)
    return out


def validate_stacked(whole: pl.DataFrame, heights: list[int], model: type[pa.DataFrameModel], files: list[str], *,
                     sheet_col: str = "source_sheet", row_col: str = "source_row",
                     labels: dict[str, str] | None = None) -> list[tuple[pl.DataFrame, list[dict]]]:
    """validate_each of frames already stacked in one: whole holds heights[0] rows of files[0], then heights[1]
    of files[1] …; each file gets its slice of whole less its failing rows, and its findings. For rows read
    file by file that are made one frame at once (a frame per small file costs more than its checks). Unlike
    validate_each, a file without rows is not validated: no pandera call when no file has rows, and no finding
    about the whole frame (a column missing) for a file without rows."""
    failed, found = _stacked_failures(whole, heights, model, files, sheet_col, row_col, labels, empty_parts=False)
    starts = itertools.accumulate([0] + heights)
    return [(_without(whole.slice(start, h), rows), f) for start, h, rows, f in zip(starts, heights, failed, found)]


def _without(frame: pl.DataFrame, rows: set[int]) -> pl.DataFrame:
    """frame less the rows at these positions."""
    if not rows:
        return frame
    return frame.filter(pl.Series([r not in rows for r in range(frame.height)], dtype=pl.Boolean))


def _stacked_failures(whole: pl.DataFrame, heights: list[int], model: type[pa.DataFrameModel], files: list[str],
                      sheet_col: str, row_col: str, labels: dict[str, str] | None, empty_parts: bool
                      ) -> tuple[list[set[int]], list[list[dict]]]:
    """For each part of whole (heights[i] rows of files[i], one after the other): the positions of its failing
    rows within it, and its findings, from one pandera call. empty_parts False: a part without rows is not
    validated (no call when whole has no rows, no finding about the whole frame for such a part)."""
    failed: list[set[int]] = [set() for _ in heights]
    found: list[list[dict]] = [[] for _ in heights]
    if whole.height == 0 and not empty_parts:
        return failed, found
    whose = [i for i, h in enumerate(heights) for _ in range(h)]
    bad, cases = _failures(whole.with_columns(pl.Series(PART, whose, dtype=pl.Int32)), model, "", sheet_col, row_col,
                           labels)
    for idx, f in cases:
        # a failure of the whole frame (idx None: a column missing) is each file's
        for i in [i for i, h in enumerate(heights) if h or empty_parts] if idx is None else (whose[idx],):
            found[i].append({**f, "source_file": files[i]})
    if bad:
        # part i's rows are whole's rows start[i] … start[i] + heights[i] - 1
        start = list(itertools.accumulate([0] + heights))
        for k in bad:
            failed[whose[k]].add(k - start[whose[k]])
    return failed, found


def _failures(df: pl.DataFrame, model: type[pa.DataFrameModel], file: str, sheet_col: str, row_col: str,
              labels: dict[str, str] | None) -> tuple[set[int], list[tuple[int | None, dict]]]:
    """(indices of the rows that fail, [(row index or None for the whole frame, finding)]) of one pandera call."""
    schema = model.to_schema()
    try:
        model.validate(df, lazy=True)
        return set(), []
    except SchemaErrors as exc:
        cases = exc.failure_cases
    # a check's own description (written next to it in the model) explains it best; else the Field's
    check_text: dict[tuple[str | None, str], str] = {}
    for name, col in schema.columns.items():
        for chk in col.checks:
            if chk.description:
                check_text[(name, chk.name)] = chk.description
    for chk in schema.checks:
        if chk.description:
            check_text[(None, chk.name)] = chk.description
    out: list[tuple[int | None, dict]] = []
    bad_idx: set[int] = set()
    for case in cases.iter_rows(named=True):
        col, idx = case.get("column"), case.get("index")
        check = str(case.get("check"))
        frame_level = case.get("schema_context") == "DataFrameSchema"
        col_schema = schema.columns.get(col) if col and not frame_level else None
        label = None if frame_level else (labels or {}).get(
            col, col_schema.title if col_schema is not None and col_schema.title else col)
        explain = check_text.get((None if frame_level else col, check)) or (
            col_schema.description if col_schema is not None and col_schema.description else "")
        if idx is None:
            # schema-level failure (missing column, wrong type): the whole file is unusable
            out.append((None, finding(file, None, None, label, case.get("failure_case"), check,
                                      f"列「{label}」を確認してください（{check}）。{explain}")))
            bad_idx.update(range(df.height))
            continue
        idx = int(idx)
        bad_idx.add(idx)
        value = None if frame_level else case.get("failure_case")
        if frame_level or value is None or str(value) == "":
            message = explain or f"{label}が空です。"
        else:
            message = f"{label}の値「{value}」は使えません。{explain}"
        out.append((idx, finding(file, df[sheet_col][idx] if sheet_col in df.columns else None,
                                 int(df[row_col][idx]), label, value, check, message)))
    return bad_idx, out
