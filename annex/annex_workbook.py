"""The annex workbook of a prefecture (<pref>_<県名>_在宅医療_別表.xlsx) and the national summary
(全国_在宅医療_集計.xlsx), written from the built annex.duckdb.

Every sheet is a table laid out to be printed as it is: title on top, header repeated on every page, A4
landscape fitted to one page wide, widths from the content (CJK counted double), explicit row heights for
wrapped text (LibreOffice does not grow rows), thin borders, frozen header and an autofilter.

All text from data is written as a string (write_string, or the _write_string behind it) and the workbook
refuses to turn strings into formulas, URLs or numbers: a name such as =HYPERLINK(…) stays text. No formula is
written at all; the totals come from resource_counts (計 rows) or are summed here.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from pathlib import Path

import duckdb
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from annex import text as textmod
from annex.codes import to_wareki
from annex.report_layout import CIRCLED, FONT, HUB_TORIKUMI, INSTITUTION_TORIKUMI
from annex.xlsx import LINE_MARGIN, display_width, wrapped_lines
from annex.xlsx_sheet import LeanWorkbook

FONT_SIZE = 10
LINE_HEIGHT = 13.5    # points per line of 10 pt text
ROW_PAD = 4           # points added to every computed row height
MAX_WIDTH = 40        # widest a column gets from its content; longer text wraps
YES = "○"
NATIONAL_FILE_NAME = "全国_在宅医療_集計.xlsx"
# in_memory: xlsxwriter otherwise writes every XML part to a temp file first (2.6× slower per workbook)
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                    "in_memory": True,
                    "default_format_properties": {"font_name": FONT, "font_size": FONT_SIZE, "font_scheme": "none",
                                                  "font_charset": 128}}
BORDER_COLOR = "#808080"
GROUP_BORDER_COLOR = "#000000"
# a group's label (圏域, 市町村) on the rows after its first: where the printer breaks the page is not known when
# writing (fit to one page wide), so each row carries it — light, so the group still reads as one block
REPEAT_COLOR = "#A6A6A6"
HEADER_FILL = "#DDEBF7"
SUBTOTAL_FILL = "#F2F2F2"
TOTAL_FILL = "#D9D9D9"
FAIL_FILL = "#FCE4E4"
FAIL_FONT = "#C00000"
NOT_REPORTED_FONT = "#9C5700"

# short forms of the 取組事項 (the full texts are in report_layout and in the 調査票's 記入要領)
INSTITUTION_TORIKUMI_SHORT = [
    "夜間・医師不在時・急変時等の診療の支援",
    "在宅療養移行患者に必要なサービス確保への働きかけ",
    "地域医療研修での在宅医療の現場研修の機会確保",
    "災害時等の医療提供計画の策定と他機関の計画策定支援",
    "地域包括支援センター等と協働したサービスの紹介",
    "入院機能を有する医療機関での急変時の受入れ",
]
HUB_TORIKUMI_SHORT = [
    "関係者の会議の定期開催、提供状況の把握・課題抽出・対応策の検討",
    "地域資源の把握と、退院から看取りまでの支援のための関係機関の調整",
    "関係機関の連携による急変時対応・24時間体制の構築、情報共有の促進",
    "関係者への研修・情報共有",
    "地域住民への普及啓発",
]
assert len(INSTITUTION_TORIKUMI_SHORT) == len(INSTITUTION_TORIKUMI)
assert len(HUB_TORIKUMI_SHORT) == len(HUB_TORIKUMI)

SHEET_COVER = "表紙"
SHEET_INSTITUTIONS = "積極的役割を担う医療機関"
SHEET_HUBS = "連携を担う拠点"
SHEET_COVERAGE = "圏域別の配置状況"
SHEET_RESOURCES = "在宅療養支援病院・診療所等の状況"
SHEET_CANDIDATES = "選定候補"
SHEET_CHANGES = "前回からの変更"
SHEET_FINDINGS = "検証結果"
SHEETS = [
    (SHEET_COVER, "時点・内容・出典"),
    (SHEET_INSTITUTIONS, "郡市医師会から報告された、在宅医療において積極的役割を担う医療機関（圏域・市町村順）"),
    (SHEET_HUBS, "市町村から報告された、在宅医療に必要な連携を担う拠点"),
    (SHEET_COVERAGE, "在宅医療圏ごとの医療機関・拠点の数と、指針の要件（各1以上）を満たすか"),
    (SHEET_RESOURCES, "市町村・在宅医療圏ごとの在宅療養支援病院・診療所等の届出医療機関数（厚生局の名簿から集計）"),
    (SHEET_CANDIDATES, "選定の考え方による、市町村ごとの積極的役割を担う医療機関の候補と報告の有無"),
    (SHEET_CHANGES, "この別表を作成した実行で見つかった、その前に作成した実行からの追加・削除・変更"),
    (SHEET_FINDINGS, "医師会・市町村の報告と設定ファイルの検証結果（要修正・要確認）、名簿の名称の外字"),
]
SOURCE_KINDS = {  # source_files.kind -> what the reader calls it, in the order shown
    "facility_file": "医療情報ネット オープンデータ（施設票）",
    "meibo": "届出受理医療機関名簿（地方厚生（支）局）",
    "code_list": "保険医療機関・保険薬局のコード内容別一覧（地方厚生（支）局）",
    "municipalities": "全国地方公共団体コード（総務省）",
}
ATTRIBUTION = ["出典：「医療情報ネットのオープンデータ」（厚生労働省）", "地方厚生（支）局「届出受理医療機関名簿」"]
SEVERITY_LABEL = {"error": "要修正", "warning": "要確認"}
ENTITY_LABEL = {"institution": "医療機関", "hub": "拠点"}   # changes.entity
CHANGE_LABEL = {"added": "追加", "removed": "削除", "status_changed": "支援病・支援診の届出",   # changes.change
                "kouhou_changed": "在後病", "torikumi_changed": "取組", "area_changed": "事業区域",
                "operator_changed": "運営主体"}
NO_CHANGES = "前回の実行結果がないため、変更はありません。"
GETA = "〓"   # the customary mark for a character that cannot be set (ゲタ)
GAIJI_NOTE = "〓：外字（私用領域の文字）のため印刷できない文字です（このシートで{n}字。データには元の文字を残しています）。"


def annex_file_name(pref_code: str, pref_name: str) -> str:
    return f"{pref_code}_{pref_name}_在宅医療_別表.xlsx"


# --- a small table writer ------------------------------------------------------------------------
@dataclass(frozen=True)
class Col:
    label: str                    # may hold line breaks where a long header should wrap
    kind: str = "text"            # text | number | flag (○, centred) | center
    cap: float = MAX_WIDTH        # widest the content may make it
    width: float | None = None    # fixed width instead of one from the content
    min: float = 4                # narrowest (an empty table still reads)
    group: int | None = None      # shown on the first row of its group only (0 = outermost group)


@dataclass
class Row:
    values: list                  # str | int | float | None per column
    groups: tuple = ()            # keys of the nested groups the row belongs to (area, municipality, …)
    props: dict = field(default_factory=dict)       # extra format properties for the whole row
    cell_props: dict = field(default_factory=dict)  # column index -> extra format properties
    merge_label: int = 1          # the first value spans this many columns (計 rows)


class _Formats:
    """Formats made on demand from their properties (xlsxwriter needs one object per combination)."""

    def __init__(self, wb: xlsxwriter.Workbook):
        self.wb = wb
        self.cache: dict = {}
        self.base = {"font_name": FONT, "font_size": FONT_SIZE, "valign": "top"}
        self.title = self.get(font_size=14, bold=True)
        self.subtitle = self.get()
        self.note = self.get(text_wrap=True, font_size=9)
        self.heading = self.get(font_size=11, bold=True, bottom=1)

    def get(self, **props):
        """The format with these properties on top of the base font."""
        props = {**self.base, **props}
        key = tuple(sorted(props.items()))
        if key not in self.cache:
            self.cache[key] = self.wb.add_format(props)
        return self.cache[key]


def fit_width(text_width: float) -> float:
    """Column width in which text of this display width stays on one line by annex.xlsx.wrapped_lines."""
    return math.ceil((text_width + LINE_MARGIN) * 2) / 2


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _header_width(label: str) -> float:
    """Narrowest width that shows a header label in at most 2 lines (3 when very long), or on the lines
    it is broken into."""
    if "\n" in label:
        return fit_width(max(display_width(p) for p in label.split("\n")))
    w = display_width(label)
    lines = 1 if w <= 8 else 2 if w <= 24 else 3
    return fit_width(math.ceil(w / lines) + (1 if lines > 1 else 0))


def _printable(rows: list[Row]) -> tuple[list[Row], int]:
    """The rows with every 外字 (a private-use character, e.g. U+E1D1 in a 名簿 name) replaced by 〓, and how
    many were: no font has a glyph for them, so they print as a box. The DuckDB tables keep the original."""
    # most sheets have none: one search through the sheet's distinct texts instead of one per cell
    distinct = set(chain.from_iterable(row.values for row in rows))
    if not textmod.has_gaiji("".join(v for v in distinct if isinstance(v, str))):
        return rows, 0
    out, n = [], 0
    for row in rows:
        if any(isinstance(v, str) and textmod.has_gaiji(v) for v in row.values):
            values = []
            for v in row.values:
                if isinstance(v, str) and textmod.has_gaiji(v):
                    n += sum(map(textmod.is_private_use, v))
                    v = "".join(GETA if textmod.is_private_use(c) else c for c in v)
                values.append(v)
            row = replace(row, values=values)
        out.append(row)
    return out, n


def _texts(values) -> set[str]:
    """The texts (_text) of a column's values, each once: a column repeats its names, marks and counts."""
    if set(map(type, values)) <= {str, int, type(None)}:   # equal values of these show the same text
        values = set(values)
    return set(map(_text, values))


