"""Return workbooks: per sender, out/returns/<pref>_<sender>.xlsx listing what to fix, in the sender's own
row numbers, ready to mail back.

These are the only outputs that carry personal data from the reports (the 記入者 and メール of the sender,
to address the letter); annex.duckdb and the annex never do.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import errno
import os
import shutil
import uuid
from pathlib import Path

from xlsxwriter.worksheet import Worksheet

from annex.codes import to_wareki
from annex.municipalities import MunicipalityIndex
from annex.report_layout import FONT
from annex.xlsx import safe_file_name, wrapped_lines
from annex.xlsx_pack import PackedWorkbook
from annex.report_checks import PrefectureReports
from annex.reports import ReportFile

COLUMNS = [("No.", 5), ("ファイル", 24), ("シート", 10), ("行", 6), ("列", 16), ("入力された値", 24), ("区分", 8),
           ("内容と直し方", 72)]
LINE_HEIGHT = 13.5   # points per line of 10 pt text
BASE_FORMAT = {"font_name": FONT, "font_size": 10, "valign": "top"}
SEVERITY_LABEL = {"error": "要修正", "warning": "要確認"}
RETURNS_DIR = "returns"
RETURNS_MODE = 0o750
OLD_PREFIX = ".returns-old-"


def sender_label(rep: ReportFile, index: MunicipalityIndex) -> str:
    if rep.sender is None:
        return f"提出元不明_{Path(rep.path).stem}"
    return rep.sender if rep.kind.kind == "ishikai" else (index.name_of(rep.sender) or rep.sender)


def write_returns(out_dir: Path, per_pref: list[PrefectureReports], index: MunicipalityIndex,
                  pref_names: dict[str, str], today: dt.date | None = None) -> list[Path]:
    """Write every sender's return workbook into a fresh folder and swap it in for out_dir/returns."""
    staged, written = prepare(out_dir, per_pref, index, pref_names, today)
    try:
        publish(staged, out_dir)
    finally:
        discard(staged)
    return written


def prepare(out_dir: Path, per_pref: list[PrefectureReports], index: MunicipalityIndex,
            pref_names: dict[str, str], today: dt.date | None = None) -> tuple[Path, list[Path]]:
    """Every sender's return workbook in a fresh hidden folder out_dir/.returns-<id>.tmp (nothing visible
    changes): (that folder, the final paths). The caller swaps it in with publish() and discard()s it."""
    tmp = new_folder(out_dir)
    try:
        return tmp, write_into(tmp, per_pref, index, pref_names, today)
    except BaseException:
        discard(tmp)
        raise


def new_folder(out_dir: Path) -> Path:
    """An empty hidden folder out_dir/.returns-<id>.tmp for prepared return workbooks (see prepare)."""
    tmp = out_dir / f".returns-{uuid.uuid4().hex}.tmp"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(mode=RETURNS_MODE)   # personal data (記入者, メール): the owner and the group only, never others
    return tmp


def write_into(tmp: Path, per_pref: list[PrefectureReports], index: MunicipalityIndex,
               pref_names: dict[str, str], today: dt.date | None = None) -> list[Path]:
    """The return workbooks of these prefectures' senders into a folder from new_folder() (files are named
    <pref>_<sender>.xlsx, so workers may fill one folder with different prefectures): their final paths,
    in the returns/ folder beside it."""
    today = today or dt.date.today()
    final = tmp.parent / RETURNS_DIR
    written = []
    used: set[str] = set()
    for pr in per_pref:
        groups: dict[str, list[ReportFile]] = {}
        for rep in pr.files:
            groups.setdefault(sender_label(rep, index), []).append(rep)
        for label, reps in sorted(groups.items()):
            # one file per sender: safe_file_name keeps different labels apart (a hash where it cut or replaced);
            # a numbered name where two differ only in case, for a file system that ignores case
            name, n = safe_file_name(f"{pr.pref_code}_{label}.xlsx"), 1
            while name.casefold() in used:
                n += 1
                name = safe_file_name(f"{pr.pref_code}_{label}_{n}.xlsx")
            used.add(name.casefold())
            path = tmp / name
            _write_one(path, label, reps, pref_names.get(pr.pref_code, pr.pref_code), today)
            written.append(final / path.name)
    return written


def carry_over(staged: Path, out_dir: Path, rewritten: set[str]) -> list[Path]:
    """Into a prepared folder: the published return workbooks of every prefecture not in `rewritten` (their
    reports did not change, so neither did what they say), as hard links where the file system allows, so
    that the folder swapped in by publish() is complete. The final paths, as prepare() gives them."""
    final = out_dir / RETURNS_DIR
    kept = []
    for old in sorted(final.glob("*.xlsx")) if final.is_dir() else []:
        if old.name.split("_", 1)[0] in rewritten or (staged / old.name).exists():
            continue
        try:
            os.link(old, staged / old.name)
        except OSError:
            shutil.copy2(old, staged / old.name)
        kept.append(final / old.name)
    return kept


