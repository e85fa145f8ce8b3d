"""Regenerate the hostile-input corpus in tests/corpus/ from the real sample rows in raw/ (deterministic).

One file per defect, the defect in the file name; tests/corpus/README.md says which reader reads it and what
finding it must give, tests/test_corpus.py checks exactly that. Every file starts from a shipped sample file
(a returned report, the 東北厚生局 名簿, the 医療情報ネット hospital file, the code list) in its own layout,
and changes only what the defect needs. Huge inputs are tiny on disk: the 1,048,576-row sheet holds the
template's rows and one cell on the last row Excel has; the 10 GB zip member is a few bytes whose headers
declare 10 GB (forged ZIP64 sizes).

Run from the project root (needs the test extras, and `cryptography`, which prefect installs):
    python tests/corpus/make_corpus.py
"""
from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import random
import re
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import openpyxl
import xlsxwriter
import xlwt
from python_calamine import CalamineWorkbook

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "raw"
OUT = Path(__file__).resolve().parent

ISHIKAI_CSV = RAW / "03/reports/ishikai/紫波郡医師会.csv"              # CP932, 3 institutions
HUB_CSV = RAW / "03/reports/shichoson/矢巾町.csv"                      # UTF-8 BOM, 1 hub
TEMPLATE_XLSX = RAW / "03/reports/ishikai/盛岡市医師会_調査票_記入済.xlsx"  # our pre-filled 調査票, ticked
OLD_XLS = RAW / "03/reports/ishikai/岩手西北医師会_報告.xls"           # an old .xls with a merged header
OTHER_PREF_HUB_CSV = RAW / "39/reports/shichoson/四万十市.csv"           # 高知県's hub report
MEIBO = RAW / "reference/kouseikyoku/shisetsu-touhoku-ika-r0808.xlsx"
HOSPITALS = RAW / "reference/iryo_joho_net/01-1_hospital_facility_info_20250601.csv.zip"
HOSPITAL_MEMBER = "01-1_hospital_facility_info_20250601.csv"
MEIBO_ROWS = 60              # the first 60 data rows of the 岩手県 sheet (名簿 rows 5..64)
PASSWORD = "zaitaku"         # of the encrypted workbooks (the reader never asks for it)


# --- helpers -----------------------------------------------------------------------------------
def csv_lines(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def write(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)


def stable(xlsx: bytes) -> bytes:
    """The same workbook with fixed zip timestamps and document dates, so that regenerating changes nothing."""
    z = zipfile.ZipFile(io.BytesIO(xlsx))
    core = z.read("docProps/core.xml").decode() if "docProps/core.xml" in z.namelist() else None
    if core is not None:
        core = re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", r"\g<1>2026-11-01T00:00:00Z", core)
    return rezip(xlsx, replace={"docProps/core.xml": core.encode()} if core is not None else None)


def rezip(src: bytes, forge: dict[str, int] | None = None, extra: dict[str, bytes] | None = None,
          rename: dict[str, str] | None = None, replace: dict[str, bytes] | None = None,
          raw: dict[str, tuple[bytes, int, int]] | None = None) -> bytes:
    """Rebuild a zip member by member (deflate, fixed timestamps). forge: member -> uncompressed size its
    headers declare (ZIP64 extra), data unchanged; extra: members to add; rename: member -> new name;
    raw: member -> (its deflate data, the uncompressed size and CRC its headers declare), as given."""
    zin = zipfile.ZipFile(io.BytesIO(src))
    members = [(rename or {}).get(i.filename, i.filename) for i in zin.infolist()]
    payloads = [(replace or {}).get(i.filename) or zin.read(i) for i in zin.infolist()] + list((extra or {}).values())
    members += list((extra or {}).keys())
    out, central = bytearray(), bytearray()
    for name, payload in zip(members, payloads):
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = comp.compress(payload) + comp.flush()
        crc, fn, size = zlib.crc32(payload), name.encode(), (forge or {}).get(name)
        if size:
            ex, us, cs, ver = struct.pack("<HHQQ", 1, 16, size, len(data)), 0xFFFFFFFF, 0xFFFFFFFF, 45
        elif name in (raw or {}):
            data, us, crc = raw[name]
            ex, cs, ver = b"", len(data), 20
        else:
            ex, us, cs, ver = b"", len(payload), len(data), 20
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, ver, 0x800, 8, 0, 0x21, crc, cs, us, len(fn), len(ex)) \
            + fn + ex + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, ver, ver, 0x800, 8, 0, 0x21, crc, cs, us,
                               len(fn), len(ex), 0, 0, 0, 0, off) + fn + ex
    n = len(members)
    return bytes(out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0))