def _widths(cols: list[Col], rows: list[Row]) -> list[float]:
    # the columns of the rows; a merged label (計 rows) does not count towards its first column's width
    columns = list(zip(*(r.values for r in rows if r.merge_label == 1))) or [()] * len(cols)
    merged = [r for r in rows if r.merge_label != 1]
    widths = []
    for i, c in enumerate(cols):
        if c.width is not None:
            widths.append(c.width)
            continue
        values = [*columns[i], *(r.values[i] for r in merged if i >= r.merge_label)]
        data = max((display_width(part) for t in _texts(values) for part in t.split("\n")), default=0)
        widths.append(max(c.min, min(c.cap, max(fit_width(data), _header_width(c.label)))))
    return widths


def _height(lines: int) -> float:
    return LINE_HEIGHT * lines + ROW_PAD


def _print_setup(ws: Worksheet, header_row: int | None, pref_label: str) -> None:
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.center_horizontally()
    # the footer: sheet name and page n / N (the wording); the header: whose table, as of when
    ws.set_header("&R&9" + pref_label.replace("&", "&&"))
    ws.set_footer("&L&9&A&C&9&P / &N")
    ws.hide_gridlines(2)
    if header_row is not None:
        ws.repeat_rows(header_row)


def _row_formats(fmt: _Formats, cols: list[Col], row: Row, same: tuple[bool, ...], new_outer: bool,
                 is_last: bool) -> list:
    """The format of each cell of a data row; None for the columns its merged label covers after the first.
    same: per group level, whether the row is in the previous row's group; new_outer: it starts another outer
    group (a darker line above); is_last: the table's last row (a line below)."""
    formats = []
    for i, c in enumerate(cols):
        if 0 < i < row.merge_label:
            formats.append(None)
            continue
        # a merged label is never a continued group's
        continuing = c.group is not None and (i > 0 or row.merge_label == 1) and same[c.group]
        props = {"left": 1, "right": 1, "left_color": BORDER_COLOR, "right_color": BORDER_COLOR,
                 "top": 0 if continuing else 1,
                 "top_color": GROUP_BORDER_COLOR if new_outer else BORDER_COLOR,
                 "bottom": 1 if is_last else 0, "bottom_color": BORDER_COLOR}
        if c.kind == "number":
            props.update(align="right", num_format="#,##0", indent=1)
        elif c.kind in ("flag", "center"):
            props.update(align="center")
        else:
            props.update(text_wrap=True)
        if continuing:   # the group's label again, in grey: seen after a page break, kept by a filter
            props.update(font_color=REPEAT_COLOR)
        props.update(row.props)
        props.update(row.cell_props.get(i) or {})
        formats.append(fmt.get(**props))
    return formats


