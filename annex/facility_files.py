"""医療情報ネット open data facility files (01-1 hospitals, 02-1 clinics, 03-1 dental), as .csv or .csv.zip."""
from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
import zlib
from operator import itemgetter
from pathlib import Path

import polars as pl

from annex import codes
from annex.csvio import EncodingError, decode_detail, rows_with_line_numbers
from annex.findings import ReadResult, failed_file, finding, reject_every_row, validate
from annex.frames import per_value
from schemas.facility_file import FacilityFile

FILE_NAME = re.compile(r"^(0[123])-1_(hospital|clinic|dental)_facility_info_(\d{8})(?:\.csv)?(?:\.csv|\.zip)$")
KIND_BY_PREFIX = {"01": "hospital", "02": "clinic", "03": "dental"}

# publisher header -> our column. Only the first five are required; the others vary by file kind.
HEADER = {"ID": "facility_id", "正式名称": "name", "都道府県コード": "pref_code", "市区町村コード": "city_code",
          "所在地": "address", "正式名称（フリガナ）": "name_kana", "機関区分": "kind_code",
          "所在地座標（緯度）": "lat_raw", "所在地座標（経度）": "lon_raw", "合計病床数": "beds_raw"}
REQUIRED = ["ID", "正式名称", "都道府県コード", "市区町村コード", "所在地"]

MAX_UNCOMPRESSED = 2 * 1024**3   # the national clinic file is ~100 MB; anything past 2 GB is not a real file
MAX_RATIO = 200                  # CSV compresses ~10:1; a far higher ratio is a zip bomb

FACILITY_COLUMNS = {
    "facility_id": pl.String, "kind": pl.String, "name": pl.String, "name_kana": pl.String,
    "pref_code": pl.String, "municipality_code": pl.String, "address": pl.String, "lat": pl.Float64,
    "lon": pl.Float64, "beds": pl.Int32, "snapshot": pl.Date, "source_file": pl.String, "source_row": pl.Int64,
}


def parse_file_name(path: Path) -> tuple[str, dt.date] | None:
    m = FILE_NAME.match(path.name)
    if not m:
        return None
    return KIND_BY_PREFIX[m.group(1)], dt.datetime.strptime(m.group(3), "%Y%m%d").date()


