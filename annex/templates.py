"""Survey templates (調査票) the prefecture sends out: one per 郡市医師会 (blank and pre-filled) and one per 市町村.

Each workbook has the sheets 記入要領 (how to fill it in), 入力 (the sender block and the table the ingestion
reads back, laid out as annex.report_layout says) and 選択肢 (hidden; the lists the dropdowns refer to).
The pre-filled 医師会 variant lists the 支援病/支援診 of the 医師会's area from the 厚生局 名簿, so that the
医師会 only ticks the rows it reports and the 取組 they do.

All text from data is written with write_string (never as a formula or a URL). Output is written to a
temporary folder next to the destination and swapped in whole, so a failed run leaves the previous templates.
"""
from __future__ import annotations

import datetime as dt
import math
import shutil
import uuid
from pathlib import Path

import polars as pl
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from annex import areas as areas_mod
from annex import pipeline, reference, report_layout, status
from annex.areas import Areas
from annex.codes import to_wareki
from annex.xlsx import display_width, safe_file_name, wrapped_lines
from annex.municipalities import MunicipalityIndex
from annex.reference import Prefecture
from annex.report_layout import (CIRCLED, HUB_KINDS, INPUT_SHEET, INSTITUTION_TYPES, INSTRUCTION_SHEET, ISHIKAI,
                                 LIST_SHEET, OPERATOR_KINDS, SHICHOSON, TEMPLATE_DATA_ROWS, TEMPLATE_HEADER_ROW,
                                 TEMPLATE_SENDER_ROWS, Column, ReportKind)

FONT = report_layout.FONT
FONT_SIZE = 11
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                    "in_memory": True,
                    "default_format_properties": {"font_name": FONT, "font_size": FONT_SIZE, "font_scheme": "none",
                                                  "font_charset": 128}}
DEADLINE = "提出期限：県の通知のとおり"
NOTE_ROW = TEMPLATE_HEADER_ROW - 1  # 1-based row of the note line above the header
PREFILLED_NOTE = ("県が厚生局の名簿から記入しました。積極的役割を担う医療機関として報告する行の「報告」欄に○を、"
                  "行う取組に○をつけてください。誤りは上書きで直してください。")
PREFILLED_EMPTY_NOTE = ("厚生局の名簿では、区域内に在宅療養支援病院・在宅療養支援診療所の届出はありません。"
                        "積極的役割を担う医療機関があれば1行に1機関ずつ記入してください。")
BLANK_NOTES = {
    "ishikai": "積極的役割を担う医療機関を1行に1機関ずつ記入してください。",
    "shichoson": "連携を担う拠点を1行に1拠点ずつ記入してください。事業区域が複数の市町村にわたる場合は「・」で区切ってください。",
}
SENDER_LABELS = {"contact_section": "所属", "contact_person": "記入者", "contact_phone": "電話", "contact_email": "メール"}
SENDER_VALUE_WIDTH = 40  # the sender value cell spans columns from B until it is at least this wide
KIND_ORDER = {"支援病": 0, "支援診": 1}
LINE_HEIGHT = 15      # points per line of 11 pt text
DATA_ROW_HEIGHT = 18  # points; an empty input row
WIDTH_A, WIDTH_B = 22, 78  # 記入要領: item, explanation

# lists on the hidden sheet: dropdown name -> header written above the list
LIST_TITLES = {"yesno": "○（該当するとき）", "institution_types": "種別", "hub_kinds": "拠点の種別",
               "operator_kinds": "運営主体の種別", "municipalities": "市町村"}
DROPDOWN_ERRORS = {
    "yesno": "○ を選ぶか、空欄にしてください。",
    "institution_types": "種別はリストから選んでください。",
    "hub_kinds": "拠点の種別はリストから選んでください。",
    "operator_kinds": "運営主体の種別はリストから選んでください。地域包括支援センターが運営する場合は「市町村」です。",
    "municipalities": "市町村名はリストから選んでください。",
}
FREE_TEXT_MUNICIPALITIES = "複数の市町村にわたる場合は「・」で区切って記入できます（例：{example}）。"