def lying_zip_bomb(src: bytes, member: str, size: int, declared: int = 1000, crc: int = 0) -> bytes:
    """The zip with the XML of one member padded with spaces (after its root tag) to about `size` bytes, while its
    headers declare `declared` bytes and CRC `crc` (0: wrong; the CRC of the first `declared` bytes makes a
    reader that stops there see nothing wrong). About size / 1,000 on disk: the padding is one deflated MiB of
    spaces repeated, each copy after a full flush so that it needs nothing before it."""
    xml = zipfile.ZipFile(io.BytesIO(src)).read(member)
    at = re.search(rb"<[A-Za-z][^>]*>", xml).end()
    head, tail, block = xml[:at], xml[at:], b" " * (1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start, pad = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH), c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    data = start + pad * max(0, (size - len(xml)) // len(block)) + c.compress(tail) + c.flush()
    return rezip(src, raw={member: (data, declared, crc)})


def corrupt_member(src: bytes, member: str, at: int = 200, length: int = 64) -> bytes:
    """Flip bytes inside the deflated data of one member (the zip directory stays valid)."""
    z = zipfile.ZipFile(io.BytesIO(src))
    info = z.getinfo(member)
    b = bytearray(src)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + at, min(start + at + length, start + info.compress_size)):
        b[k] ^= 0x55
    return bytes(b)


