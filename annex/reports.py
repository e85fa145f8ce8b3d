"""Reading returned 医師会 / 市町村 reports as officials really send them.

Our own 調査票 and foreign layouts alike: .xlsx/.xls/.csv (UTF-8, BOM, CP932), title rows and a sender
block above the header, one- or two-row (merged) headers with aliases, several sheets, blank and note rows.
Everything is located by content, not position, and every row is reported with the row number the sender
sees in Excel (or the line number in a text editor for CSV).

This module only reads and validates single files (pandera, lazily: all failures of a file at once).
Cross-checks against the reference data live in annex/report_checks.py.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl
from python_calamine import SheetVisibleEnum

from annex import codes, text, workbooks
from annex.csvio import EncodingError, decode_detail
from annex.findings import ReadResult, failed_file, finding, validate_stacked
from annex.frames import Memo
from annex.report_layout import (INVISIBLE, ISHIKAI, PERSONAL_FIELDS, SENDER_LABELS, TEMPLATE_SHEETS,
                                 Column, ReportKind, clean, header_key)
from schemas.reported_hubs import ReportedHub
from schemas.reported_institutions import ReportedInstitution

MAX_HEADER_SEARCH = 30        # header rows are looked for in the first rows of a sheet
MAX_ROWS = 20_000             # a report longer than this is not a report (Excel's 1,048,576 rows of nothing)
_NOTE_START = re.compile(r"^(※|\*|＊|注[:：）)]|\(注|（注|注意|記入例|例$|例[:：)）]|合計|計$|小計|[(（]?以下余白|以上$)")

RAW_FIELDS = {
    "ishikai": ["name", "inst_code", "municipality", "address", "reported_type", "torikumi_1", "torikumi_2",
                "torikumi_3", "torikumi_4", "torikumi_5", "torikumi_6", "torikumi_list", "report", "note"],
    "shichoson": ["name", "hub_kind", "area", "operator", "operator_kind", "start", "same_as_program",
                  "same_as_institution", "torikumi_1", "torikumi_2", "torikumi_3", "torikumi_4", "torikumi_5",
                  "torikumi_list", "note"],
}
MODELS = {"ishikai": ReportedInstitution, "shichoson": ReportedHub}


def raw_schema(kind: str) -> dict:
    return {"source_file": pl.String, "source_sheet": pl.String, "source_row": pl.Int64,
            **{f: pl.String for f in RAW_FIELDS[kind]}}


_NO_ROWS = {kind: pl.DataFrame(schema=raw_schema(kind)) for kind in RAW_FIELDS}


def no_rows(kind: str) -> pl.DataFrame:
    """An empty frame of raw_schema(kind), a new one each time (clear() of a kept one: making a frame from a
    schema costs ~0.25 ms, once per file nationally)."""
    return _NO_ROWS[kind].clear()


# clean() of each cell value met, shared by every sheet: labels, ○, blanks and municipality names repeat across
# the 1,851 reports (~45,000 distinct texts). Equal cells clean equally whatever their type (1, 1.0 and True are
# all "1"; a date never equals a datetime), so one dict serves every kind of cell.
_CLEANED = Memo(clean, 1 << 17)


@dataclass
class Grid:
    sheet: str | None          # None for CSV
    rows: list[list]
    row_numbers: list[int]     # what the sender sees for rows[i]
    hidden: bool = False
    notes: dict[int, tuple[str, str]] = field(default_factory=dict)   # row -> (rule, message): hidden row, CP932 line
    last_row: int | None = None   # the sheet's last row, when more than the rows read
    external_links: bool = False
    _cleaned: list[list[str]] = field(default_factory=list, init=False, repr=False, compare=False)

    def cleaned(self, upto: int | None = None) -> list[list[str]]:
        """The rows with every cell clean()ed, at least the first upto of them (the list may hold more: index or
        slice it as rows). A cell is looked at up to five times (header search, sender block, the row, its
        contact line, the unknown columns): each is cleaned once here, through a dict of the values met
        (_CLEANED), not a call of clean() per cell. Rows are cleaned as far as asked only: a sheet without a
        header is not cleaned down to its 20,000th row."""
        n = len(self.rows) if upto is None else min(upto, len(self.rows))
        done = self._cleaned
        if len(done) < n:
            memo = _CLEANED
            done.extend([memo[v] for v in row] for row in self.rows[len(done):n])
        return done


@dataclass
class HeaderMatch:
    start: int                 # index in Grid.rows of the first header row
    depth: int                 # 1 or 2 header rows
    columns: dict[int, str]    # column index -> field
    unknown: list[tuple[int, str]]
    template: bool             # exactly our template's labels

    @property
    def data_start(self) -> int:
        return self.start + self.depth


@dataclass
class ReportFile:
    """One returned report after reading and validation (before cross-checks)."""
    kind: ReportKind
    pref_code: str
    result: ReadResult
    sender: str | None = None           # configured name of the 医師会 / municipality code of the 市町村
    sender_text: str | None = None      # as written, kept only when it names a configured sender (identify_sender)
    sender_at: tuple[str | None, int] | None = None   # sheet and row of the sender cell
    sender_source: str = "unknown"      # block / file_name / unknown
    contacts: list[dict] = field(default_factory=list)   # personal: for return letters only
    layout: str = "unknown"             # template / other / unrecognised
    sheets: list[str] = field(default_factory=list)
    has_report_column: bool = False     # 報告（○） column present: rows without ○ and without 取組 are not reports
    # the rows read (raw_schema's fields) while they are not yet in result.accepted: read_report_rows() leaves
    # them here, for validate_reports() to make one frame of the rows of many files
    rows: list[dict] | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.result.file


class UnreadableReport(Exception):
    pass


# --- grids ---------------------------------------------------------------------------------------
MAX_CSV_BYTES = 20 * 1024**2  # MAX_ROWS rows of 1 KB; a CSV is decoded whole, so a larger one is not read at all


def read_grids(path: Path) -> list[Grid]:
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix == ".txt":
        size = path.stat().st_size
        if size <= MAX_CSV_BYTES:
            with open(path, "rb") as f:     # never more than the limit: a file may grow, a device has no size
                data = f.read(MAX_CSV_BYTES + 1)
            size = max(size, len(data))
        if size > MAX_CSV_BYTES:
            raise UnreadableReport(f"ファイルが大きすぎるため読みませんでした（{size:,} バイト。CSVの報告は "
                                   f"{MAX_CSV_BYTES // 1024**2} MB まで）。記入した表だけを残して保存し直してください。")
        try:
            txt, _, cp932_lines = decode_detail(data)
        except EncodingError as exc:
            raise UnreadableReport(str(exc)) from None
        reader = csv.reader(io.StringIO(txt, newline=""))
        rows, numbers, start = [], [], 1
        try:
            for fields in reader:
                rows.append(fields)
                numbers.append(start)
                start = reader.line_num + 1
                if len(rows) > MAX_ROWS + MAX_HEADER_SEARCH:
                    break
        except csv.Error as exc:
            raise UnreadableReport(f"CSVとして読めません（{start}行目付近）: {exc}") from None
        return [Grid(None, rows, numbers, notes={n: ("encoding_mixed", _CP932_LINE) for n in cp932_lines})]
    if suffix not in (".xlsx", ".xlsm", ".xls"):
        raise UnreadableReport("報告は Excel（.xlsx・.xls）か CSV で提出してください。")
    try:  # corrupt, encrypted, bomb-sized or mislabelled files; calamine's panics on damaged .xls
        wb, info = workbooks.open_with_info(path)
        meta = {m.name: m for m in wb.sheets_metadata}
        grids = []
        for name in wb.sheet_names:
            sheet = workbooks.get_sheet(wb, name)
            rows = workbooks.sheet_rows(sheet, MAX_ROWS + MAX_HEADER_SEARCH)
            _fill_merged(sheet, rows)
            hidden = name in meta and meta[name].visible != SheetVisibleEnum.Visible
            grids.append(Grid(name, rows, list(range(1, len(rows) + 1)), hidden=hidden,
                              notes={r: ("hidden_row", _HIDDEN_ROW) for r in info.hidden_rows.get(name, ())},
                              last_row=sheet.height, external_links=info.external_links))
    except workbooks.WorkbookError as exc:
        raise UnreadableReport(str(exc)) from None
    return grids


_CP932_LINE = "この行だけ文字コードがShift_JIS(CP932)でした（他の行はUTF-8）。文字化けがないか確認してください。"
_HIDDEN_ROW = "非表示の行です。報告として読み込みました。報告しない行は削除してください。"
_INVISIBLE_TEXT = "見えない文字（制御文字・ゼロ幅スペースなど）が含まれていたため、取り除いて読みました。"



def _fill_merged(sheet, rows: list[list]) -> None:
    """A merged cell holds its value in the top-left cell only; give it to every cell it covers
    (merged 市町村 cells over several institutions, merged group headers over 取組①..⑥)."""
    try:
        ranges = sheet.merged_cell_ranges or []
    except Exception:
        return
    for (r0, c0), (r1, c1) in ranges:
        if r0 >= len(rows):
            continue
        v = rows[r0][c0] if c0 < len(rows[r0]) else None
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            for c in range(c0, c1 + 1):
                if c < len(rows[r]) and (r, c) != (r0, c0):
                    rows[r][c] = v


# --- header --------------------------------------------------------------------------------------
_BRACKETED = re.compile(r"[(（][^)）]*[)）]")


@dataclass
class _HeaderWords:
    """What match_header needs of a kind, built once per kind."""
    field_of: Callable[[str], str | None]
    by_field: dict[str, Column]
    template_labels: set[str]
    # matches a text holding, for each required field, every character of one of its labels and aliases
    could_name: re.Pattern

    def could_name_required(self, text: str) -> bool:
        """False when the cells of a row (or of two rows), joined in text, cannot name every required field:
        each label a header row yields is a cell, or two cells of the row and the row under it joined, and a
        label names a field only when what remains of it (spaces, ※ notes and bracketed parts dropped) is one
        of the field's labels or aliases, so every character of that alias is in text."""
        return self.could_name.match(text) is not None