# one explanation per template column (記入要領)
EXPLAIN = {
    "ishikai": {
        "no": "行番号です。記入は不要です。",
        "report": "積極的役割を担う医療機関として報告する行に○をつけます。報告しない行は空欄のままにしてください。",
        "inst_code": "厚生局の医療機関コード（10桁）。分からない場合は空欄で構いません（名称で照合します）。",
        "name": "医療機関の名称（厚生局の届出名簿の名称）。",
        "municipality": "医療機関が所在する市町村。リストから選んでください。",
        "address": "医療機関の所在地（住所）。",
        "reported_type": "在宅療養支援病院・在宅療養支援診療所の届出の種別。リストから選んでください（下の「種別の選択肢」）。",
        "note": "補足があれば記入してください。",
        "contact_person": "この行について問い合わせる相手が上の記入者と異なる場合だけ記入してください。",
        "contact_phone": "同じく、その担当者の電話番号。",
        "contact_email": "同じく、その担当者のメールアドレス。",
    },
    "shichoson": {
        "no": "行番号です。記入は不要です。",
        "name": "拠点の名称（例：在宅医療・介護連携支援センター）。",
        "hub_kind": "拠点の種別。リストから選んでください（下の「拠点の種別の選択肢」）。",
        "area": "拠点が事業を行う区域の市町村。リストから選ぶか、複数の市町村にわたる場合は「・」で区切って記入してください"
                "（例：{example}）。",
        "operator": "拠点を運営する法人・団体の名称（委託している場合は受託先）。",
        "operator_kind": "運営主体の種別。リストから選んでください。地域包括支援センターが運営する場合は「市町村」を選びます。",
        "start": "拠点として取組を始めた時期（例：{start}）。和暦・西暦のどちらでも構いません。",
        "same_as_program": "拠点が在宅医療・介護連携推進事業（介護保険法の地域支援事業）の実施主体と同じ場合に○。",
        "same_as_institution": "拠点が在宅医療において積極的役割を担う医療機関と同じ場合に○。",
        "note": "補足があれば記入してください。",
        "contact_person": "この行について問い合わせる相手が上の記入者と異なる場合だけ記入してください。",
        "contact_phone": "同じく、その担当者の電話番号。",
        "contact_email": "同じく、その担当者のメールアドレス。",
    },
}
WHO = {
    "ishikai": "{sender}のご担当者。貴医師会の区域（{munis}）で、在宅医療において積極的役割を担う医療機関を記入してください。",
    "shichoson": "{sender}の在宅医療・介護連携推進事業のご担当者。{sender}の区域で、在宅医療に必要な連携を担う拠点を記入して"
                 "ください。",
}
TEXT_COLUMNS = {"inst_code", "contact_phone", "start"}  # typed as text so that leading zeros stay


def column_width(col: Column, items: list[str] | None = None) -> float:
    """Column.width, widened so that the header label fits in at most three lines and a dropdown's choices
    (other than municipality names) on one line, counting CJK characters double."""
    w = max(col.width, math.ceil(display_width(col.label) / 3) + 2)
    if items and col.dropdown != "municipalities":
        w = max(w, max(display_width(i) for i in items) + 3)
    return w


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _height(lines: int) -> float:
    """Row height in points for this many lines of 11 pt text (explicit: neither Excel nor LibreOffice
    reliably grows rows of wrapped text in a generated file)."""
    return max(DATA_ROW_HEIGHT, LINE_HEIGHT * lines + 4)


