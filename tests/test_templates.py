"""Survey templates (調査票) built from the shipped sample: layout, dropdowns, protection, print setup, the
pre-filled 医師会 rows, and that a failed build leaves the previous templates."""
import csv
import dataclasses
import shutil
import subprocess
from collections import Counter

import openpyxl
import polars as pl
import pytest

from annex import pipeline, reference, templates
from annex.reference import Prefecture
from annex.report_layout import (INPUT_SHEET, INSTITUTION_TYPES, INSTRUCTION_SHEET, ISHIKAI, LIST_SHEET, SHICHOSON,
                                 TEMPLATE_DATA_ROWS, TEMPLATE_HEADER_ROW, TEMPLATE_SENDER_ROWS)
from tests.conftest import RAW

PREFS = {"03": ("岩手県", 13, 33), "39": ("高知県", 8, 34)}  # name, 医師会, 市町村
HR = TEMPLATE_HEADER_ROW


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    paths = templates.build_templates(RAW, out, list(PREFS))
    return out / "templates", paths


@pytest.fixture(scope="module")
def expected():
    """Per prefecture, computed here from the reference data: 医療機関コード of each 支援病/支援診 by 医師会."""
    prefs = pipeline.select_prefectures(RAW, list(PREFS))
    ref = pipeline.load_reference(RAW, prefs)
    notes_all = ref.notifications()
    result = {}
    for p in prefs:
        notes = notes_all.filter(pl.col("pref_code") == p.code)
        shien = notes.filter(pl.col("symbol").str.contains(r"^支援(病|診)[123](ア|イ)?$"))
        kind_of = {}
        for code, sym in shien.select("inst_code", "symbol").iter_rows():
            # the strongest type wins: 1 < 2ア < 2イ < 2 < 3 when compared as text after the kind
            if code not in kind_of or sym[3:] + sym < kind_of[code][3:] + kind_of[code]:
                kind_of[code] = sym
        inst, _ = reference.institutions(notes, ref.index, ref.code_list().filter(pl.col("pref_code") == p.code))
        muni_of = dict(zip(inst["inst_code"], inst["municipality_code"]))
        with open(p.dir / "areas.csv", encoding="utf-8-sig", newline="") as f:
            ishikai_of = {r["団体コード"]: r["郡市医師会"] for r in csv.DictReader(f)}
        by_ishikai: dict[str, dict[str, str]] = {}
        for code, sym in kind_of.items():
            name = ishikai_of.get(muni_of.get(code))
            if name:
                by_ishikai.setdefault(name, {})[code] = sym
        result[p.code] = {"by_ishikai": by_ishikai, "ishikai": list(dict.fromkeys(ishikai_of.values())),
                          "munis": {c: ref.index.name_of(c) for c in ishikai_of},
                          "muni_of": muni_of, "ishikai_of": ishikai_of}
    return result


def _dir(built, code):
    return built[0] / f"{code}_{PREFS[code][0]}"


def _input(path):
    return openpyxl.load_workbook(path)[INPUT_SHEET]


def _data_rows(ws, kind):
    cols = [c.field for c in kind.template_columns()]
    rows = []
    for values in ws.iter_rows(min_row=HR + 1, max_row=HR + TEMPLATE_DATA_ROWS, values_only=True):
        rec = dict(zip(cols, values))
        if any(v not in (None, "") for k, v in rec.items() if k != "no"):
            rows.append(rec)
    return rows


def test_file_counts_and_names(built, expected):
    root, paths = built
    assert all(p.exists() for p in paths)
    for code, (name, n_ishikai, n_muni) in PREFS.items():
        d = _dir(built, code)
        assert len(list((d / "ishikai").glob("*.xlsx"))) == n_ishikai * 2
        assert len(list((d / "shichoson").glob("*.xlsx"))) == n_muni
        assert len([p for p in paths if p.is_relative_to(d)]) == n_ishikai * 2 + n_muni
        for ishikai in expected[code]["ishikai"]:
            assert (d / "ishikai" / f"{ishikai}_調査票.xlsx").exists()
            assert (d / "ishikai" / f"{ishikai}_調査票_記入済.xlsx").exists()
        for muni in expected[code]["munis"].values():
            assert (d / "shichoson" / f"{muni}_調査票.xlsx").exists()
    assert not list(root.glob(".templates-*")), "temporary folders left behind"