def _write_table(ws: Worksheet, fmt: _Formats, cols: list[Col], rows: list[Row], *, title: str,
                 subtitle: str, notes: list[str], empty_text: str, pref_label: str,
                 freeze_cols: int = 0) -> int:
    """Title, subtitle, note lines, header and rows from row 0; returns the header row (0-based)."""
    rows, gaiji = _printable(rows)
    if gaiji:
        notes = [*notes, GAIJI_NOTE.format(n=gaiji)]
    widths = _widths(cols, rows)
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)
    total = sum(widths)
    last_col = len(cols) - 1
    ws.write_string(0, 0, title, fmt.title)
    ws.set_row(0, 22)
    ws.write_string(1, 0, subtitle, fmt.subtitle)
    r = 2
    for note in notes:
        if last_col > 0:
            ws.merge_range(r, 0, r, last_col, "", fmt.note)
        ws.write_string(r, 0, note, fmt.note)
        ws.set_row(r, 12 * wrapped_lines(note, total / 0.9) + 3)  # 9 pt: about 10 % more per line
        r += 1
    header = r
    f_head = fmt.get(bold=True, bg_color=HEADER_FILL, border=1, border_color=BORDER_COLOR,
                     text_wrap=True, align="center", valign="vcenter")
    for i, c in enumerate(cols):
        ws.write_string(header, i, c.label, f_head)
    ws.set_row(header, _height(max(wrapped_lines(c.label, w) for c, w in zip(cols, widths))))

    if not rows:
        f_empty = fmt.get(border=1, border_color=BORDER_COLOR, text_wrap=True)
        if last_col > 0:
            ws.merge_range(header + 1, 0, header + 1, last_col, "", f_empty)
        ws.write_string(header + 1, 0, empty_text, f_empty)
        ws.set_row(header + 1, _height(wrapped_lines(empty_text, total)))
    # the cells are stored through xlsxwriter's undecorated writers: the decorator of write_string & co., which
    # reads A1 notation, costs as much as storing the cell (300,000 cells nationally)
    write_string, write_number, write_blank = ws._write_string, ws._write_number, ws._write_blank
    depth = max((c.group + 1 for c in cols if c.group is not None), default=0)
    n = len(cols)
    # a data row's formats differ only by these few things: they are looked up once per combination
    row_formats: dict[tuple, list] = {}
    prev: Row | None = None
    for k, row in enumerate(rows):
        rr = header + 1 + k
        # per group level: whether the row is in the previous row's group (its label is shown again, in grey)
        same = tuple(prev is not None and row.groups[:g + 1] == prev.groups[:g + 1] for g in range(depth))
        new_outer = prev is not None and row.groups[:1] != prev.groups[:1]
        is_last = k == len(rows) - 1
        key = (row.merge_label, same, new_outer, is_last)
        if row.props or row.cell_props:
            key += (tuple(row.props.items()), tuple((i, tuple(p.items())) for i, p in row.cell_props.items()))
        formats = row_formats.get(key)
        if formats is None:
            formats = row_formats[key] = _row_formats(fmt, cols, row, same, new_outer, is_last)
        span = row.merge_label
        if span > 1:
            ws.merge_range(rr, 0, rr, span - 1, "", formats[0])
        lines = 1
        for i in range(n) if span == 1 else (0, *range(span, n)):
            value = row.values[i]
            f = formats[i]
            if value is None or value == "":
                write_blank(rr, i, None, f)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                write_number(rr, i, value, f)
            else:
                value = str(value)
                write_string(rr, i, value, f)
                if cols[i].kind == "text":
                    lines = max(lines, wrapped_lines(value, sum(widths[:span]) if i == 0 else widths[i]))
        ws.set_row(rr, _height(lines))
        prev = row
    ws.freeze_panes(header + 1, freeze_cols)
    ws.autofilter(header, 0, header + len(rows), last_col)
    _print_setup(ws, header, pref_label)
    return header


def _flag(value) -> str:
    return YES if value else ""


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list):
    return con.execute(sql, params).fetchone()[0]


# --- queries -------------------------------------------------------------------------------------
# 圏域 in the order areas.csv lists them (areas.area_order: the plan's own order), not by name or code
AREA_ORDER = """area_order AS (SELECT DISTINCT pref_code, home_care_area, area_order AS area_key
                               FROM areas WHERE pref_code IN (SELECT unnest($prefs)))"""
# Each sheet's rows come from one query over every prefecture being written (pref_code first, ordered by it):
# a query costs 2–4 ms whatever its rows, and 47 workbooks asked ~850 of them