def _protect(ws: Worksheet) -> None:
    ws.protect("", {"select_locked_cells": True, "select_unlocked_cells": True, "format_columns": True,
                    "format_rows": True, "format_cells": False, "insert_rows": False, "delete_rows": False,
                    "sort": False, "autofilter": False})


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook):
        # font named explicitly (not the theme's), Shift_JIS charset as Japanese Excel writes it
        base = {"font_name": FONT, "font_size": FONT_SIZE, "font_scheme": "none", "font_charset": 128,
                "valign": "vcenter"}
        border = {"border": 1, "border_color": "#808080"}
        self.title = wb.add_format({**base, "bold": True, "font_size": 14})
        self.heading = wb.add_format({**base, "bold": True, "font_size": 12, "bg_color": "#DDEBF7", "text_wrap": True})
        self.text = wb.add_format({**base, "text_wrap": True, "valign": "top"})
        self.text_bold = wb.add_format({**base, "text_wrap": True, "valign": "top", "bold": True})
        self.note = wb.add_format({**base, "text_wrap": True, "font_color": "#C00000"})
        self.label = wb.add_format({**base, **border, "bold": True, "bg_color": "#F2F2F2"})
        self.sender = wb.add_format({**base, **border, "locked": False, "bg_color": "#FFFFE5", "num_format": "@"})
        self.header = wb.add_format({**base, **border, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
                                     "align": "center"})
        cell = {**base, **border, "locked": False, "text_wrap": True}
        self.cell = wb.add_format(cell)
        self.cell_text = wb.add_format({**cell, "num_format": "@"})
        self.cell_center = wb.add_format({**cell, "align": "center"})
        self.number = wb.add_format({**cell, "align": "center", "font_color": "#595959"})
        self.list_header = wb.add_format({**base, "bold": True})

    def for_column(self, col: Column):
        if col.field == "no":
            return self.number
        if col.dropdown == "yesno":
            return self.cell_center
        if col.field in TEXT_COLUMNS:
            return self.cell_text
        return self.cell


# --- data for the pre-filled 医師会 variant ---------------------------------------------------------------
def _reported_type(kind: str | None, typ: str | None) -> str | None:
    if not kind or not typ:
        return None
    prefix = kind + typ[0]
    return next((label for label in INSTITUTION_TYPES if label.startswith(prefix)), None)


def prefilled_rows(institutions: pl.DataFrame, areas: Areas, index: MunicipalityIndex, ishikai: str) -> list[dict]:
    """Rows of the pre-filled template of one 医師会: its 支援病/支援診, by municipality, 支援病 first, then name."""
    # a ward of a 政令市 the file lists alone is placed with it (areas._wards_of_cities)
    munis = set(areas.munis_of_ishikai(ishikai))
    rows = []
    for r in institutions.filter(pl.col("shien_kind").is_not_null()).iter_rows(named=True):
        muni = r["municipality_code"]
        if muni not in munis:
            continue
        rows.append({"inst_code": r["inst_code"], "name": r["name"], "municipality": index.name_of(muni),
                     "address": r["address"], "reported_type": _reported_type(r["shien_kind"], r["shien_type"]),
                     "_muni": muni, "_kind": KIND_ORDER.get(r["shien_kind"], 9)})
    rows.sort(key=lambda r: (r["_muni"], r["_kind"], r["name"] or "", r["inst_code"] or ""))
    return rows


# --- workbook ---------------------------------------------------------------------------------------------
def _municipality_names(areas: Areas, index: MunicipalityIndex) -> list[str]:
    return [index.name_of(c) or c for c in areas.municipalities()]


def _example_area(names: list[str]) -> str:
    return "・".join(names[:2]) if len(names) >= 2 else "A市・B町"


def _list_values(muni_names: list[str]) -> dict[str, list[str]]:
    return {"yesno": ["○"], "institution_types": INSTITUTION_TYPES, "hub_kinds": HUB_KINDS,
            "operator_kinds": OPERATOR_KINDS, "municipalities": muni_names}


def _write_lists(wb: xlsxwriter.Workbook, fmt: _Formats, kind: ReportKind, muni_names: list[str]) -> dict[str, str]:
    """The hidden 選択肢 sheet; returns dropdown name -> range formula."""
    values = _list_values(muni_names)
    ws = wb.add_worksheet(LIST_SHEET)
    needed = list(dict.fromkeys(c.dropdown for c in kind.template_columns() if c.dropdown))
    ranges = {}
    for i, name in enumerate(needed):
        items = values[name] or [""]
        ws.write_string(0, i, LIST_TITLES[name], fmt.list_header)
        for j, v in enumerate(items):
            ws.write_string(j + 1, i, v)
        ws.set_column(i, i, max(display_width(v) for v in [LIST_TITLES[name], *items]) + 2)
        letter = _col_letter(i)
        ranges[name] = f"='{LIST_SHEET}'!${letter}$2:${letter}${len(items) + 1}"
    ws.hide()
    _protect(ws)
    return ranges