@pytest.mark.parametrize("variant", ["ishikai_blank", "ishikai_filled", "shichoson"])
def test_workbook_layout(built, variant):
    d = _dir(built, "03")
    path = {"ishikai_blank": d / "ishikai" / "盛岡市医師会_調査票.xlsx",
            "ishikai_filled": d / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx",
            "shichoson": d / "shichoson" / "紫波町_調査票.xlsx"}[variant]
    kind = SHICHOSON if variant == "shichoson" else ISHIKAI
    sender = "紫波町" if variant == "shichoson" else "盛岡市医師会"
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [INSTRUCTION_SHEET, INPUT_SHEET, LIST_SHEET]
    assert wb[LIST_SHEET].sheet_state == "hidden"
    assert wb[INSTRUCTION_SHEET].sheet_state == "visible"

    # 記入要領: deadline, every column explained, 取組事項 in full, personal data note, A4 portrait
    ins = wb[INSTRUCTION_SHEET]
    text = "\n".join(str(v) for row in ins.iter_rows(values_only=True) for v in row if v)
    assert "岩手県" in text and kind.title in text
    assert templates.DEADLINE in text
    for c in kind.template_columns():
        assert c.label in text, c.label
    for t in kind.torikumi:
        assert t in text
    assert "公表しません" in text
    assert ins.page_setup.paperSize == 9 and ins.page_setup.orientation == "portrait"

    ws = wb[INPUT_SHEET]
    assert ws["A1"].value and kind.title in ws["A1"].value
    labels = {"sender": kind.sender_label, "contact_section": "所属", "contact_person": "記入者",
              "contact_phone": "電話", "contact_email": "メール"}
    for field, r in TEMPLATE_SENDER_ROWS.items():
        assert ws.cell(r, 1).value == labels[field]
        assert ws.cell(r, 1).protection.locked
        assert not ws.cell(r, 2).protection.locked
    assert ws.cell(TEMPLATE_SENDER_ROWS["sender"], 2).value == sender
    note = {"ishikai_blank": templates.BLANK_NOTES["ishikai"], "ishikai_filled": templates.PREFILLED_NOTE,
            "shichoson": templates.BLANK_NOTES["shichoson"]}[variant]
    assert ws.cell(HR - 1, 1).value.startswith(note)

    cols = kind.template_columns()
    header = [ws.cell(HR, i + 1).value for i in range(len(cols))]
    assert header == [c.label for c in cols]
    assert ws.cell(HR, len(cols) + 1).value is None
    assert all(ws.cell(HR, i + 1).font.b for i in range(len(cols)))
    assert ws.cell(HR, 1).protection.locked and ws["A1"].protection.locked
    assert not ws.cell(HR + 1, 2).protection.locked
    assert not ws.cell(HR + TEMPLATE_DATA_ROWS, len(cols)).protection.locked
    assert [ws.cell(HR + k, 1).value for k in (1, 2, TEMPLATE_DATA_ROWS)] == [1, 2, TEMPLATE_DATA_ROWS]
    assert ws.freeze_panes is not None and ws.freeze_panes.endswith(str(HR + 1))
    for i, c in enumerate(cols):  # widths from Column.width, never narrower
        assert ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width >= c.width

    # protection without password, unlocked cells selectable
    assert ws.protection.sheet and not ws.protection.password
    assert not ws.protection.selectUnlockedCells  # False means "not prevented"

    # print setup
    ps = ws.page_setup
    assert ps.paperSize == 9 and ps.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert (ps.fitToWidth or 1) == 1 and ps.fitToHeight == 0
    assert ws.print_title_rows == f"${HR}:${HR}"
    assert ws.oddFooter.center.text == "&P / &N"

    # dropdowns refer to ranges on the hidden sheet
    lists = wb[LIST_SHEET]
    dvs = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            dvs[rng] = dv
    for i, c in enumerate(cols):
        letter = openpyxl.utils.get_column_letter(i + 1)
        rng = f"{letter}{HR + 1}:{letter}{HR + TEMPLATE_DATA_ROWS}"
        if not c.dropdown:
            assert rng not in dvs
            continue
        dv = dvs[rng]
        assert dv.type == "list"
        ref = dv.formula1.replace("'", "")
        assert ref.startswith(f"{LIST_SHEET}!"), ref
        cells = lists[ref.split("!", 1)[1].replace("$", "")]
        items = [row[0].value for row in cells]
        want = {"yesno": ["○"], "institution_types": INSTITUTION_TYPES, "hub_kinds": templates.HUB_KINDS,
                "operator_kinds": templates.OPERATOR_KINDS}.get(c.dropdown)
        if c.dropdown == "municipalities":
            assert len(items) == PREFS["03"][2] and "盛岡市" in items and "紫波町" in items
        else:
            assert items == want, c.field
        free_text = c.dropdown == "municipalities" and kind is SHICHOSON
        assert bool(dv.showErrorMessage) is not free_text, c.field
        if free_text:
            assert "・" in dv.prompt
        else:
            assert dv.error