def _by_pref(data: list[tuple], pref_codes: list[str], make) -> dict[str, list]:
    """Rows (pref_code first) -> {pref_code: [make(rest of the row), …]} in their order; [] for a prefecture
    without rows."""
    out: dict[str, list] = {code: [] for code in pref_codes}
    for code, *rest in data:
        out[code].append(make(*rest))
    return out


def _institution_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    data = con.execute(f"""
        WITH {AREA_ORDER}
        SELECT i.pref_code, i.home_care_area, i.municipality_name, i.name, i.address, i.shien_label, i.kouhou_byoin, i.inpatient,
               i.torikumi_1, i.torikumi_2, i.torikumi_3, i.torikumi_4, i.torikumi_5, i.torikumi_6, i.senders_text,
               i.municipality_code
        FROM annex_institutions i
        LEFT JOIN area_order o ON o.pref_code = i.pref_code AND o.home_care_area = i.home_care_area
        WHERE i.pref_code IN (SELECT unnest($prefs))
        ORDER BY i.pref_code, o.area_key NULLS LAST, i.home_care_area, i.municipality_code NULLS LAST,
                 CASE WHEN i.shien_symbol LIKE '支援病%' THEN 0 WHEN i.shien_symbol LIKE '支援診%' THEN 1 ELSE 2 END,
                 i.shien_symbol, i.inst_code""", {"prefs": pref_codes}).fetchall()

    def row(area, muni, name, address, label, kouhou, inpatient, t1, t2, t3, t4, t5, t6, senders, muni_code):
        return Row([area, muni, name, address, label or "―", _flag(kouhou), "不明" if inpatient is None else _flag(inpatient),
                    *(_flag(t) for t in (t1, t2, t3, t4, t5, t6)), senders], groups=(area, muni_code or muni))
    return _by_pref(data, pref_codes, row)


def _hub_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    data = con.execute("""
        SELECT pref_code, name, hub_kind, area_names, array_to_string(home_care_areas, '・'), operator, operator_kind,
               start_fy_wareki, start_fy, start_text, same_as_program, same_as_institution,
               torikumi_1, torikumi_2, torikumi_3, torikumi_4, torikumi_5, senders_text
        FROM annex_hubs h WHERE pref_code IN (SELECT unnest($prefs))
        ORDER BY pref_code, (SELECT min(a.area_order) FROM areas a WHERE list_contains(h.area_codes, a.municipality_code)),
                 area_codes[1], name, hub_id""", {"prefs": pref_codes}).fetchall()

    def row(name, kind, area_names, areas, operator, op_kind, fy_wareki, fy, start_text, same_prog, same_inst,
            t1, t2, t3, t4, t5, senders):
        start = f"{fy_wareki}\n（{fy}）" if fy_wareki else (start_text or "")  # 2 lines: keeps the column narrow
        return Row([name, kind or "未記入", area_names, areas, operator, op_kind or "未記入", start,
                    _flag(same_prog), _flag(same_inst), *(_flag(t) for t in (t1, t2, t3, t4, t5)), senders])
    return _by_pref(data, pref_codes, row)


def _coverage_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    data = con.execute("""
        SELECT pref_code, home_care_area, municipality_names, institutions, hubs, meets_rule, gap
        FROM coverage WHERE pref_code IN (SELECT unnest($prefs))
        ORDER BY pref_code, area_order""", {"prefs": pref_codes}).fetchall()

    def row(area, munis, inst, hubs, meets, gap):
        r = Row([area, munis, inst, hubs, "満たす" if meets else "満たさない", gap or ""])
        if not meets:
            r.props = {"bg_color": FAIL_FILL}
            r.cell_props = {4: {"bold": True, "font_color": FAIL_FONT}}
        return r
    return _by_pref(data, pref_codes, row)


RESOURCE_FIELDS = ["shien_byo_1", "shien_byo_2", "shien_byo_3", "shien_shin_1", "shien_shin_2", "shien_shin_3",
                   "zaiisoukan", "kouhou_byoin"]
RESOURCE_LABELS = ["支援病1", "支援病2", "支援病3", "支援診1", "支援診2", "支援診3", "在医総管", "在後病"]


def _resource_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    data = con.execute(f"""
        SELECT pref_code, level, home_care_area, municipality_code, label, {', '.join(RESOURCE_FIELDS)}
        FROM resource_counts
        WHERE pref_code IN (SELECT unnest($prefs))
        ORDER BY pref_code, level = 'prefecture', area_order, home_care_area, level = 'area', municipality_code
        """, {"prefs": pref_codes}).fetchall()

    def row(level, area, muni_code, label, *counts):
        if level == "municipality":
            return Row([area, label, *counts], groups=(area, muni_code))
        if level == "area":
            return Row([label, None, *counts], groups=(area, None), merge_label=2,
                       props={"bold": True, "bg_color": SUBTOTAL_FILL})
        return Row([label, None, *counts], groups=("\0prefecture",), merge_label=2,
                   props={"bold": True, "bg_color": TOTAL_FILL})
    return _by_pref(data, pref_codes, row)


def _candidate_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    data = con.execute(f"""
        WITH {AREA_ORDER}
        SELECT c.pref_code, c.home_care_area, c.municipality_name, c.rule_step, c.rule, c.name, c.inst_municipality_name,
               c.shien_symbol, c.reported, c.inst_code, c.municipality_code
        FROM candidates c
        LEFT JOIN area_order o ON o.pref_code = c.pref_code AND o.home_care_area = c.home_care_area
        WHERE c.pref_code IN (SELECT unnest($prefs))
        ORDER BY c.pref_code, o.area_key, c.home_care_area, c.municipality_code, c.rule_step,
                 c.shien_symbol NULLS LAST, c.inst_code""", {"prefs": pref_codes}).fetchall()

    def row(area, muni, step, rule, name, inst_muni, symbol, reported, inst_code, muni_code):
        r = Row([area, muni, step, rule, name, inst_muni, symbol,
                 "" if inst_code is None else ("報告あり" if reported else "未報告")], groups=(area, muni_code))
        if inst_code is not None and not reported:
            r.cell_props = {7: {"bold": True, "font_color": NOT_REPORTED_FONT}}
        return r
    return _by_pref(data, pref_codes, row)