def _write_instructions(ws: Worksheet, fmt: _Formats, kind: ReportKind, pref: Prefecture, sender: str,
                        sender_munis: list[str], muni_names: list[str]) -> None:
    ws.set_column(0, 0, WIDTH_A)
    ws.set_column(1, 1, WIDTH_B)
    row = 0

    def line(a: str = "", b: str = "", a_fmt=None, b_fmt=None) -> None:
        nonlocal row
        if a:
            ws.write_string(row, 0, a, a_fmt or fmt.text_bold)
        if b:
            ws.write_string(row, 1, b, b_fmt or fmt.text)
        ws.set_row(row, LINE_HEIGHT * max(wrapped_lines(a, WIDTH_A), wrapped_lines(b, WIDTH_B)) + 4)
        row += 1

    def heading(text: str) -> None:
        nonlocal row
        ws.set_row(row, 8)  # a little space above
        row += 1
        ws.write_string(row, 0, text, fmt.heading)
        ws.write_blank(row, 1, None, fmt.heading)
        ws.set_row(row, 20)
        row += 1

    ws.write_string(row, 0, f"{pref.name} {kind.title}　記入要領", fmt.title)
    row += 2
    line("記入する方", WHO[kind.kind].format(sender=sender, munis="・".join(sender_munis)))
    line("提出期限", DEADLINE)
    line("提出のしかた", f"「{INPUT_SHEET}」シートに記入し、このファイル（Excel形式）のまま提出してください。"
                      "見出しの行や列の並びは変えないでください。行が足りない場合は県にご連絡ください。")
    line("送付元の欄", f"「{INPUT_SHEET}」シートの上の欄に、{kind.sender_label}・所属・記入者・電話・メールを記入してください。")

    heading("各欄の記入のしかた")
    example = _example_area(muni_names)
    start = to_wareki(dt.date(2024, 4, 1), nendo=True)
    for col in kind.template_columns():
        if col.field.startswith("torikumi_"):
            n = int(col.field.rsplit("_", 1)[1])
            text = f"取組事項{CIRCLED[n - 1]}（下記）を行っている場合に○。"
        else:
            text = EXPLAIN[kind.kind][col.field].format(example=example, start=start)
        line(col.label, text, fmt.text)

    heading("取組事項")
    line("", "取組①〜の欄は、次の取組事項を行っている場合に○をつけます（在宅医療の体制構築に係る指針より）。")
    for n, t in enumerate(kind.torikumi, start=1):
        line(f"取組{CIRCLED[n - 1]}", f"{CIRCLED[n - 1]} {t}")

    heading("○の付け方")
    yes_cols = "・".join(c.label.replace("（○）", "") for c in kind.template_columns()
                         if c.dropdown == "yesno" and not c.field.startswith("torikumi_"))
    line("", f"{yes_cols}・取組の欄は、該当する場合は「○」（リストから選べます）、該当しない場合は空欄にしてください。"
             "×や「なし」を書く必要はありません。")

    if kind.kind == "ishikai":
        heading("種別の選択肢")
        for i, t in enumerate(INSTITUTION_TYPES):
            line("種別" if i == 0 else "", t)
    else:
        heading("種別の選択肢")
        for i, t in enumerate(HUB_KINDS):
            line("拠点の種別" if i == 0 else "", t)
        ws.set_row(row, 8)
        row += 1
        for i, t in enumerate(OPERATOR_KINDS):
            line("運営主体の種別" if i == 0 else "", t)

    heading("個人情報の取扱い")
    line("", "記入者・電話・メール（各行の担当者・電話・メールを含む）は、記入内容の確認や訂正のご連絡にのみ使用し、公表しません。")

    ws.set_paper(9)
    ws.set_portrait()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.set_footer("&C&P / &N")
    ws.hide_gridlines(2)
    _protect(ws)