def test_prefilled_rows_match_reference(built, expected):
    label = {lbl[:4]: lbl for lbl in INSTITUTION_TYPES}  # 支援病1 -> its label
    for code in PREFS:
        exp = expected[code]
        for ishikai in exp["ishikai"]:
            want = exp["by_ishikai"].get(ishikai, {})
            ws = openpyxl.load_workbook(_dir(built, code) / "ishikai" / f"{ishikai}_調査票_記入済.xlsx",
                                        read_only=True)[INPUT_SHEET]
            rows = _data_rows(ws, ISHIKAI)
            assert len(rows) == len(want), ishikai
            assert Counter(r["inst_code"] for r in rows) == Counter(list(want))
            for r in rows:
                sym = want[r["inst_code"]]
                assert exp["ishikai_of"][exp["muni_of"][r["inst_code"]]] == ishikai
                assert r["municipality"] == exp["munis"][exp["muni_of"][r["inst_code"]]]
                assert r["reported_type"] == label[sym[:4]]
                assert r["name"] and r["address"]
                assert not r["report"] and not any(r[f"torikumi_{n}"] for n in range(1, 7))
            keys = [(exp["muni_of"][r["inst_code"]], r["reported_type"][:3] != "支援病", r["name"]) for r in rows]
            assert keys == sorted(keys)
            blank = openpyxl.load_workbook(_dir(built, code) / "ishikai" / f"{ishikai}_調査票.xlsx",
                                           read_only=True)[INPUT_SHEET]
            assert _data_rows(blank, ISHIKAI) == []
    assert sum(len(v) for v in expected["03"]["by_ishikai"].values()) > 0


def test_text_from_data_is_never_a_formula(tmp_path):
    pref = Prefecture("03", "岩手県", RAW / "03")
    path = templates.write_workbook(tmp_path / "x.xlsx", ISHIKAI, pref, "=1+1", ["盛岡市"], ["盛岡市"],
                                    [{"name": "=HYPERLINK(\"http://x\")", "inst_code": "0310110457",
                                      "address": "http://example.jp"}])
    ws = openpyxl.load_workbook(path)[INPUT_SHEET]
    assert ws.cell(TEMPLATE_SENDER_ROWS["sender"], 2).data_type == "s"
    row = {c.field: ws.cell(HR + 1, i + 1) for i, c in enumerate(ISHIKAI.template_columns())}
    assert row["name"].data_type == "s" and row["name"].value.startswith("=")
    assert row["inst_code"].value == "0310110457" and not row["address"].hyperlink