def _table_exists(con, name: str) -> bool:
    return bool(_one(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]))


def _previous_run(con) -> str | None:
    """The successful run before the one that built this file (the build `changes` compares with), as the
    reader knows it (date and time in JST, short ID); None if this is the first run (or the file has no run
    log)."""
    if not _table_exists(con, "runs"):
        return None
    sql = """SELECT run_id, {when} FROM runs
             WHERE outcome = 'success' AND started_at < (SELECT max(started_at) FROM runs)
             ORDER BY started_at DESC LIMIT 1"""
    try:
        row = con.execute(sql.format(when="started_at AT TIME ZONE 'Asia/Tokyo'")).fetchone()
    except duckdb.Error:  # no ICU time zones: the time stays as stored
        row = con.execute(sql.format(when="started_at")).fetchone()
    if row is None:
        return None
    run_id, started = row
    when = f"{to_wareki(started.date())} {started:%H:%M}" if isinstance(started, dt.datetime) else _text(started)
    return f"{when}、実行ID {str(run_id)[:8]}"


def _changes(con, pref_codes: list[str]) -> tuple[dict[str, list[Row]], str, str]:
    """Rows of the changes table per prefecture, the note saying what they compare, and the text shown
    when there are none."""
    previous = _previous_run(con)
    # a run that found nothing new rebuilds nothing (this workbook included): the table stays what the last
    # build found, which the note says so that a change made in the evening still shows after the nightly no-op
    what = f"この別表を作成した実行が、その前に作成した実行（{previous}）と比べて見つけた" if previous else "前回の実行結果と比べた"
    note = (f"{what}、積極的役割を担う医療機関・連携を担う拠点の追加・削除と、届出・取組・事業区域・運営主体の変化。"
            "入力が変わらず作り直さなかった実行では、この表は変わりません。")
    if not _table_exists(con, "changes"):
        return {code: [] for code in pref_codes}, note, NO_CHANGES
    data = con.execute("""
        SELECT pref_code, entity, change, "key", name, "before", "after" FROM changes
        WHERE pref_code IN (SELECT unnest($prefs))
        ORDER BY pref_code, entity DESC, change, "key" """, {"prefs": pref_codes}).fetchall()

    def row(entity, change, key, name, before, after):
        return Row([ENTITY_LABEL.get(_text(entity), _text(entity)), CHANGE_LABEL.get(_text(change), _text(change)),
                    _text(key), _text(name), _text(before), _text(after)])
    return _by_pref(data, pref_codes, row), note, NO_CHANGES if previous is None else "前回からの変更はありません。"


def _finding_rows(con, pref_codes: list[str]) -> dict[str, list[Row]]:
    """Findings on a prefecture's own files (raw/<code>/…), and the 名簿's 外字 warnings on its institutions (the
    names the annex prints with 〓)."""
    data = con.execute("""
        WITH own AS (
            SELECT p.pref_code, f.*
            FROM findings f JOIN (SELECT unnest($prefs) AS pref_code) p ON starts_with(f.source_file, p.pref_code || '/')
            UNION ALL
            SELECT i.pref_code, f.*
            FROM findings f JOIN institutions i
              ON f.rule = 'gaiji' AND f.source_file = i.source_file AND f."row" = i.source_row AND f.value = i.name
            WHERE i.pref_code IN (SELECT unnest($prefs))
        )
        SELECT pref_code, source_file, sheet, "row", "column", value, severity, message
        FROM own
        ORDER BY pref_code, severity <> 'error', source_file, sheet NULLS FIRST, "row" NULLS FIRST, "column",
                 message  -- two findings on one cell: in a fixed order""",
                       {"prefs": pref_codes}).fetchall()

    def row(source_file, sheet, row, column, value, severity, message):
        r = Row([Path(source_file).name, sheet or "", "全体" if row is None else row, column or "", value or "",
                 SEVERITY_LABEL.get(severity, severity), message or ""])
        if severity == "error":
            r.cell_props = {5: {"bold": True, "font_color": FAIL_FONT}}
        return r
    return _by_pref(data, pref_codes, row)


def _meibo_files(con, pref_codes: list[str]) -> dict[str, set[str]]:
    """The 名簿 files each prefecture's notifications come from."""
    return {code: set(files) for code, files in _by_pref(con.execute(
        "SELECT DISTINCT pref_code, source_file FROM notifications WHERE pref_code IN (SELECT unnest($prefs))",
        {"prefs": pref_codes}).fetchall(), pref_codes, lambda f: f).items()}


def _sources(con, used: dict[str, set[str]]) -> dict[str, list[tuple[str, str, dt.date | None]]]:
    """(kind label, file name, as-of) of the reference files read; of the 名簿 only those the prefecture's
    notifications come from (used: _meibo_files; all of them if none do)."""
    data = con.execute("""
        SELECT kind, source_file, as_of FROM source_files
        WHERE status = 'read' AND kind IN ('facility_file', 'meibo', 'code_list', 'municipalities')
        ORDER BY source_file""").fetchall()
    order = list(SOURCE_KINDS)
    data = sorted(data, key=lambda s: (order.index(s[0]), s[1]))
    return {code: [(SOURCE_KINDS[k], f, a) for k, f, a in data if k != "meibo" or not files or f in files]
            for code, files in used.items()}