def _write_input(ws: Worksheet, fmt: _Formats, kind: ReportKind, pref: Prefecture, sender: str,
                 note: str, rows: list[dict], list_ranges: dict[str, str], muni_names: list[str]) -> None:
    cols = kind.template_columns()
    values = _list_values(muni_names)
    widths = [column_width(c, values.get(c.dropdown)) for c in cols]
    widths[0] = max(widths[0], max(display_width(lbl) for lbl in [kind.sender_label, *SENDER_LABELS.values()]) + 2)
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)
    ws.write_string(0, 0, f"{pref.name} {kind.title}", fmt.title)
    ws.set_row(0, 24)

    # sender block: label in A, value in B (merged to the right for room)
    last = 1
    while last + 1 < len(cols) and sum(widths[1:last + 1]) < SENDER_VALUE_WIDTH:
        last += 1
    labels = {"sender": kind.sender_label, **SENDER_LABELS}
    for field, r in TEMPLATE_SENDER_ROWS.items():
        ws.write_string(r - 1, 0, labels[field], fmt.label)
        ws.set_row(r - 1, DATA_ROW_HEIGHT)
        value = sender if field == "sender" else ""
        if last > 1:
            ws.merge_range(r - 1, 1, r - 1, last, "", fmt.sender)
        if value:
            ws.write_string(r - 1, 1, value, fmt.sender)
        else:
            ws.write_blank(r - 1, 1, None, fmt.sender)

    # note line above the header
    total = sum(widths)
    ws.merge_range(NOTE_ROW - 1, 0, NOTE_ROW - 1, len(cols) - 1, "", fmt.note)
    ws.write_string(NOTE_ROW - 1, 0, note, fmt.note)
    ws.set_row(NOTE_ROW - 1, _height(wrapped_lines(note, total)))

    hr = TEMPLATE_HEADER_ROW - 1
    for i, c in enumerate(cols):
        ws.write_string(hr, i, c.label, fmt.header)
    ws.set_row(hr, _height(max(wrapped_lines(c.label, w) for c, w in zip(cols, widths))))
    n_rows = max(TEMPLATE_DATA_ROWS, len(rows))
    first, last_row = hr + 1, hr + n_rows
    for k in range(n_rows):
        r = first + k
        data = rows[k] if k < len(rows) else {}
        ws.set_row(r, _height(max([wrapped_lines(str(data[c.field]), w) for c, w in zip(cols, widths) if data.get(c.field)],
                                  default=1)))
        for i, c in enumerate(cols):
            f = fmt.for_column(c)
            if c.field == "no":
                ws.write_number(r, i, k + 1, f)
            elif data.get(c.field):
                ws.write_string(r, i, str(data[c.field]), f)
            else:
                ws.write_blank(r, i, None, f)

    example = _example_area(muni_names)
    for i, c in enumerate(cols):
        if not c.dropdown:
            continue
        dv = {"validate": "list", "source": list_ranges[c.dropdown], "ignore_blank": True}
        if c.dropdown == "municipalities" and kind.kind == "shichoson":
            dv.update({"show_error": False, "input_title": "事業区域",
                       "input_message": "リストから選ぶか、" + FREE_TEXT_MUNICIPALITIES.format(example=example)})
        else:
            dv.update({"error_type": "stop", "error_title": "入力できない値です",
                       "error_message": DROPDOWN_ERRORS[c.dropdown]})
        if c.comment:
            dv.update({"input_title": c.label[:32], "input_message": c.comment[:255]})
        if c.field.startswith("torikumi_"):  # the 取組事項 itself pops up when the cell is selected
            n = int(c.field.rsplit("_", 1)[1])
            dv.update({"input_title": f"取組事項{CIRCLED[n - 1]}（行う場合に○）",
                       "input_message": kind.torikumi[n - 1][:255]})
        ws.data_validation(first, i, last_row, i, dv)

    name_col = next(i for i, c in enumerate(cols) if c.field == "name")
    ws.freeze_panes(hr + 1, name_col + 1)
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(hr)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.center_horizontally()
    ws.set_footer("&C&P / &N")
    _protect(ws)