def publish(staged: Path, out_dir: Path) -> Path:
    """Swap the prepared folder in for out_dir/returns in one step: readers see the old folder or the new one,
    never none. Linux exchanges the two names atomically (renameat2 RENAME_EXCHANGE); where that is not
    available the old folder is first moved aside to .returns-old-<id>, and recover() puts it back if the
    process dies between the two renames."""
    final = out_dir / RETURNS_DIR
    if not final.exists():
        os.replace(staged, final)
    elif not _exchange(staged, final):
        old = out_dir / f"{OLD_PREFIX}{uuid.uuid4().hex}"
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    return final


def discard(staged: Path) -> None:
    """Remove a prepared folder (after publish() it holds the previous returns, or is gone)."""
    shutil.rmtree(staged, ignore_errors=True)


def recover(out_dir: Path) -> bool:
    """After a run died between the two renames of publish()'s fallback: put the previous folder back."""
    final = out_dir / RETURNS_DIR
    olds = sorted(out_dir.glob(f"{OLD_PREFIX}*"), key=lambda p: p.stat().st_mtime) if out_dir.is_dir() else []
    if final.exists() or not olds:
        return False
    os.replace(olds[-1], final)
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names a and b atomically; False where the system or file system cannot (then nothing moved)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _write_one(path: Path, label: str, reps: list[ReportFile], pref_name: str, today: dt.date) -> None:
    # one kind of workbook for every sender: what is not in their cells is generated once (annex.xlsx_pack)
    wb = PackedWorkbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                               "strings_to_numbers": False}, kind="returns")
    f_title = wb.add_format({**BASE_FORMAT, "font_size": 14, "bold": True})
    f_text = wb.add_format(BASE_FORMAT)
    f_head = wb.add_format({**BASE_FORMAT, "bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                            "valign": "vcenter", "align": "center"})
    ws = wb.add_worksheet("確認結果")
    ws.hide_gridlines(2)
    findings = sorted((f for rep in reps for f in rep.result.findings),
                      key=lambda f: (f["source_file"], f["sheet"] or "", f["row"] or 0, f["column"] or ""))
    errors = sum(1 for f in findings if f["severity"] == "error")
    person = next((c["value"] for rep in reps for c in rep.contacts if c["field"] == "contact_person"), None)
    email = next((c["value"] for rep in reps for c in rep.contacts if c["field"] == "contact_email"), None)
    ws.write_string(0, 0, "在宅医療に関する調査票の確認結果（修正のお願い）", f_title)
    ws.write_string(2, 0, f"{label}　{person + ' 様' if person else 'ご担当者 様'}", f_text)
    if email:
        ws.write_string(3, 0, f"送付先: {email}", f_text)
    ws.write_string(4, 0, f"{pref_name}　{to_wareki(today)}", f_text)
    ws.write_string(5, 0, "ご提出いただいたファイル: " + "、".join(Path(r.path).name for r in reps), f_text)
    ws.write_string(6, 0, f"要修正 {errors} 件（この行は別表に載りません。直して再提出してください）／"
                          f"要確認 {len(findings) - errors} 件（取り込み済みです。内容をご確認ください）", f_text)
    head = 8
    for c, (name, width) in enumerate(COLUMNS):
        ws.write_string(head, c, name, f_head)
        ws.set_column(c, c, width)
    if findings:
        _write_findings(wb, ws, head, findings)
    else:
        ws.write_string(head + 1, 0, "指摘事項はありません。ご協力ありがとうございました。", f_text)
    ws.freeze_panes(head + 1, 0)
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(head)
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.set_footer("&C&P / &N")
    wb.close()


def _write_findings(wb: PackedWorkbook, ws: Worksheet, head: int, findings: list[dict]) -> None:
    """The findings below the header row, with an autofilter over them. Their formats are made here: most
    senders have no findings, and a format no cell uses is not written anyway."""
    f_cell = wb.add_format({**BASE_FORMAT, "border": 1, "text_wrap": True})
    f_num = wb.add_format({**BASE_FORMAT, "border": 1, "align": "right"})
    f_err = wb.add_format({**BASE_FORMAT, "border": 1, "bold": True, "font_color": "#C00000", "align": "center"})
    f_warn = wb.add_format({**BASE_FORMAT, "border": 1, "font_color": "#7F6000", "align": "center"})
    for i, f in enumerate(findings, start=1):
        r = head + i
        source = Path(f["source_file"]).name
        ws.write_number(r, 0, i, f_num)
        ws.write_string(r, 1, source, f_cell)
        ws.write_string(r, 2, f["sheet"] or "", f_cell)
        if f["row"] is None:
            ws.write_string(r, 3, "全体", f_cell)
        else:
            ws.write_number(r, 3, f["row"], f_num)
        ws.write_string(r, 4, f["column"] or "", f_cell)
        ws.write_string(r, 5, f["value"] or "", f_cell)
        ws.write_string(r, 6, SEVERITY_LABEL.get(f["severity"], f["severity"]),
                        f_err if f["severity"] == "error" else f_warn)
        ws.write_string(r, 7, f["message"], f_cell)
        texts = [source, f["sheet"] or "", "", f["column"] or "", f["value"] or "", "", f["message"]]
        lines = max(wrapped_lines(t, w) for t, (_, w) in zip(texts, COLUMNS[1:]) if t)
        ws.set_row(r, LINE_HEIGHT * lines + 4)
    ws.autofilter(head, 0, head + len(findings), len(COLUMNS) - 1)