def _meibo_as_of(con, used: dict[str, set[str]]) -> dict[str, str]:
    """The as-of dates of the 名簿 files each prefecture's notifications come from (used: _meibo_files)."""
    as_of = dict(con.execute("SELECT source_file, as_of FROM source_files WHERE kind = 'meibo' AND status = 'read'")
                 .fetchall())
    out = {}
    for code, files in used.items():
        dates = {as_of[f] for f in files if f in as_of}
        if not dates or None in dates:
            out[code] = "時点不明"
        else:
            out[code] = "・".join(to_wareki(d) for d in sorted(dates)) + "時点"
    return out


COUNT_KEYS = ["institutions", "hubs", "areas", "areas_met", "errors", "warnings", "shien_byo", "shien_shin"]


def _counts(con, pref_codes: list[str]) -> dict[str, dict[str, int]]:
    """Per prefecture: institutions and hubs named, areas and those meeting the rule, findings on its own
    files (raw/<code>/…), 支援病 and 支援診 from the 名簿. One grouped query per table (the national summary
    asks for 47 prefectures)."""
    got = {code: dict.fromkeys(COUNT_KEYS, 0) for code in pref_codes}
    queries = [
        ("SELECT pref_code, count(*) FROM annex_institutions GROUP BY 1", ["institutions"]),
        ("SELECT pref_code, count(*) FROM annex_hubs GROUP BY 1", ["hubs"]),
        ("SELECT pref_code, count(*), count(*) FILTER (WHERE meets_rule) FROM coverage GROUP BY 1",
         ["areas", "areas_met"]),
        ("""SELECT split_part(source_file, '/', 1), count(*) FILTER (WHERE severity = 'error'),
                   count(*) FILTER (WHERE severity = 'warning') FROM findings GROUP BY 1""", ["errors", "warnings"]),
        ("""SELECT pref_code, coalesce(sum(shien_byo_1 + shien_byo_2 + shien_byo_3), 0),
                   coalesce(sum(shien_shin_1 + shien_shin_2 + shien_shin_3), 0)
            FROM resource_counts WHERE level = 'prefecture' GROUP BY 1""", ["shien_byo", "shien_shin"]),
    ]
    for sql, keys in queries:
        for code, *values in con.execute(sql).fetchall():
            if code in got:
                got[code].update(zip(keys, (int(v) for v in values)))
    return got


# --- sheets --------------------------------------------------------------------------------------
@dataclass
class AnnexData:
    """What the annex workbooks of some prefectures show, read from the built database in one query per kind
    (annex_data): each sheet's rows per prefecture code."""
    institutions: dict[str, list[Row]]
    hubs: dict[str, list[Row]]
    coverage: dict[str, list[Row]]
    resources: dict[str, list[Row]]
    candidates: dict[str, list[Row]]
    changes: dict[str, list[Row]]
    change_note: str
    no_change: str
    findings: dict[str, list[Row]]
    sources: dict[str, list[tuple[str, str, dt.date | None]]]
    meibo_as_of: dict[str, str]
    counts: dict[str, dict[str, int]]


def annex_data(con: duckdb.DuckDBPyConnection, pref_codes: list[str]) -> AnnexData:
    used = _meibo_files(con, pref_codes)
    changes, note, no_change = _changes(con, pref_codes)
    return AnnexData(_institution_rows(con, pref_codes), _hub_rows(con, pref_codes), _coverage_rows(con, pref_codes),
                     _resource_rows(con, pref_codes), _candidate_rows(con, pref_codes), changes, note, no_change,
                     _finding_rows(con, pref_codes), _sources(con, used), _meibo_as_of(con, used),
                     _counts(con, pref_codes))


def _write_cover(ws: Worksheet, fmt: _Formats, data: AnnexData, pref_code: str, pref_name: str, as_of: dt.date,
                 pref_label: str) -> None:
    widths = [36, 70, 24]   # A: sheet / item / source; B: description / file (B+C hold a description on one line)
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)
    total = sum(widths)
    f_big = fmt.get(font_size=16, bold=True, valign="vcenter")
    f_date = fmt.get(font_size=12)
    cell = {"border": 1, "border_color": BORDER_COLOR, "text_wrap": True}
    f_head = fmt.get(**cell, bold=True, bg_color=HEADER_FILL, align="center", valign="vcenter")
    f_cell = fmt.get(**cell)
    f_line = fmt.get(text_wrap=True)
    r = 0

    def line(text: str, f, height: float | None = None) -> None:
        nonlocal r
        ws.merge_range(r, 0, r, 2, "", f)
        ws.write_string(r, 0, text, f)
        ws.set_row(r, height or _height(wrapped_lines(text, total)))
        r += 1

    def row(cells: list, formats: list, spans: list[int]) -> None:
        """One table row; spans: columns each cell covers (they add up to 3)."""
        nonlocal r
        lines, c = 1, 0
        for v, f, span in zip(cells, formats, spans):
            if span > 1:
                ws.merge_range(r, c, r, c + span - 1, "", f)
            if isinstance(v, (int, float)):
                ws.write_number(r, c, v, f)
            else:
                ws.write_string(r, c, v, f)
                lines = max(lines, wrapped_lines(v, sum(widths[c:c + span])))
            c += span
        ws.set_row(r, _height(lines))
        r += 1

    line(f"{pref_name} 在宅医療の体制（第8次医療計画 別表）", f_big, 30)
    line(f"{to_wareki(as_of)}現在", f_date, 20)
    r += 1

    line("内容", fmt.heading, 20)
    row(["シート", "内容"], [f_head, f_head], [1, 2])
    for name, desc in SHEETS[1:]:
        row([name, desc], [f_cell, f_cell], [1, 2])
    r += 1

    c = data.counts[pref_code]
    line("概要", fmt.heading, 20)
    f_n = {u: fmt.get(**cell, align="right", indent=1, num_format=f'#,##0" {u}"') for u in ("機関", "拠点", "圏域", "件")}
    for label, n, unit in [
        ("在宅医療において積極的役割を担う医療機関", c["institutions"], "機関"),
        ("在宅医療に必要な連携を担う拠点", c["hubs"], "拠点"),
        ("在宅医療圏", c["areas"], "圏域"),
        ("　うち指針の要件（積極的役割を担う医療機関・連携を担う拠点が各1以上）を満たす", c["areas_met"], "圏域"),
        ("　うち満たさない", c["areas"] - c["areas_met"], "圏域"),
        ("検証結果（報告・設定ファイル）　要修正", c["errors"], "件"),
        ("検証結果（報告・設定ファイル）　要確認", c["warnings"], "件"),
    ]:
        row([label, n], [f_cell, f_n[unit]], [2, 1])
    r += 1

    line("出典・データの時点", fmt.heading, 20)
    row(["資料", "ファイル", "時点"], [f_head, f_head, f_head], [1, 1, 1])
    for kind, file, d in data.sources[pref_code]:
        row([kind, Path(file).name, to_wareki(d) if d else "時点不明"], [f_cell, f_cell, f_cell], [1, 1, 1])
    r += 1
    for text in [*ATTRIBUTION,
                 "積極的役割を担う医療機関は郡市医師会の、連携を担う拠点は市町村の報告によります"
                 "（検証で要修正となった行は載せていません）。",
                 "種別・在後病・届出数は厚生局の届出受理医療機関名簿によります（報告された種別ではありません）。"]:
        line(text, f_line)
    _print_setup(ws, None, pref_label)
    ws.fit_to_pages(1, 1)