_HEADER_WORDS: dict[int, tuple[ReportKind, _HeaderWords]] = {}


def _header_words(kind: ReportKind) -> _HeaderWords:
    """Cell text -> field of kind (None: not a label of it) and the rest, built once per kind; each cell's
    answer is kept: the first rows of ~1,900 reports nationally are looked at as header candidates, and their
    cells (labels, ○, municipality names) repeat."""
    hit = _HEADER_WORDS.get(id(kind))
    if hit is not None and hit[0] is kind:
        return hit[1]
    aliases: dict[str, str] = {}
    for col in kind.columns:
        for label in (col.label, *col.aliases):
            aliases.setdefault(header_key(label), col.field)
    seen: dict[str, str | None] = {}

    def field_of(label: str) -> str | None:
        if label not in seen:
            if len(seen) > 1 << 16:
                seen.clear()
            k = header_key(label)
            # 医療機関名（正式名称） -> 医療機関名
            seen[label] = None if not k else aliases[k] if k in aliases else aliases.get(_BRACKETED.sub("", k))
        return seen[label]
    # one lookahead per character (in any order), one alternative per alias, one group per required field: a
    # pattern tried at the start of the text, in C (~80,000 rows and pairs of rows are tried nationally)
    groups = []
    for req in kind.required:
        sets = {frozenset(k) for k, f in aliases.items() if f == req}
        # 医療機関名称 needs nothing 名称 does not: only the smallest sets are worth trying
        smallest = sorted("".join(sorted(a)) for a in sets if not any(b < a for b in sets))
        groups.append("(?:" + "|".join("".join(f"(?=.*{re.escape(ch)})" for ch in chars) for chars in smallest) + ")")
    words = _HeaderWords(field_of, {c.field: c for c in kind.columns},
                         {clean(c.label) for c in kind.template_columns()}, re.compile("".join(groups), re.DOTALL))
    _HEADER_WORDS[id(kind)] = (kind, words)
    return words