def check_zip_member(info: zipfile.ZipInfo, max_uncompressed: int = MAX_UNCOMPRESSED,
                     max_ratio: int = MAX_RATIO) -> None:
    """Raise BadZipFile for a member whose path leaves the folder or whose size looks like a zip bomb.

    Shared with annex.fetch, which checks downloads with the same rules before saving them."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
        raise zipfile.BadZipFile(f"zipの中のファイル名が不正です: {info.filename}")
    if info.file_size > max_uncompressed or info.file_size > max_ratio * max(info.compress_size, 1) + 1_000_000:
        raise zipfile.BadZipFile(f"展開後のサイズが大きすぎます（{info.file_size:,} バイト）")
    # the publishers' zips and Excel use deflate (or none); zipfile decompresses a bzip2/LZMA member a whole
    # compressed MiB at a time (a 337-byte bzip2 member took 870 MB), so nothing else is opened at all
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise zipfile.BadZipFile(f"zipの中の {info.filename} の圧縮方式（{info.compress_type}）には対応していません"
                                 "（無圧縮か deflate のみ）")


def iter_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = MAX_UNCOMPRESSED,
                    chunk: int = 1 << 20):
    """The member's bytes in chunks, stopping with BadZipFile once more than limit bytes come out
    (the sizes in the zip header can lie). Reading to the end also checks the CRC."""
    total = 0
    with z.open(info) as f:
        while block := f.read(chunk):
            total += len(block)
            if total > limit:
                raise zipfile.BadZipFile("展開後のサイズが上限を超えました")
            yield block


def _payload(path: Path) -> bytes:
    """File bytes; for a zip, the one CSV member after checks against traversal and bombs."""
    if not path.name.endswith(".zip"):
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:
        members = [i for i in z.infolist() if not i.is_dir()]
        csvs = [i for i in members if i.filename.lower().endswith(".csv")]
        if len(csvs) != 1:
            raise zipfile.BadZipFile(f"zipの中にCSVが{len(csvs)}個あります（1個のはずです）")
        info = csvs[0]
        check_zip_member(info)
        return b"".join(iter_zip_member(z, info))


def read_facility_file(path: str | Path, prefs: set[str] | None = None,
                       muni_current=None) -> ReadResult:
    """Read one facility file. prefs limits rows to those prefectures (others count as out_of_scope);
    muni_current maps a 6-digit municipality code to the code in force (None if unknown)."""
    path = Path(path)
    kind, snapshot = parse_file_name(path) or (None, None)
    empty = FACILITY_COLUMNS
    if kind is None:
        return failed_file("facility_file", path, "file_name",
                           "ファイル名が医療情報ネットの形式ではありません（例: 01-1_hospital_facility_info_20250601.csv.zip）",
                           empty_schema=empty)
    try:
        payload = _payload(path)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:  # zlib.error: damaged deflate data
        return failed_file("facility_file", path, "zip_corrupt", f"zipファイルが壊れているか不正です: {exc}",
                           empty_schema=empty)
    # the publisher's own form (one line per record, plain UTF-8): read column-wise; anything else row by row
    fast = _plain_records(payload)
    if fast is not None:
        header, body = fast
        notes = []
    else:
        try:
            txt, enc, cp932_lines = decode_detail(payload)
        except EncodingError as exc:
            return failed_file("facility_file", path, "encoding", str(exc), empty_schema=empty)
        notes = [finding(path, None, n, None, "cp932", "encoding_mixed",
                         "この行だけ文字コードがShift_JIS(CP932)でした（他の行はUTF-8）。文字化けがないか確認してください。",
                         severity="warning") for n in cp932_lines]
        if enc == "cp932":
            notes.append(finding(path, None, None, None, enc, "encoding",
                                 "文字コードがShift_JIS(CP932)でした。公表ファイルはUTF-8(BOM付き)です。読み込みは続けます。",
                                 severity="warning"))
        records = rows_with_line_numbers(txt)
        try:
            _, header = next(records)
        except (StopIteration, Exception):
            return failed_file("facility_file", path, "empty_file", "ファイルが空です。", empty_schema=empty)
    header = [h.strip() for h in header]
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        failed = failed_file("facility_file", path, "missing_column",
                             f"必要な列がありません: {'・'.join(missing)}（1行目の見出しを確認してください）",
                             empty_schema=empty)
        at = header.index("都道府県コード") if "都道府県コード" in header else None
        in_scope = None if prefs is None or at is None else \
            (lambda fields: at >= len(fields) or fields[at].strip() in prefs)
        if fast is not None:
            records = ((line, list(fields)) for line, fields in enumerate(body.drop("_blank").rows(), start=2))
        return reject_every_row(failed, path, records, in_scope)
    idx = {HEADER[h]: i for i, h in enumerate(header) if h in HEADER}
    res = ReadResult("facility_file", str(path), pl.DataFrame(schema=empty), notes, as_of=snapshot.isoformat())
    if fast is not None:
        df = _kept_columns(body, idx, prefs, path, res)
    else:
        df = _kept_rows(records, header, idx, prefs, path, res)
    if res.rows_in == 0:
        res.findings.append(finding(path, None, None, None, None, "no_rows",
                                    "見出し行だけでデータ行がありません。この種類の施設はすべて紐付けの対象外になります。",
                                    severity="warning"))
    schema = {c: pl.String for c in HEADER.values()} | {"source_row": pl.Int64}
    df = df.with_columns(pl.lit(None, pl.String).alias(c) for c in schema if c not in df.columns).select(list(schema))
    ok, found = validate(df, FacilityFile, str(path), sheet_col="-")
    res.findings += found
    out = ok.with_columns(
        pl.lit(kind).alias("kind"),
        pl.col("lat_raw").cast(pl.Float64, strict=False).alias("lat"),
        pl.col("lon_raw").cast(pl.Float64, strict=False).alias("lon"),
        pl.col("beds_raw").replace("", None).cast(pl.Int32, strict=False).alias("beds"),
        pl.lit(snapshot).alias("snapshot"),
        pl.lit(str(path)).alias("source_file"),
        per_value(pl.col("pref_code") + pl.col("city_code"), codes.muni_code6).alias("municipality_code"),
    ).with_columns(
        # the publisher writes 0.0,0.0 for a facility without coordinates
        pl.when((pl.col("lat") == 0) & (pl.col("lon") == 0)).then(None).otherwise(pl.col("lat")).alias("lat"),
        pl.when((pl.col("lat") == 0) & (pl.col("lon") == 0)).then(None).otherwise(pl.col("lon")).alias("lon"),
    )
    if muni_current is not None:
        out, found = _check_municipality(out, muni_current, str(path))
        res.findings += found
    res.accepted = out.select(list(FACILITY_COLUMNS))
    return res


def _check_municipality(df: pl.DataFrame, muni_current, file: str) -> tuple[pl.DataFrame, list[dict]]:
    """Unknown municipality codes reject the row; abolished ones (浜松市の旧区) are mapped with a warning."""
    df = df.with_columns(per_value(pl.col("municipality_code"), muni_current).alias("now"))
    out = []
    for code, row, now in df.filter(pl.col("now").is_null() | (pl.col("now") != pl.col("municipality_code"))) \
            .select("municipality_code", "source_row", "now").iter_rows():
        if now is None:
            out.append(finding(file, None, row, "市区町村コード", code[2:5], "municipality_unknown",
                               f"市区町村コード {code[2:5]}（団体コード {code}）は市区町村マスタにありません。"))
        else:
            out.append(finding(file, None, row, "市区町村コード", code[2:5], "municipality_abolished",
                               f"団体コード {code} は廃止されたコードです。後継の {now} として扱います。",
                               severity="warning"))
    return df.filter(pl.col("now").is_not_null()).with_columns(pl.col("now").alias("municipality_code")).drop("now"), out


def _kept_rows(records, header: list[str], idx: dict[str, int], prefs: set[str] | None, path: Path,
               res: ReadResult) -> pl.DataFrame:
    """The rows to keep, read row by row (any CSV: quoted line breaks, ragged rows, a syntax error part-way):
    idx's columns stripped, and source_row. Counts and findings go into res."""
    # each row kept as a list of its stripped fields in idx's order (140,000 clinics and dental clinics
    # nationally: no dict per row), then its line number
    columns = list(idx)
    pick = itemgetter(*idx.values())         # REQUIRED makes idx hold several columns: pick gives a tuple
    at_pref, at_id = columns.index("pref_code"), columns.index("facility_id")
    rows, seen = [], {}
    try:
        for line, fields in records:
            res.rows_in += 1
            if not any(f.strip() for f in fields):
                res.skipped_blank += 1
                continue
            if len(fields) != len(header):
                res.findings.append(finding(path, None, line, None, f"{len(fields)}列", "field_count",
                                            f"列の数が見出し（{len(header)}列）と合いません（{len(fields)}列）。"
                                            "区切り文字か引用符が崩れています。"))
                continue
            rec = [f.strip() for f in pick(fields)]
            if prefs is not None and rec[at_pref] not in prefs:
                res.out_of_scope += 1
                continue
            first = seen.setdefault(rec[at_id], line)
            if first != line and rec[at_id]:
                res.findings.append(_duplicate_id(path, line, rec[at_id], first))
                continue
            rec.append(line)
            rows.append(rec)
    except Exception as exc:  # csv.Error on a truncated quote etc.: keep what was read, report the rest
        res.findings.append(finding(path, None, None, None, None, "csv_syntax",
                                    f"CSVとして読めない箇所があり、以降を読めませんでした: {exc}"))
    return pl.DataFrame(rows, schema={**{c: pl.String for c in columns}, "source_row": pl.Int64}, orient="row")