def _table_sheet(wb: xlsxwriter.Workbook, fmt: _Formats, pref_name: str, as_of_text: str, sheet: str,
                 title: str, cols: list[Col], rows: list[Row], notes: list[str], empty_text: str,
                 freeze_cols: int = 0) -> None:
    _write_table(wb.add_worksheet(sheet), fmt, cols, rows, title=f"{pref_name}　{title}", subtitle=as_of_text,
                 notes=notes, empty_text=empty_text, pref_label=f"{pref_name}　{as_of_text}",
                 freeze_cols=freeze_cols)


def _torikumi(n: int) -> Col:
    return Col(f"取組{CIRCLED[n - 1]}", "flag", width=5)


def _torikumi_note(short: list[str]) -> str:
    return "取組事項　" + "　".join(f"{CIRCLED[i]}{t}" for i, t in enumerate(short))


def _close(wb: xlsxwriter.Workbook, out_path: Path, ok: bool) -> None:
    """Close the workbook; a workbook that failed half-way is not left behind."""
    wb.close()
    if not ok:
        out_path.unlink(missing_ok=True)


def write_annex(con: duckdb.DuckDBPyConnection, out_path: Path, pref_code: str, pref_name: str,
                as_of: dt.date, data: AnnexData | None = None) -> Path:
    """Write the annex workbook of one prefecture to out_path (the caller names it, see annex_file_name).

    con is an open connection to the built annex.duckdb (read-only is enough); data: annex_data() of several
    prefectures including this one, when the caller writes several (else read here for this one)."""
    out_path = Path(out_path)
    data = data or annex_data(con, [pref_code])
    as_of_text = f"{to_wareki(as_of)}現在"
    wb = LeanWorkbook(str(out_path), WORKBOOK_OPTIONS)
    ok = False
    try:
        fmt = _Formats(wb)
        _write_cover(wb.add_worksheet(SHEET_COVER), fmt, data, pref_code, pref_name, as_of,
                     f"{pref_name}　{as_of_text}")
        sheet = partial(_table_sheet, wb, fmt, pref_name, as_of_text)

        sheet(SHEET_INSTITUTIONS, "在宅医療において積極的役割を担う医療機関",
              [Col("圏域", group=0, cap=12), Col("市町村", group=1, cap=12), Col("医療機関名", cap=32),
               Col("所在地", cap=30), Col("種別", cap=32), Col("在後病", "flag", width=5),
               Col("入院機能", "flag", width=6), *(_torikumi(n) for n in range(1, 7)),
               Col("報告した\n医師会", cap=16)],
              data.institutions[pref_code],
              [_torikumi_note(INSTITUTION_TORIKUMI_SHORT),
               "種別：在宅療養支援病院（支援病）・在宅療養支援診療所（支援診）の届出（厚生局の名簿による。―は届出なし）。"
               "在後病：在宅療養後方支援病院。入院機能：病院または病床のある診療所に○"
               "（医療情報ネットと紐付かない診療所は「不明」）。"],
              "報告された医療機関はありません。", freeze_cols=3)
        sheet(SHEET_HUBS, "在宅医療に必要な連携を担う拠点",
              [Col("名称", cap=22), Col("拠点の種別", cap=12), Col("事業区域", cap=16), Col("在宅\n医療圏", cap=12),
               Col("運営主体", cap=18), Col("運営主体の\n種別", cap=12), Col("開始年度", cap=12),
               Col("推進事業の\n実施主体と\n同一", "flag"), Col("積極的役割\nを担う医療\n機関と同一", "flag"),
               *(_torikumi(n) for n in range(1, 6)), Col("報告した\n市町村", cap=12)],
              data.hubs[pref_code],
              [_torikumi_note(HUB_TORIKUMI_SHORT),
               "推進事業：在宅医療・介護連携推進事業（介護保険法の地域支援事業）。開始年度は和暦（西暦）。"],
              "報告された拠点はありません。", freeze_cols=1)
        sheet(SHEET_COVERAGE, "圏域別の配置状況",
              [Col("在宅\n医療圏"), Col("市町村", cap=36), Col("積極的役割を\n担う医療機関\nの数", "number"),
               Col("連携を担う\n拠点の数", "number"), Col("指針の要件", "center"), Col("不足", cap=56)],
              data.coverage[pref_code],
              ["指針の要件：在宅医療圏ごとに、積極的役割を担う医療機関と連携を担う拠点をそれぞれ1以上位置付ける。"
               "満たさない圏域は色付きで示す。拠点は事業区域が圏域に掛かれば数える。"],
              "在宅医療圏が設定されていません（areas.csv）。", freeze_cols=1)
        sheet(SHEET_RESOURCES, "在宅療養支援病院・診療所等の状況",
              [Col("圏域", group=0), Col("市町村", group=1), *(Col(lbl, "number") for lbl in RESOURCE_LABELS)],
              data.resources[pref_code],
              [f"厚生局の届出受理医療機関名簿（{data.meibo_as_of[pref_code]}）から集計。支援診2は2ア・2イを含む。",
               "支援病＝在宅療養支援病院、支援診＝在宅療養支援診療所（1＝機能強化型・単独型、2＝機能強化型・連携型、"
               "3＝従来型）、在医総管＝在宅時医学総合管理料の届出、在後病＝在宅療養後方支援病院。単位：医療機関数。"],
              "在宅医療圏が設定されていません（areas.csv）。", freeze_cols=2)
        sheet(SHEET_CANDIDATES, "積極的役割を担う医療機関の選定候補",
              [Col("圏域", group=0, cap=12), Col("市町村", group=1, cap=12), Col("段階", "center", group=1),
               Col("理由", group=1, cap=43), Col("医療機関名", cap=34), Col("所在市町村", cap=12),
               Col("受理記号", "center"), Col("報告の有無", "center")],
              data.candidates[pref_code],
              ["選定の考え方：市町村ごとに 1 市町村内の在宅療養支援病院 → 2a 機能強化型の在宅療養支援診療所 → "
               "2b 従来型の在宅療養支援診療所 → 3 同じ二次医療圏の他市町村の支援病（なければ支援診）。"
               "報告の有無は、医師会から積極的役割を担う医療機関として報告されているか。"],
              "候補はありません。", freeze_cols=2)
        sheet(SHEET_CHANGES, "前回からの変更",
              [Col("対象", min=10), Col("変更", min=8), Col("キー", cap=16, min=14), Col("名称", cap=34, min=30),
               Col("変更前", cap=30, min=24), Col("変更後", cap=30, min=24)],
              data.changes[pref_code], [data.change_note], data.no_change)
        sheet(SHEET_FINDINGS, "報告・設定ファイルの検証結果",
              [Col("ファイル", cap=30, min=20), Col("シート", cap=10), Col("行", "number"), Col("列", cap=18),
               Col("値", cap=24, min=10), Col("区分", "center"), Col("内容", cap=60, min=40)],
              data.findings[pref_code],
              ["要修正：その行（ファイル）は別表に載せていません。提出元に修正を依頼してください。"
               "要確認：取り込み済みですが内容の確認が必要です。行はファイルを開いたときの行番号です。"
               "厚生局の名簿で名称に外字がある県内の医療機関も載せています。"],
              "指摘事項はありません。")
        ok = True
    finally:
        _close(wb, out_path, ok)
    return out_path