def match_header(grid: Grid, kind: ReportKind) -> HeaderMatch | None:
    words = _header_words(kind)
    field_of, by_field = words.field_of, words.by_field
    best: tuple[int, HeaderMatch] | None = None
    # each candidate row is looked at three times (alone, over the next, under the previous): cleaned once
    cleaned = grid.cleaned(MAX_HEADER_SEARCH + 1)[:MAX_HEADER_SEARCH + 1]
    # most rows searched are data, title or sender rows: those whose characters cannot spell a required
    # field's label (alone or with the next row) are passed over without building their labels
    texts = ["".join(row) for row in cleaned]
    for r in range(min(MAX_HEADER_SEARCH, len(grid.rows))):
        row = cleaned[r]
        below = cleaned[r + 1] if r + 1 < len(cleaned) else []
        for depth in (1, 2):
            if depth == 2 and not any(below):
                continue
            if not words.could_name_required(texts[r] if depth == 1 else texts[r] + texts[r + 1]):
                continue
            labels = _labels(row, below if depth == 2 else None)
            cols: dict[int, str] = {}
            unknown = []
            for c, label in labels.items():
                f = field_of(label)
                if f is None:
                    unknown.append((c, label))
                elif f not in cols.values():
                    cols[c] = f
            fields = set(cols.values())
            if not set(kind.required) <= fields:
                continue
            data_fields = {f for f in fields if not by_field[f].ignore and not by_field[f].personal}
            if len(data_fields) < 2:
                continue
            score = len(data_fields) * 10 - depth  # a second row must add fields to be worth it
            is_template = {v for v in row if v} >= words.template_labels and depth == 1
            m = HeaderMatch(r, depth, cols, unknown, is_template)
            if best is None or score > best[0]:
                best = (score, m)
    return best[1] if best else None