def write_workbook(path: Path, kind: ReportKind, pref: Prefecture, sender: str, sender_munis: list[str],
                   muni_names: list[str], rows: list[dict] | None = None, as_of: dt.date | None = None) -> Path:
    """One 調査票. rows=None writes the blank variant, a list (possibly empty) the pre-filled one."""
    if rows is None:
        note = BLANK_NOTES[kind.kind]
    else:
        note = (PREFILLED_NOTE if rows else PREFILLED_EMPTY_NOTE) + \
            (f"（厚生局の名簿：{to_wareki(as_of)}現在）" if as_of else "")
    wb = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    try:
        fmt = _Formats(wb)
        instructions = wb.add_worksheet(INSTRUCTION_SHEET)
        data = wb.add_worksheet(INPUT_SHEET)
        list_ranges = _write_lists(wb, fmt, kind, muni_names)
        _write_instructions(instructions, fmt, kind, pref, sender, sender_munis, muni_names)
        _write_input(data, fmt, kind, pref, sender, note, rows or [], list_ranges, muni_names)
        instructions.activate()
    finally:
        wb.close()
    return path


def write_templates(out_dir: Path, pref: Prefecture, areas: Areas, index: MunicipalityIndex,
                    institutions: pl.DataFrame, as_of: dt.date | None) -> list[Path]:
    """All templates of one prefecture into out_dir/<code>_<name>/ (replacing what was there), atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{pref.code}_{pref.name}"
    tmp = out_dir / f".templates-{uuid.uuid4().hex}.tmp"
    muni_names = _municipality_names(areas, index)
    written: list[Path] = []
    try:
        (tmp / "ishikai").mkdir(parents=True)
        (tmp / "shichoson").mkdir()
        for name in areas.ishikai_names():
            munis = [index.name_of(c) or c for c in areas.munis_of_ishikai(name)]
            base = safe_file_name(name)
            written.append(write_workbook(tmp / "ishikai" / f"{base}_調査票.xlsx", ISHIKAI, pref, name, munis,
                                          muni_names))
            rows = prefilled_rows(institutions, areas, index, name)
            written.append(write_workbook(tmp / "ishikai" / f"{base}_調査票_記入済.xlsx", ISHIKAI, pref, name, munis,
                                          muni_names, rows, as_of))
        seen: set[str] = set()
        for code, name in zip(areas.municipalities(), muni_names):
            base = safe_file_name(name)
            if base in seen:  # two municipalities of one name: keep both files apart
                base = f"{base}_{code}"
            seen.add(base)
            written.append(write_workbook(tmp / "shichoson" / f"{base}_調査票.xlsx", SHICHOSON, pref, name, [name],
                                          muni_names))
        old = None
        if dest.exists():
            old = out_dir / f".templates-{uuid.uuid4().hex}.old"
            dest.rename(old)
        try:
            tmp.rename(dest)
        except BaseException:
            if old is not None:
                old.rename(dest)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [dest / p.relative_to(tmp) for p in written]


def build_templates(raw: Path, out: Path, pref_codes: list[str] | None) -> list[Path]:
    """Reads raw/ and writes the templates of each selected prefecture into out/templates/."""
    prefs = pipeline.select_prefectures(raw, pref_codes)
    ref = pipeline.load_reference(raw, prefs)
    areas_of = {}
    for pref in prefs:  # every area table read before anything is written
        res, areas = areas_mod.read_areas(pref.dir / areas_mod.AREAS_FILE, pref.code, ref.index)
        if res.status != "read" or not areas.municipalities():
            msgs = "; ".join(f["message"] for f in res.findings if f["severity"] == "error")
            raise pipeline.RunError(f"{pref.name}の圏域の設定を読めないため調査票を作れません（前回の調査票はそのまま残ります）: {msgs}")
        areas_of[pref.code] = areas
    written: list[Path] = []
    for pref in prefs:
        notes = pipeline.pref_notifications(ref, pref.code)
        codes = ref.code_list().filter(pl.col("pref_code") == pref.code)
        inst, _ = reference.institutions(notes, ref.index, codes)
        inst = status.institutions_with_status(inst, notes)
        as_of = notes["as_of"].max() if notes.height else None
        written += write_templates(Path(out) / "templates", pref, areas_of[pref.code], ref.index, inst, as_of)
    return written