# --- an Excel-encrypted workbook (ECMA-376 agile encryption in an OLE compound file) ------------------
def _aes_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    data += b"\0" * (-len(data) % 16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def encrypt_xlsx(package: bytes, password: str, rnd: random.Random) -> bytes:
    """What Excel writes for ファイル → 情報 → ブックの保護 → パスワードを使用して暗号化 (AES-256, SHA-512,
    100,000 spins): EncryptionInfo + EncryptedPackage streams in a compound file. Opens with the password
    in Excel or msoffcrypto; the project's readers must refuse it with a clear message."""
    sha = lambda *parts: hashlib.sha512(b"".join(parts)).digest()  # noqa: E731
    key_salt, pw_salt = rnd.randbytes(16), rnd.randbytes(16)
    secret, hmac_key, verifier = rnd.randbytes(32), rnd.randbytes(64), rnd.randbytes(16)
    h = sha(pw_salt, password.encode("utf-16-le"))
    for i in range(100_000):
        h = sha(struct.pack("<I", i), h)
    pkey = lambda block: sha(h, block)[:32]  # noqa: E731
    enc_vhi = _aes_cbc(pkey(bytes.fromhex("fea7d2763b4b9e79")), pw_salt, verifier)
    enc_vhv = _aes_cbc(pkey(bytes.fromhex("d7aa0f6d3061344e")), pw_salt, sha(verifier))
    enc_key = _aes_cbc(pkey(bytes.fromhex("146e0be7abacd0d6")), pw_salt, secret)
    segments = [_aes_cbc(secret, sha(key_salt, struct.pack("<I", i))[:16], package[o:o + 4096])
                for i, o in enumerate(range(0, len(package), 4096))]
    stream = struct.pack("<Q", len(package)) + b"".join(segments)
    enc_hkey = _aes_cbc(secret, sha(key_salt, bytes.fromhex("5fb2ad010cb9e1f6"))[:16], hmac_key)
    enc_hval = _aes_cbc(secret, sha(key_salt, bytes.fromhex("a0677f02b22c8433"))[:16],
                        hmac.new(hmac_key, stream, hashlib.sha512).digest())
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    algo = ('saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
            'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"')
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
           '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
           'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password" '
           'xmlns:c="http://schemas.microsoft.com/office/2006/keyEncryptor/certificate">'
           f'<keyData {algo} saltValue="{b64(key_salt)}"/>'
           f'<dataIntegrity encryptedHmacKey="{b64(enc_hkey)}" encryptedHmacValue="{b64(enc_hval)}"/>'
           '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
           f'<p:encryptedKey spinCount="100000" {algo} saltValue="{b64(pw_salt)}" '
           f'encryptedVerifierHashInput="{b64(enc_vhi)}" encryptedVerifierHashValue="{b64(enc_vhv)}" '
           f'encryptedKeyValue="{b64(enc_key)}"/></keyEncryptor></keyEncryptors></encryption>')
    # version 4.4, flags 0x40; XML allows whitespace after the root element: padded to the 4,096-byte
    # mini-stream cutoff so that both streams live in ordinary sectors
    info = struct.pack("<HHI", 4, 4, 0x40) + xml.encode()
    info += b" " * (4096 - len(info))
    return compound_file({"EncryptionInfo": info, "EncryptedPackage": stream})


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file (version 3, 512-byte sectors) holding streams of ≥ 4,096 bytes each."""
    sec, free, end, fatsect = 512, 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    body, fat, starts = bytearray(), [], {}
    for name, data in streams.items():
        n = -(-len(data) // sec)
        starts[name] = len(fat)
        fat += [len(fat) + k + 1 for k in range(n - 1)] + [end]
        body += data + b"\0" * (n * sec - len(data))
    names = sorted(streams, key=lambda s: (len(s), s.upper()))   # CFB order: length, then name
    dir_start = len(fat)

    def entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = (name + "\0").encode("utf-16-le")
        return raw + b"\0" * (64 - len(raw)) + struct.pack("<HBBIII", len(raw), kind, 1, left, right, child) \
            + b"\0" * 16 + struct.pack("<IQQIQ", 0, 0, 0, start, size)

    # root -> the last name; each entry's left sibling is the one before it (a valid, left-leaning tree)
    ids = {n: i + 1 for i, n in enumerate(names)}
    entries = [entry("Root Entry", 5, free, free, ids[names[-1]], end, 0)]
    for i, n in enumerate(names):
        entries.append(entry(n, 2, ids[names[i - 1]] if i else free, free, free, starts[n], len(streams[n])))
    while len(entries) % (sec // 128):    # unused entries fill the last directory sector
        entries.append(b"\0" * 64 + struct.pack("<HBBIII", 0, 0, 0, free, free, free) + b"\0" * 16
                       + struct.pack("<IQQIQ", 0, 0, 0, 0, 0))
    dirs = b"".join(entries)
    n_dir = len(dirs) // sec
    fat += [dir_start + k + 1 for k in range(n_dir - 1)] + [end]
    n_fat = 1
    while len(fat) + n_fat > n_fat * 128:
        n_fat += 1
    fat_start = len(fat)
    fat += [fatsect] * n_fat
    fat += [free] * (n_fat * 128 - len(fat))
    difat = list(range(fat_start, fat_start + n_fat)) + [free] * (109 - n_fat)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, 4096, end, 0, end, 0)
              + struct.pack("<109I", *difat))
    return bytes(header + body + dirs + struct.pack(f"<{len(fat)}I", *fat))


# --- reports -----------------------------------------------------------------------------------
def reports_csv() -> None:
    base = csv_lines(ISHIKAI_CSV, "cp932")     # line 1 title, 3 header, 4-6 institutions, 7 blank, 8 以下余白
    raw = ISHIKAI_CSV.read_bytes()
    # an editor that took the CP932 file for UTF-8 and saved it (every Japanese character is now U+FFFD)
    write("report_cp932_read_as_utf8.csv", raw.decode("utf-8", "replace").encode("utf-8"))
    # the other way round: UTF-8 text taken for CP932 and saved as CP932 (classic 文字化け)
    write("report_utf8_read_as_cp932.csv",
          raw.decode("cp932").encode("utf-8").decode("cp932", "replace").encode("cp932", "replace"))
    # UTF-8 (BOM) file, one row pasted in from a CP932 file: line 5
    utf8 = csv_bytes(base, "utf-8").split(b"\r\n")
    utf8[4] = csv_bytes([base[4]], "cp932").rstrip(b"\r\n")
    write("report_mixed_utf8_cp932.csv", b"\xef\xbb\xbf" + b"\r\n".join(utf8))
    # a tool that puts a UTF-8 BOM in front of CP932 text
    write("report_cp932_with_utf8_bom.csv", b"\xef\xbb\xbf" + raw)
    # BOMs where they do not belong: two at the start, one starting line 4, one inside a field on line 5
    rows = [list(r) for r in base]
    rows[3][1] = "\ufeff" + rows[3][1]
    rows[4][3] = rows[4][3][:3] + "\ufeff" + rows[4][3][3:]
    write("report_stray_boms.csv", b"\xef\xbb\xbf\xef\xbb\xbf" + csv_bytes(rows, "utf-8"))
    write("report_empty.csv", b"")
    write("report_header_only.csv", csv_bytes(base[:3], "cp932"))
    # line 4 sent twice (lines 4 and 5); the old lines 5.. move down by one
    write("report_duplicate_rows.csv", csv_bytes(base[:4] + [base[3]] + base[4:], "cp932"))
    # a BEL in the name on line 4, a zero-width space on line 5
    rows = [list(r) for r in base]
    rows[3][1] = rows[3][1][:4] + "\x07" + rows[3][1][4:]
    rows[4][1] = rows[4][1][:4] + "\u200b" + rows[4][1][4:]
    write("report_control_chars.csv", csv_bytes(rows, "utf-8-sig"))
    # formula-injection strings as institution names (lines 4-9); \r=1 last, as a bare CR is a line break
    injections = ['=HYPERLINK("http://example.invalid","y")', "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1"]
    rows = base[:3] + [[str(i + 1), s, "紫波町", "支援診3", "1", ""] for i, s in enumerate(injections)]
    write("report_formula_injection.csv", csv_bytes(rows, "utf-8-sig"))
    # a second 医師会 reports なおしま医院 (line 4 of the base) with other 取組: conflicts with 紫波郡医師会.csv
    write("report_conflict_second_sender.csv", csv_bytes(base[:3] + [["1", base[3][1], base[3][2], base[3][3],
                                                                        "3", ""]], "cp932"))
    # the header-only file again, dropped by the test under a name of 80 kanji (244 bytes: a name this long is
    # not committed, some file systems and archive formats refuse it)
    write("report_long_file_name.csv", csv_bytes(base[:3], "cp932"))


def hubs_csv() -> None:
    base = csv_lines(HUB_CSV, "utf-8-sig")    # lines 1-2 sender block, 4 header, 5 紫波郡地域包括支援センター
    row = base[4]

    def hub(name: str, **changes) -> list[str]:
        r = list(row)
        r[0] = name
        for i, v in changes.items():
            r[int(i[1:])] = v
        return r

    def save(name: str, extra: list[list[str]]) -> None:
        write(name, csv_bytes(base + extra, "utf-8-sig"))

    save("hub_name_200_chars.csv", [hub("矢巾町在宅医療" + "連" * 193),          # line 6: 200 characters, accepted
                                    hub("矢巾町在宅医療" + "携" * 194)])         # line 7: 201 characters
    save("hub_muni_code_check_digit.csv", [hub("矢巾町在宅医療介護連携窓口", c1="033219・033228")])  # 矢巾町 is 033227
    save("hub_wareki_impossible.csv", [hub("矢巾町在宅医療介護連携窓口", c4="令和0年4月"),
                                       hub("矢巾町地域包括支援センター", c4="平成32年4月1日"),
                                       hub("矢巾町訪問看護連携室", c4="平成31年5月1日")])
    save("hub_date_out_of_range.csv", [hub("矢巾町在宅医療介護連携窓口", c4="1900/4/1"),
                                       hub("矢巾町地域包括支援センター", c4="2100/4"),
                                       hub("矢巾町訪問看護連携室", c4="昭和63年4月")])
    injections = ['=HYPERLINK("http://example.invalid","y")', "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1"]
    save("hub_formula_injection.csv", [hub(s, c2="=1+1") for s in injections])   # lines 6-11, 運営主体 =1+1
    # a BEL in the hub name (line 6), a zero-width space (line 7)
    save("hub_control_chars.csv", [hub("矢巾町在宅\x07医療介護連携窓口"), hub("矢巾町地域\u200b包括支援センター")])
    shutil.copyfile(OTHER_PREF_HUB_CSV, OUT / "hub_other_prefecture.csv")


def reports_xlsx() -> None:
    src = TEMPLATE_XLSX.read_bytes()
    write("report_truncated.xlsx", src[: len(src) // 2])
    write("report_corrupted.xlsx", corrupt_member(src, "xl/worksheets/sheet2.xml", at=600))
    write("report_empty.xlsx", b"")
    xls = OLD_XLS.read_bytes()
    write("report_truncated.xls", xls[:-10])
    write("report_zip_bomb.xlsx", rezip(src, forge={"xl/worksheets/sheet2.xml": 10 * 1024 ** 3}))
    write("report_password_encrypted.xlsx", encrypt_xlsx(src, PASSWORD, random.Random(7)))

    def edit(name: str, change) -> None:
        wb = openpyxl.load_workbook(TEMPLATE_XLSX)
        change(wb)
        buf = io.BytesIO()
        wb.save(buf)
        write(name, stable(buf.getvalue()))

    edit("report_1048576_rows.xlsx", lambda wb: wb["入力"].cell(1048576, 2, "○"))   # 報告 ○ on Excel's last row

    def merged(wb):
        ws = wb["入力"]
        ws.merge_cells("D15:D16")   # 盛岡つなぎ温泉病院 (row 15) merged down over 遠山病院 (row 16)
        for c in range(9, 14):      # I9:M9 cleared, H9's ○ merged across 取組①..⑥
            ws.cell(9, c).value = None
        ws.merge_cells("H9:M9")
    edit("report_merged_across_data.xlsx", merged)
    edit("report_hidden_rows.xlsx", lambda wb: setattr(wb["入力"].row_dimensions[10], "hidden", True))

    def hidden_sheet(wb):
        ws = wb.copy_worksheet(wb["入力"])
        ws.title = "前回提出分"
        ws.sheet_state = "hidden"
    edit("report_hidden_sheet.xlsx", hidden_sheet)

    def protect(wb):
        ws = wb["入力"]
        ws.protection.sheet = True
        ws.protection.password = PASSWORD
        wb.security = openpyxl.workbook.protection.WorkbookProtection(workbookPassword=PASSWORD, lockStructure=True)
    edit("report_sheet_protected.xlsx", protect)
    formulas_xlsx()


def formulas_xlsx() -> None:
    """The 入力 sheet rewritten with values as they are, except: D16 a formula (="遠山"&"病院"), H9 a formula
    (=IF(TRUE,"○","")), E12 a reference into another workbook (='[市町村一覧.xlsx]一覧'!B3); each with the
    value Excel saved with it (the same text as before)."""
    wb = CalamineWorkbook.from_path(str(TEMPLATE_XLSX))
    rows = wb.get_sheet_by_name("入力").to_python(skip_empty_area=False)
    formulas = {(15, 3): '="遠山"&"病院"', (8, 7): '=IF(TRUE,"○","")', (11, 4): "='[市町村一覧.xlsx]一覧'!B3"}
    buf = io.BytesIO()
    out = xlsxwriter.Workbook(buf, {"strings_to_formulas": False, "strings_to_numbers": False, "in_memory": True})
    ws = out.add_worksheet("入力")
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if (r, c) in formulas:
                ws.write_formula(r, c, formulas[(r, c)], None, v)
            elif isinstance(v, float):
                ws.write_number(r, c, v)
            elif v != "":
                ws.write_string(r, c, str(v))
    out.close()
    write("report_formulas_external_link.xlsx", stable(buf.getvalue()))


# --- 名簿 --------------------------------------------------------------------------------------
def meibo() -> None:
    """meibo_base.xlsx: the title rows, header (row 4) and first MEIBO_ROWS data rows of the 岩手県 sheet,
    values as they are; the defects are made from it."""
    wb = CalamineWorkbook.from_path(str(MEIBO))
    grid = wb.get_sheet_by_name(wb.sheet_names[0]).to_python(skip_empty_area=False)[: 4 + MEIBO_ROWS]

    def xlsx(rows, name):
        buf = io.BytesIO()
        out = xlsxwriter.Workbook(buf, {"strings_to_formulas": False, "strings_to_numbers": False, "in_memory": True})
        ws = out.add_worksheet(wb.sheet_names[0])
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if isinstance(v, float):
                    ws.write_number(r, c, v)
                elif v != "":
                    ws.write_string(r, c, str(v))
        out.close()
        data = stable(buf.getvalue())
        write(name, data)
        return data

    base = xlsx(grid, "meibo_base.xlsx")
    xlsx([], "meibo_empty.xlsx")                     # the 岩手県 sheet without a cell
    xlsx(grid[:4], "meibo_header_only.xlsx")         # title rows and header, no facility
    write("meibo_truncated.xlsx", base[: len(base) // 2])
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(wb.sheet_names[0])
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            if v != "":
                ws.write(r, c, v)
    buf = io.BytesIO()
    book.save(buf)
    write("meibo_truncated.xls", buf.getvalue()[:-10])
    write("meibo_password_encrypted.xlsx", encrypt_xlsx(base, PASSWORD, random.Random(8)))
    write("meibo_zip_traversal_member.xlsx", rezip(base, extra={"../../evil.txt": b"outside the folder"}))
    col = [str(v) for v in grid[3]].index("算定開始年月日")
    bad = [list(r) for r in grid]
    bad[9][col], bad[19][col] = "令和 0年 4月 1日", "平成32年 4月 1日"    # Excel rows 10 and 20
    xlsx(bad, "meibo_wareki_impossible.xlsx")
    far = [list(r) for r in grid]
    far[9][col], far[19][col] = "9999/12/31", "1900/4/1"     # readable dates, but no 算定開始 (rows 10, 20)
    xlsx(far, "meibo_date_out_of_range.xlsx")
    # a facility's first row pasted again under the table (Excel row len(grid) + 1)
    number = [str(v) for v in grid[3]].index("医療機関番号")
    first = next(i for i in range(4, len(grid)) if str(grid[i][number]).strip())
    xlsx([*grid, list(grid[first])], "meibo_duplicate_rows.xlsx")


# --- 医療情報ネット and code list ----------------------------------------------------------------
def facilities() -> None:
    src = HOSPITALS.read_bytes()
    data = zipfile.ZipFile(HOSPITALS).read(HOSPITAL_MEMBER)
    write("facility_zip_slip.csv.zip", rezip(src, rename={HOSPITAL_MEMBER: "../" + HOSPITAL_MEMBER}))
    # a member of a few bytes whose local and central headers declare 10 GiB (ZIP64)
    write("facility_zip_10gb.csv.zip", rezip(rezip(src), forge={HOSPITAL_MEMBER: 10 * 1024 ** 3}))
    write("facility_truncated.csv.zip", src[: len(src) // 2])
    write("facility_corrupt_member.csv.zip", corrupt_member(src, HOSPITAL_MEMBER, at=5000, length=200))
    write("facility_empty.csv", b"")
    lines = data.split(b"\r\n")
    write("facility_header_only.csv", lines[0] + b"\r\n")
    # line 10 re-saved in CP932 inside the UTF-8 file
    mixed = list(lines)
    mixed[9] = mixed[9].decode("utf-8").encode("cp932")
    write("facility_mixed_encoding.csv", b"\r\n".join(mixed))
    # line 4 again as line 5 (the same facility twice), then line 6 with line 3's ID and another name
    dup = lines[:4] + [lines[3]] + lines[4:]
    fields = dup[5].decode("utf-8").split(",")
    fields[0] = lines[2].decode("utf-8").split(",")[0]
    dup[5] = ",".join(fields).encode("utf-8")
    write("facility_duplicate_rows.csv", b"\r\n".join(dup))


def code_list() -> None:
    write("codelist_empty.csv", b"")


def main() -> None:
    for p in OUT.iterdir():
        if p.is_file() and p.name not in ("make_corpus.py", "README.md"):
            p.unlink()
    reports_csv()
    hubs_csv()
    reports_xlsx()
    meibo()
    facilities()
    code_list()
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:>8}  {p.name}")


if __name__ == "__main__":
    sys.exit(main())