def _labels(row: list[str], below: list[str] | None) -> dict[int, str]:
    """Column labels of a one- or two-row header (cells already clean()ed). In a two-row header a group label
    (取組事項) spans the columns whose second row is filled (①, ②, …) even when the cells are not merged."""
    width = max(len(row), len(below or []))
    out = {}
    parent = ""
    for c in range(width):
        top = row[c] if c < len(row) else ""
        sub = below[c] if below is not None and c < len(below) else ""
        if below is None:
            if top:
                out[c] = top
            continue
        if top:
            parent = top if sub else ""
        elif not sub:
            parent = ""
        if top and sub and top != sub:
            out[c] = top + sub if sub[0] in "①②③④⑤⑥⑦⑧⑨(（0123456789" else sub
        elif top:
            out[c] = top
        elif sub:
            out[c] = parent + sub if parent and sub[0] in "①②③④⑤⑥⑦⑧⑨(（0123456789" else sub
    return out


_LABEL_OF = {header_key(lab): f for f, labs in SENDER_LABELS.items() for lab in labs}
# a label (and the label part of `記入者：…`, `TEL 019-…`) begins a cell: whatever begins with another character
# is no label (most cells _labelled is asked about are a data row's first value)
_LABEL_FIRST = frozenset(k[0] for k in _LABEL_OF)
# words a data row holds as values (運営主体の種別 市町村, 医師会): alone in a cell under the header they label nothing
_VALUE_WORDS = {header_key(w) for w in ("市町村", "医師会")}
_LABEL_COLON = re.compile(r"^([^:：]{1,12})[:：]\s*(.*)$")
_LABEL_SPACE = re.compile(r"^(\S{1,12}?)(?:\s+|(?=[+(\d]))(.+)$")