def write_national_summary(con: duckdb.DuckDBPyConnection, out_path: Path, prefs: list[tuple[str, str]],
                           as_of: dt.date) -> Path:
    """One workbook (NATIONAL_FILE_NAME) summarising several prefectures (code, name), with a 合計 row."""
    out_path = Path(out_path)
    as_of_text = f"{to_wareki(as_of)}現在"
    keys = ["areas", "areas_met", "areas_failed", "institutions", "hubs", "shien_byo", "shien_shin", "errors",
            "warnings"]
    rows, total = [], dict.fromkeys(keys, 0)
    counts = _counts(con, [code for code, _ in prefs])
    for code, name in prefs:
        c = counts[code]
        c["areas_failed"] = c["areas"] - c["areas_met"]
        for k in keys:
            total[k] += c[k]
        row = Row([code, name, *(c[k] for k in keys)], groups=("prefectures",))
        if c["areas_failed"]:
            row.cell_props = {4: {"bold": True, "font_color": FAIL_FONT}}
        rows.append(row)
    rows.append(Row(["合計", None, *(total[k] for k in keys)], groups=("total",), merge_label=2,
                    props={"bold": True, "bg_color": TOTAL_FILL}))
    wb = LeanWorkbook(str(out_path), WORKBOOK_OPTIONS)
    ok = False
    try:
        fmt = _Formats(wb)
        _write_table(wb.add_worksheet("全国集計"), fmt,
                     [Col("コード", "center"), Col("都道府県"), Col("在宅医療圏", "number"),
                      Col("要件を\n満たす圏域", "number"), Col("満たさない\n圏域", "number"),
                      Col("積極的役割を\n担う医療機関", "number"), Col("連携を担う\n拠点", "number"),
                      Col("在宅療養\n支援病院", "number"), Col("在宅療養\n支援診療所", "number"),
                      Col("検証結果\n要修正", "number"), Col("検証結果\n要確認", "number")],
                     rows, title="在宅医療の体制 全国集計（第8次医療計画 別表）", subtitle=as_of_text,
                     notes=["指針の要件：在宅医療圏ごとに積極的役割を担う医療機関と連携を担う拠点が各1以上。"
                            "在宅療養支援病院・診療所は厚生局の届出受理医療機関名簿による届出医療機関数（機能強化型・従来型の計）。"
                            "検証結果は各都道府県の報告・設定ファイルの指摘件数。"],
                     empty_text="対象の都道府県がありません。", pref_label=f"全国　{as_of_text}", freeze_cols=2)
        ok = True
    finally:
        _close(wb, out_path, ok)
    return out_path