def _duplicate_id(path: Path, line: int, facility_id: str, first: int) -> dict:
    return finding(path, None, line, "ID", facility_id, "duplicate_id", f"同じIDの行が{first}行目にもあります。最初の行を使います。")


# what str.strip() removes (Python's whitespace, which is not quite Unicode's White_Space), for polars. Written
# out: finding them by testing all 1.1 M code points took 0.1 s of every process's import (the run, the fork
# server); tests/test_readers.py checks it against str.isspace() of the Python running the tests
_PY_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
             "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_PY_SPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in _PY_SPACE) + "]"
# a CSV field as csv.reader and polars read it alike: quoted (quotes inside doubled), or unquoted without any
_FIELD = r'(?:"(?:[^"]|"")*"|[^",]*)'
_BLANK_FIELD = f'(?:"{_PY_SPACE_CLASS}*"|{_PY_SPACE_CLASS}*)'
_FIELD_LIMIT = 131072   # csv.field_size_limit(): a longer field is csv.Error for the row-by-row reader


def _plain_records(payload: bytes) -> tuple[list[str], pl.DataFrame] | None:
    """(header, every record's fields as text columns c0, c1, …) when the file is in the form the publisher
    ships: UTF-8 (a BOM at the start only), one record per line (CRLF or LF, no blank line, no NUL), each line
    well-formed with the header's number of fields. csv.reader and polars read such a file alike, so it is read
    column-wise (the 80,000 clinics in a fifth of the CPU); None for anything else, which _kept_rows reads."""
    body = payload[3:] if payload.startswith(b"\xef\xbb\xbf") else payload
    if not body or b"\xef\xbb\xbf" in body or b"\x00" in body:
        return None
    newline = b"\r\n" if b"\r\n" in body else b"\n"
    crlf = body.count(b"\r\n") if newline == b"\r\n" else 0
    if body.count(b"\r") != crlf or (crlf and body.count(b"\n") != crlf):
        return None   # a lone CR, or a lone LF among CRLFs, ends a line for csv.reader too
    head_end = body.find(newline)
    if head_end < 0:
        return None
    try:
        head = body[:head_end].decode("utf-8")
        lines = pl.Series([body[head_end + len(newline):]], dtype=pl.Binary).cast(pl.String).str.split(
            newline.decode()).explode()
    except (UnicodeDecodeError, pl.exceptions.PolarsError):
        return None   # not UTF-8: decode_detail decides what it is
    if lines.len() and lines[-1] == "":
        lines = lines.head(-1)   # the newline that ends the last record
    header = next(csv.reader([head]))
    record = f"{_FIELD}(?:,{_FIELD}){{{len(header) - 1}}}"
    if not re.fullmatch(record, head) or lines.len() == 0 \
            or not lines.str.contains(f"^{record}$").all() or lines.str.len_bytes().max() > _FIELD_LIMIT:
        return None
    body_df = pl.read_csv(body[head_end + len(newline):], has_header=False, infer_schema=False,
                          empty_string_is_null=False, new_columns=[f"c{i}" for i in range(len(header))],
                          raise_if_empty=False)
    if body_df.height != lines.len():
        return None
    blank = lines.str.contains(f"^{_BLANK_FIELD}(?:,{_BLANK_FIELD})*$")
    return header, body_df.with_columns(blank.alias("_blank"))