def _labelled(row: list[str], c: int, in_table: bool = False) -> tuple[str, str] | None:
    """(field, value) when cell c of a clean()ed row is a sender/contact label: `記入者：岩手 太郎` in one cell,
    a contact label and its value (`TEL 019-…`, `担当者 盛岡 花子`), or the label alone with the value in the
    next filled cell (`担当者 | 盛岡 花子`). None when it is no label."""
    t = row[c]
    if not t or t[0] not in _LABEL_FIRST:
        return None
    m = _LABEL_COLON.match(t)
    if m and header_key(m.group(1)) in _LABEL_OF:
        value = m.group(2).strip() or next((x for x in row[c + 1:] if x), "")
        return _LABEL_OF[header_key(m.group(1))], value
    m = _LABEL_SPACE.match(t)
    if m and _LABEL_OF.get(header_key(m.group(1))) in PERSONAL_FIELDS:
        return _LABEL_OF[header_key(m.group(1))], m.group(2).strip()
    k = header_key(t)
    if k in _LABEL_OF and not (in_table and k in _VALUE_WORDS):
        return _LABEL_OF[k], next((x for x in row[c + 1:] if x), "")
    return None


def _sender_block(grid: Grid, upto: int) -> dict[str, tuple[str, int]]:
    """Label: value pairs written above the table (医師会名 | 盛岡市医師会, or 記入者：岩手太郎 in one cell)."""
    found: dict[str, tuple[str, int]] = {}
    cleaned = grid.cleaned(upto)
    for r in range(min(upto, len(grid.rows))):
        row = cleaned[r]
        for c in range(len(row)):
            hit = _labelled(row, c)
            if hit and hit[1]:
                found.setdefault(hit[0], (hit[1], grid.row_numbers[r]))
    return found


def _keep_sender(rep: ReportFile, f: str, value: str, sheet: str | None, row: int) -> None:
    """A sender or contact value from the block above the table or a contact line under it: the sender's name
    to identify the file, personal data for the return letter only (rep.contacts, never staged)."""
    if not value:
        return
    if f == "sender":
        if rep.sender_text is None:
            rep.sender_text, rep.sender_at = value, (sheet, row)
    elif f in PERSONAL_FIELDS:
        rep.contacts.append({"field": f, "value": value, "sheet": sheet, "row": row})


# --- reading one report --------------------------------------------------------------------------
def read_report(path: Path, kind: ReportKind, pref_code: str) -> ReportFile:
    """Read one returned report; its rows in result.accepted, not yet validated (validate_reports). Never
    raises: an unreadable file is one finding."""
    rep = read_report_rows(path, kind, pref_code)
    if rep.rows is not None:
        rep.result.accepted, rep.rows = pl.DataFrame(rep.rows, schema=raw_schema(kind.kind)), None
    return rep