def test_failed_build_leaves_previous_templates(built, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(_dir(built, "39"), out / "templates" / "39_高知県")
    before = sorted(p.relative_to(out) for p in out.rglob("*.xlsx"))
    calls = {"n": 0}
    real = templates.write_workbook

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(templates, "write_workbook", failing)
    with pytest.raises(OSError):
        templates.build_templates(RAW, out, ["39"])
    assert sorted(p.relative_to(out) for p in out.rglob("*.xlsx")) == before
    assert [p.name for p in (out / "templates").iterdir()] == ["39_高知県"]


def test_missing_area_table_stops_before_writing(raw_copy, tmp_path):
    (raw_copy / "39" / "areas.csv").unlink()
    with pytest.raises(pipeline.RunError, match="圏域"):
        templates.build_templates(raw_copy, tmp_path / "out", ["03", "39"])
    assert not (tmp_path / "out" / "templates" / "03_岩手県").exists()


def _dropdowns(path):
    ws = openpyxl.load_workbook(path)[INPUT_SHEET]
    return {(str(dv.sqref), dv.type, dv.formula1.replace("'", ""), bool(dv.showErrorMessage))
            for dv in ws.data_validations.dataValidation}


@pytest.mark.skipif(shutil.which("libreoffice") is None, reason="libreoffice not on PATH")
def test_libreoffice_saved_template_keeps_dropdowns_and_reads_clean(built, tmp_path):
    """A sender fills the 調査票 in and saves it with LibreOffice: the dropdowns survive, and the file is read
    without a single finding."""
    d = _dir(built, "03")
    filled = {"ishikai": d / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx", "shichoson": d / "shichoson" / "雫石町_調査票.xlsx"}
    sent = tmp_path / "sent"
    sent.mkdir()
    ticked = {"ishikai": {"報告（○）": "○", "取組①": "○", "取組④": "○"},
              "shichoson": {"拠点の名称": "雫石町地域包括支援センター", "拠点の種別": "地域包括支援センター",
                            "事業区域（市町村）": "雫石町", "運営主体": "雫石町", "運営主体の種別": "市町村",
                            "開始時期": "令和6年4月", "取組①": "○", "取組⑤": "○"}}
    for kind, src in filled.items():
        wb = openpyxl.load_workbook(src)
        ws = wb[INPUT_SHEET]
        header = {ws.cell(HR, c).value: c for c in range(1, ws.max_column + 1)}
        for r in (HR + 1, HR + 2) if kind == "ishikai" else (HR + 1,):
            for label, v in ticked[kind].items():
                ws.cell(r, header[label]).value = v
        wb.save(sent / src.name)
    pref = tmp_path / "raw" / "03"
    subprocess.run(["libreoffice", f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
                    "--convert-to", "xlsx", "--outdir", str(pref / "lo"), *(str(sent / p.name) for p in filled.values())],
                   check=True, capture_output=True, timeout=180)
    for kind, src in filled.items():
        saved = pref / "lo" / src.name
        assert _dropdowns(saved) == _dropdowns(src) and len(_dropdowns(src)) >= 8, kind
        (pref / "reports" / kind).mkdir(parents=True)
        shutil.move(saved, pref / "reports" / kind / src.name)
    shutil.copy(RAW / "03" / "areas.csv", pref / "areas.csv")
    prefs = pipeline.select_prefectures(RAW, ["03"])
    ref = pipeline.load_reference(RAW, prefs)
    pr = pipeline.reports_of(ref, dataclasses.replace(prefs[0], dir=pref), pipeline.pref_institutions(ref, prefs[0])[0])
    assert [f for rep in pr.files for f in rep.result.findings] == []
    assert [(rep.layout, rep.sender, rep.result.accounting()["accepted"]) for rep in pr.files] == [
        ("template", "盛岡市医師会", 2), ("template", "033014", 1)]


@pytest.mark.skipif(shutil.which("libreoffice") is None, reason="libreoffice not on PATH")
def test_libreoffice_converts_to_pdf(built, tmp_path):
    src = _dir(built, "03") / "ishikai" / "盛岡市医師会_調査票_記入済.xlsx"
    subprocess.run(["libreoffice", f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(src)],
                   check=True, capture_output=True, timeout=180)
    pdf = tmp_path / (src.stem + ".pdf")
    assert pdf.exists() and pdf.stat().st_size > 0