def _kept_columns(body: pl.DataFrame, idx: dict[str, int], prefs: set[str] | None, path: Path,
                  res: ReadResult) -> pl.DataFrame:
    """_kept_rows of a _plain_records frame, column-wise: the same rows, counts and findings."""
    res.rows_in += body.height
    df = body.select(pl.int_range(2, body.height + 2, dtype=pl.Int64).alias("source_row"), "_blank",
                     *[pl.col(f"c{i}").str.strip_chars(_PY_SPACE).alias(c) for c, i in idx.items()])
    res.skipped_blank += int(df["_blank"].sum())
    df = df.filter(~pl.col("_blank"))
    if prefs is not None:
        inside = pl.col("pref_code").is_in(sorted(prefs))
        res.out_of_scope += df.height - int(df.select(inside.sum()).item())
        df = df.filter(inside)
    repeated = (~pl.col("facility_id").is_first_distinct()) & (pl.col("facility_id") != "")
    copies = df.filter(repeated)
    if copies.height:
        first = dict(df.group_by("facility_id").agg(pl.col("source_row").first()).iter_rows())
        res.findings += [_duplicate_id(path, line, fid, first[fid])
                         for line, fid in copies.select("source_row", "facility_id").iter_rows()]
        df = df.filter(~repeated)
    return df.select(*idx, "source_row")