def read_report_rows(path: Path, kind: ReportKind, pref_code: str) -> ReportFile:
    """read_report, the rows of a file that was read left in ReportFile.rows: validate_reports makes one frame
    of the rows of all the files it is given (a frame per file cost ~0.25 ms, ~0.5 s nationally)."""
    schema = raw_schema(kind.kind)
    try:
        grids = read_grids(path)
    except (UnreadableReport, OSError) as exc:
        return ReportFile(kind, pref_code, failed_file(f"{kind.kind}_report", path, "report_unreadable", str(exc),
                                                       empty_schema=schema), layout="unrecognised")
    rep = ReportFile(kind, pref_code, ReadResult(f"{kind.kind}_report", str(path), no_rows(kind.kind)))
    res = rep.result
    records: list[dict] = []
    other_data_sheets = []
    for grid in grids:
        m = match_header(grid, kind)
        if m is None:
            if grid.sheet not in TEMPLATE_SHEETS and _looks_like_table(grid):
                other_data_sheets.append(grid.sheet)
            continue
        if grid.hidden:
            res.findings.append(finding(path, grid.sheet, None, None, None, "hidden_sheet_skipped",
                                        f"非表示のシート「{grid.sheet}」は読みませんでした。報告に含める場合は表示してください。",
                                        "warning"))
            continue
        rep.sheets.append(grid.sheet or "")
        if grid.external_links and not any(f["rule"] == "external_link" for f in res.findings):
            res.findings.append(finding(path, None, None, None, None, "external_link",
                                        "他のファイルを参照する数式（外部リンク）があります。保存時の値を読みました。"
                                        "数式を値に変えて（形式を選択して貼り付け → 値）保存してください。", "warning"))
        rep.has_report_column |= "report" in m.columns.values()
        rep.layout = "template" if m.template and rep.layout in ("unknown", "template") else "other"
        for f, (value, row) in _sender_block(grid, m.start).items():
            _keep_sender(rep, f, value, grid.sheet, row)
        below = grid.cleaned(m.data_start + 200)[m.data_start:m.data_start + 200]
        for c, label in m.unknown:
            if any(r[c] for r in below if c < len(r)):
                res.findings.append(finding(path, grid.sheet, grid.row_numbers[m.start], label, None,
                                            "column_not_read",
                                            f"列「{label}」は調査項目にないため読みませんでした。必要な内容は備考欄に書いてください。",
                                            "warning"))
        _read_rows(grid, m, kind, path, pref_code, rep, records)
    if not rep.sheets:
        where = f"（シート: {'・'.join(s for s in other_data_sheets if s) or 'なし'}）" if other_data_sheets else ""
        rep.result = failed_file(f"{kind.kind}_report", path, "layout_not_recognised",
                                 f"{Path(path).name} の表の見出しが見つかりません{where}。"
                                 f"県の調査票（{kind.title}）を使うか、見出し行に「{kind.columns[1].label}」などの列名を"
                                 "書いてください。" + (_GARBLED if _garbled(grids) else ""), empty_schema=schema)
        rep.result.rows_in = 0
        rep.layout = "unrecognised"
        return rep
    for s in other_data_sheets:
        res.findings.append(finding(path, s, None, None, None, "sheet_not_recognised",
                                    f"シート「{s}」には表の見出しが見つからないため読みませんでした。", "warning"))
    if res.rows_in == 0:
        res.findings.append(finding(path, None, None, None, None, "no_rows",
                                    "見出しの下に記入された行がありません。報告する医療機関・拠点を記入してください。", "warning"))
    # made a frame and validated later, with the rows of every other file in one pandera call: validate_reports()
    rep.rows = records
    return rep


_GARBLED = ("文字化けしています（読めない文字が含まれています）。文字コードを取り違えて保存された可能性があります。"
            "元のファイルを Excel で開き「CSV UTF-8」か Excel ブック（.xlsx）で保存し直して提出してください。")


_MOJIBAKE = re.compile("\ufffd|[\u4e00-\u9fff][\uff61-\uff9f]")


def _garbled(grids: list[Grid]) -> bool:
    """Text that went through the wrong encoding on the sender's side: Shift_JIS taken for UTF-8 leaves U+FFFD
    replacement characters; UTF-8 taken for Shift_JIS reads as kanji followed by half-width kana (紫波 → 邏ｫ豕｢).
    Neither occurs in a real header."""
    text = "".join(str(v) for g in grids for row in g.rows[:MAX_HEADER_SEARCH] for v in row)
    return len(_MOJIBAKE.findall(text)) >= 3


def validate_reports(reps: list[ReportFile], kind: ReportKind) -> None:
    """pandera, lazily, over the rows of all these files at once (of one prefecture or of many); each file keeps
    its passing rows and gets its own findings (row numbers as the sender sees them). The rows read_report_rows
    left in ReportFile.rows become one frame, each file's accepted rows a slice of it."""
    reps = [r for r in reps if r.result.status == "read"]
    for r in reps:
        if r.rows is None and r.result.accepted.height:   # read by read_report: its frame's rows, the one path
            r.rows = r.result.accepted.to_dicts()
    pending = [r for r in reps if r.rows is not None]
    if pending:
        whole = pl.DataFrame([row for r in pending for row in r.rows], schema=raw_schema(kind.kind))
        heights = [len(r.rows) for r in pending]
        done = validate_stacked(whole, heights, MODELS[kind.kind], [r.path for r in pending])
        for r, (ok, found) in zip(pending, done):
            r.result.findings.extend(found)
            r.result.accepted, r.rows = ok, None


def _looks_like_table(grid: Grid) -> bool:
    return sum(1 for r in grid.cleaned(200)[:200] if sum(1 for v in r if v) >= 3) >= 3


def _read_rows(grid: Grid, m: HeaderMatch, kind: ReportKind, path: Path, pref_code: str, rep: ReportFile,
               records: list[dict]) -> None:
    res = rep.result
    by_field: dict[str, Column] = {c.field: c for c in kind.columns}
    data_cols = {c: f for c, f in m.columns.items() if not by_field[f].ignore and not by_field[f].personal}
    personal_cols = {c: f for c, f in m.columns.items() if by_field[f].personal}
    rows = grid.rows[m.data_start:]
    if len(rows) > MAX_ROWS:
        res.findings.append(finding(path, grid.sheet, grid.row_numbers[m.data_start + MAX_ROWS], None, None,
                                    "too_many_rows", f"{MAX_ROWS:,}行を超える部分は読みませんでした" +
                                    (f"（シートの最終行は{grid.last_row:,}行目）。" if grid.last_row else "。"), "warning"))
        rows = rows[:MAX_ROWS]
    texts = grid.cleaned(m.data_start + len(rows))[m.data_start:m.data_start + len(rows)]
    # trailing empty rows of a template are not rows the sender wrote: don't count them
    # (the template's pre-numbered No. column alone does not make a row; a note under the table does)
    last = next((i for i in range(len(texts) - 1, -1, -1) if _first_written(texts[i], m) is not None), -1)
    in_order = [f for _, f in sorted(data_cols.items())]
    for i, cells in enumerate(rows[:last + 1]):
        row = texts[i]
        rownum = grid.row_numbers[m.data_start + i]
        res.rows_in += 1
        if _contact_row(row, m, grid.sheet, rownum, rep):
            res.skipped_blank += 1
            continue
        values = {f: row[c] if c < len(row) else "" for c, f in data_cols.items()}
        if not any(values.values()):
            res.skipped_blank += 1
            continue
        first = next((values[f] for f in in_order if values[f]), "")
        if _NOTE_START.match(first):
            res.skipped_blank += 1
            continue
        _row_notes(grid, rownum, cells, data_cols, by_field, path, res)
        for c, f in personal_cols.items():
            v = row[c] if c < len(row) else ""
            if v:
                rep.contacts.append({"field": f, "value": v, "sheet": grid.sheet, "row": rownum})
        rec = {f: (values.get(f) or None) for f in RAW_FIELDS[kind.kind]}
        if kind is ISHIKAI and rec["inst_code"]:
            rec["inst_code"] = normalise_inst_code(rec["inst_code"], pref_code)
        rec.update(source_file=str(path), source_sheet=grid.sheet, source_row=rownum)
        records.append(rec)


def _first_written(row: list[str], m: HeaderMatch) -> int | None:
    """The first filled cell of a clean()ed row, the template's pre-numbered No. column not counted."""
    columns = m.columns
    return next((c for c, v in enumerate(row) if v and not (columns.get(c) == "no" and v.isdigit())), None)


def _contact_row(cells: list[str], m: HeaderMatch, sheet: str | None, rownum: int, rep: ReportFile) -> bool:
    """A contact line under (or between) the rows — `記入者：岩手 太郎`, `担当者 | 盛岡 花子`, `TEL 019-…` —
    is no data row: its values are kept as the sender block's are, for the return letter only. cells: clean()ed."""
    first = _first_written(cells, m)
    if first is None or _labelled(cells, first, in_table=True) is None:
        return False
    for c in range(first, len(cells)):
        hit = _labelled(cells, c, in_table=True)
        if hit:
            _keep_sender(rep, *hit, sheet, rownum)
    return True


def _row_notes(grid: Grid, rownum: int, cells: list, data_cols: dict[int, str], by_field: dict[str, Column],
               path: Path, res: ReadResult) -> None:
    """Warnings about a data row that is read: hidden in Excel, a CP932 line in a UTF-8 file, invisible
    characters (control characters, zero-width spaces) that clean() removed."""
    if rownum in grid.notes:
        rule, message = grid.notes[rownum]
        res.findings.append(finding(path, grid.sheet, rownum, None, None, rule, message, "warning"))
    for c in data_cols:
        v = cells[c] if c < len(cells) else None
        if v.__class__ is str and not v.isprintable() and INVISIBLE.search(v):
            shown = INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", v)
            res.findings.append(finding(path, grid.sheet, rownum, by_field[data_cols[c]].label, shown,
                                        "invisible_characters", _INVISIBLE_TEXT, "warning"))
            return


_CODE_SEPARATORS = re.compile(r"[\s,.\-‐−―ー－]")
_TEN_DIGITS = re.compile(r"\d{10}")


def normalise_inst_code(value: str, pref_code: str) -> str:
    """10 digits as written (separators dropped), or the 7-digit 医療機関番号 (01,1047,8) completed with the
    prefecture and 医科 (1). Anything else is returned as written, for the check to name it."""
    digits = _CODE_SEPARATORS.sub("", clean(value))
    if _TEN_DIGITS.fullmatch(digits):
        return digits
    n7 = codes.parse_inst_number(value)
    if n7:
        return codes.inst_code(pref_code, "1", n7)
    return clean(value)


def identify_sender(rep: ReportFile, candidates: dict[str, str]) -> None:
    """Who sent the file: the sender cell, else the file name. candidates: name_key -> configured id."""
    def match(t: str | None) -> str | None:
        if not t:
            return None
        k = text.name_key(t)
        if k in candidates:
            return candidates[k]
        hits = [(len(ck), v) for ck, v in candidates.items() if ck and ck in k]
        return max(hits)[1] if hits else None
    written = rep.sender_text
    # what the sender cell holds is kept (staged, or quoted in a finding) only when it is a configured sender's
    # name: the cell may hold more (紫波町 岩手 太郎), a person's name too
    if not (written and text.name_key(written) in candidates):
        rep.sender_text = None
    hit = match(written)
    if hit:
        rep.sender, rep.sender_source = hit, "block"
        return
    sheet, row = rep.sender_at or (None, None)
    label = rep.kind.sender_label
    hit = match(Path(rep.path).stem)
    if hit:
        rep.sender, rep.sender_source = hit, "file_name"
        if written:
            rep.result.findings.append(finding(rep.path, sheet, row, label, None, "sender_unknown_name",
                                               f"{label}欄の記載が設定の{label}と一致しないため、ファイル名から"
                                               f"判断しました。{label}は設定どおりの名称で書いてください。",
                                               "warning"))
        return
    if rep.layout != "unrecognised":
        rep.result.findings.append(finding(rep.path, sheet, row, label, None,
                                           "sender_unknown",
                                           f"提出元（{rep.kind.sender_label}）が分かりません。調査票の{rep.kind.sender_label}欄か"
                                           "ファイル名に名称を入れてください。区域の確認を省きました。", "warning"))
