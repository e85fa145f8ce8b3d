"""Synthetic input folder at national scale, in the publishers' real formats (issue #6).

`generate(out, scale, seed, prefs)` writes a folder that `annex refresh --raw <out>` reads like raw/:

  reference/municipalities/municipalities.csv      copy of the shipped 全国地方公共団体コード master
  reference/iryo_joho_net/0[123]-1_*_20260601.csv.zip   医療情報ネット hospitals / clinics / dental clinics
  reference/kouseikyoku/shisetsu-<bureau>-ika-r0809.xlsx  厚生局 名簿 医科, one workbook per bureau, one sheet
                                                   per prefecture, one row per institution × notification
  reference/kouseikyoku_codes/all_med_inst_cd_202508.csv  厚生局 code list (headerless)
  <NN>/prefecture.toml, areas.csv, facility_link_overrides.csv (header only), reports/ishikai|shichoson/
  truth/links.csv            every (医療機関コード, 医療情報ネットID) pair that is the same institution
  truth/institutions.csv     what the generator knows of every institution (sources, status, variations)
  truth/report_defects.csv   defects put into the reports on purpose (file, sheet, row, expected rule)
  truth/manifest.json        counts, files, rows per file, timings (also returned by generate)

Deterministic from the seed: one random stream per prefecture (a prefecture's data are the same whichever
prefectures are generated with it) and one per institution for its notifications, so that the 名簿 workbooks
and the reports can be written by parallel processes and still come out byte for byte the same.

Templates from the shipped sample (raw/): the notification catalog (受理届出名称 / 受理記号 and how often
hospitals and clinics hold each) from the two 名簿 workbooks, name stems with their readings from the two
医療情報ネット files, the exact headers of the 01-1 / 02-1 files (03-1 dental = the first 57 columns of 01-1).
Surnames, town names and 法人 names come from the small pools below. Personal data in reports is fictitious
(example.invalid, 000- numbers).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import random
import re
import shutil
import sys
import time
import unicodedata
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter

from annex import codes, text
from annex.report_layout import CIRCLED, INSTITUTION_TYPES, ISHIKAI, SHICHOSON

RAW = Path(__file__).resolve().parent.parent / "raw"
SCALES = ("national", "prefecture", "small")
SNAPSHOT = "20260601"               # 医療情報ネット snapshot
MEIBO_MONTH = "r0809"               # 令和8年9月
MEIBO_AS_OF = dt.date(2026, 9, 1)
CODE_LIST_MONTH = "202508"
ZIP_TIME = (2026, 6, 1, 0, 0, 0)
CREATED = dt.datetime(2026, 9, 10)

# 医療情報ネット 2026-06-01 row counts (docs/formats.md): the national targets of the facility files
NATIONAL = {"hospital": 7715, "clinic": 80155, "dental": 54637}
SMALL_PREFS = ["03", "14", "39"]    # 11-digit IDs and 地割 addresses / short-Luhn codes and 政令市 wards / 四国
SMALL_SHARE = 0.01
DEFAULT_PREF = "13"

# prefecture: population 2020 (millions), capital (lat, lon), first two postcode digits
PREFS = {
    "01": (5.22, 43.06, 141.35, "04 05 06 07 08 09"), "02": (1.24, 40.82, 140.74, "03"),
    "03": (1.21, 39.70, 141.15, "02"), "04": (2.30, 38.27, 140.87, "98"), "05": (0.96, 39.72, 140.10, "01"),
    "06": (1.07, 38.24, 140.36, "99"), "07": (1.83, 37.75, 140.47, "96 97"), "08": (2.87, 36.34, 140.45, "30 31"),
    "09": (1.93, 36.57, 139.88, "32"), "10": (1.94, 36.39, 139.06, "37"), "11": (7.34, 35.86, 139.65, "33 34 35 36"),
    "12": (6.28, 35.61, 140.12, "26 27 28 29"), "13": (14.05, 35.69, 139.69, "10 11 12 13 14 15 16 17 18 19 20"),
    "14": (9.24, 35.45, 139.64, "21 22 23 24 25"), "15": (2.20, 37.90, 139.02, "94 95"),
    "16": (1.03, 36.70, 137.21, "93"), "17": (1.13, 36.59, 136.63, "92"), "18": (0.77, 36.07, 136.22, "91"),
    "19": (0.81, 35.66, 138.57, "40"), "20": (2.05, 36.65, 138.18, "38 39"), "21": (1.98, 35.39, 136.72, "50"),
    "22": (3.63, 34.98, 138.38, "41 42 43"), "23": (7.54, 35.18, 136.91, "44 45 46 47 48 49"),
    "24": (1.77, 34.73, 136.51, "51"), "25": (1.41, 35.00, 135.87, "52"), "26": (2.58, 35.02, 135.76, "60 61 62"),
    "27": (8.84, 34.69, 135.52, "53 54 55 56 57 58 59"), "28": (5.47, 34.69, 135.18, "65 66 67"),
    "29": (1.32, 34.69, 135.83, "63"), "30": (0.92, 34.23, 135.17, "64"), "31": (0.55, 35.50, 134.24, "68"),
    "32": (0.67, 35.47, 133.05, "69"), "33": (1.89, 34.66, 133.93, "70 71"), "34": (2.80, 34.40, 132.46, "72 73"),
    "35": (1.34, 34.19, 131.47, "74 75"), "36": (0.72, 34.07, 134.56, "77"), "37": (0.95, 34.34, 134.04, "76"),
    "38": (1.33, 33.84, 132.77, "79"), "39": (0.69, 33.56, 133.53, "78"), "40": (5.14, 33.61, 130.42, "80 81 82 83"),
    "41": (0.81, 33.25, 130.30, "84"), "42": (1.31, 32.74, 129.87, "85"), "43": (1.74, 32.79, 130.74, "86"),
    "44": (1.12, 33.24, 131.61, "87"), "45": (1.07, 31.91, 131.42, "88"), "46": (1.59, 31.56, 130.56, "89"),
    "47": (1.47, 26.21, 127.68, "90"),
}
# 医療情報ネット ID length: 11 digits in these prefectures (as 岩手 in the real 2025-06 file), 13 elsewhere
ELEVEN_DIGIT_IDS = {"03", "05", "08", "16", "20", "25", "31", "36", "42", "45"}

# bureau (file slug), prefectures, 医療機関番号 style, 算定開始年月日 style, extra 市町村コード/市町村名 columns
BUREAUS = [
    ("hokkaido", ["01"], "dot", "wareki", False),
    ("touhoku", ["02", "03", "04", "05", "06", "07"], "comma", "wareki", False),
    ("kantoshinetsu", ["08", "09", "10", "11", "12", "13", "14", "15", "19", "20"], "comma", "date", False),
    ("toukaihokuriku", ["16", "17", "21", "22", "23", "24"], "dash", "wareki", False),
    ("kinki", ["18", "25", "26", "27", "28", "29", "30"], "comma", "date", False),
    ("chugokushikoku", ["31", "32", "33", "34", "35"], "dot", "wareki", False),
    ("shikoku", ["36", "37", "38", "39"], "dash", "date", False),
    ("kyushu", ["40", "41", "42", "43", "44", "45", "46", "47"], "dash", "wareki", True),
]
BUREAU_OF = {p: b[0] for b in BUREAUS for p in b[1]}

MEIBO_HEADER = ["項番", "都道府県コード", "都道府県名", "区分", "医療機関番号", "併設医療機関番号", "医療機関記号番号",
                "医療機関名称", "医療機関所在地（郵便番号）", "医療機関所在地（住所）", "電話番号", "FAX番号", "病床数",
                "受理届出名称", "受理記号", "受理番号", "算定開始年月日", "個別有効開始年月日", "備考（見出し）", "備考（データ）"]
MEIBO_EXTRA = ["市町村コード", "市町村名"]
AREA_COLUMNS = ["団体コード", "市町村名", "二次医療圏", "在宅医療圏", "郡市医師会"]  # = annex.areas.AREA_HEADER (tested)

# --- pools (kanji, katakana) -------------------------------------------------------------------------
SURNAMES = [(s.split(":")[0], s.split(":")[1]) for s in (
    "佐藤:サトウ 鈴木:スズキ 高橋:タカハシ 田中:タナカ 伊藤:イトウ 渡辺:ワタナベ 山本:ヤマモト 中村:ナカムラ 小林:コバヤシ "
    "加藤:カトウ 吉田:ヨシダ 山田:ヤマダ 佐々木:ササキ 山口:ヤマグチ 松本:マツモト 井上:イノウエ 木村:キムラ 林:ハヤシ "
    "斎藤:サイトウ 清水:シミズ 山崎:ヤマザキ 森:モリ 池田:イケダ 橋本:ハシモト 阿部:アベ 石川:イシカワ 山下:ヤマシタ "
    "中島:ナカジマ 石井:イシイ 小川:オガワ 前田:マエダ 岡田:オカダ 長谷川:ハセガワ 藤田:フジタ 後藤:ゴトウ 近藤:コンドウ "
    "村上:ムラカミ 遠藤:エンドウ 青木:アオキ 坂本:サカモト 斉藤:サイトウ 福田:フクダ 太田:オオタ 西村:ニシムラ 藤井:フジイ "
    "金子:カネコ 岡本:オカモト 藤原:フジワラ 中野:ナカノ 三浦:ミウラ 原田:ハラダ 中川:ナカガワ 松田:マツダ 竹内:タケウチ "
    "小野:オノ 田村:タムラ 中山:ナカヤマ 和田:ワダ 石田:イシダ 森田:モリタ 上田:ウエダ 原:ハラ 内田:ウチダ 柴田:シバタ "
    "酒井:サカイ 宮崎:ミヤザキ 横山:ヨコヤマ 高木:タカギ 安藤:アンドウ 宮本:ミヤモト 大野:オオノ 小島:コジマ 工藤:クドウ "
    "谷口:タニグチ 今井:イマイ 高田:タカダ 丸山:マルヤマ 増田:マスダ 杉山:スギヤマ 村田:ムラタ 大塚:オオツカ 小山:コヤマ "
    "平野:ヒラノ 藤本:フジモト 河野:コウノ 上野:ウエノ 野口:ノグチ 武田:タケダ 松井:マツイ 千葉:チバ 岩崎:イワサキ "
    "菅原:スガワラ 木下:キノシタ 久保:クボ 野村:ノムラ 松尾:マツオ 菊地:キクチ 佐野:サノ 大西:オオニシ 杉本:スギモト "
    "新井:アライ 浜田:ハマダ 菅野:カンノ 市川:イチカワ 水野:ミズノ 小松:コマツ 島田:シマダ 古川:フルカワ 小田:オダ "
    "吉川:ヨシカワ 山内:ヤマウチ 西田:ニシダ 飯田:イイダ 川口:カワグチ 岡崎:オカザキ 渡邊:ワタナベ 高野:タカノ 柳田:ヤナギダ "
    "及川:オイカワ 熊谷:クマガイ 尾崎:オザキ 川崎:カワサキ 田辺:タナベ 長尾:ナガオ 北村:キタムラ 堀:ホリ 沢田:サワダ").split()]
SPECIALTIES = [tuple(s.split(":")) for s in (
    "内科:ナイカ 小児科:ショウニカ 整形外科:セイケイゲカ 眼科:ガンカ 耳鼻咽喉科:ジビインコウカ 皮膚科:ヒフカ 泌尿器科:ヒニョウキカ "
    "産婦人科:サンフジンカ 心療内科:シンリョウナイカ 循環器内科:ジュンカンキナイカ 胃腸内科:イチョウナイカ 消化器内科:ショウカキナイカ "
    "脳神経外科:ノウシンケイゲカ 外科:ゲカ 内科・小児科:ナイカ・ショウニカ 糖尿病内科:トウニョウビョウナイカ 呼吸器内科:コキュウキナイカ "
    "精神科:セイシンカ 形成外科:ケイセイゲカ 内科外科:ナイカゲカ 脳神経内科:ノウシンケイナイカ リウマチ科:リウマチカ "
    "ファミリー:ファミリー レディース:レディース こども:コドモ 在宅:ザイタク").split()]
HIRA_WORDS = [tuple(s.split(":")) for s in (
    "さくら:サクラ ひまわり:ヒマワリ あおば:アオバ みどり:ミドリ すみれ:スミレ あおぞら:アオゾラ つばさ:ツバサ ひかり:ヒカリ "
    "やまびこ:ヤマビコ なごみ:ナゴミ えがお:エガオ わかば:ワカバ のぞみ:ノゾミ こもれび:コモレビ はなみずき:ハナミズキ "
    "いずみ:イズミ かえで:カエデ もみじ:モミジ つくし:ツクシ たんぽぽ:タンポポ ほほえみ:ホホエミ あさひ:アサヒ").split()]
TOWN_HEADS = [tuple(s.split(":")) for s in (
    "本:ホン 中:ナカ 東:ヒガシ 西:ニシ 南:ミナミ 北:キタ 新:シン 上:カミ 下:シモ 大:オオ 小:コ 若葉:ワカバ 桜:サクラ "
    "緑:ミドリ 旭:アサヒ 栄:サカエ 泉:イズミ 松:マツ 竹:タケ 梅:ウメ 青葉:アオバ 高:タカ 宮:ミヤ 清水:シミズ 富士見:フジミ "
    "日吉:ヒヨシ 八幡:ヤハタ 天神:テンジン 浜:ハマ 川:カワ 山:ヤマ 石:イシ 柳:ヤナギ 杉:スギ 寺:テラ 岡:オカ 長:ナガ 福:フク "
    "春日:カスガ 白:シロ 赤:アカ 平:ヒラ 昭和:ショウワ 大和:ヤマト 末広:スエヒロ 元:モト 港:ミナト 錦:ニシキ 朝日:アサヒ "
    "千代:チヨ 花:ハナ 鶴:ツル 亀:カメ 霞:カスミ 星:ホシ 月:ツキ 稲:イナ 菅:スガ 宝:タカラ 鷹:タカ 雲:クモ 吉:ヨシ").split()]
TOWN_TAILS = [tuple(s.split(":")) for s in (
    "町:マチ 通:ドオリ 台:ダイ ヶ丘:ガオカ が丘:ガオカ ヶ崎:ガサキ 本町:ホンマチ 新町:シンマチ 田:タ 野:ノ 原:ハラ 沢:サワ "
    "島:ジマ 崎:サキ 見:ミ 川:カワ 丘:オカ 園:ゾノ 浦:ウラ 宿:ジュク 谷:ヤ 瀬:セ 尾:オ 津:ツ 森:モリ 井:イ 塚:ヅカ 浜:ハマ").split()]
TOWN_SPECIAL = [("中央", "チュウオウ"), ("駅前", "エキマエ"), ("本町", "ホンマチ"), ("駅前通", "エキマエドオリ"),
                ("栄町", "サカエマチ"), ("旭町", "アサヒマチ")]
CORP_WORDS = [tuple(s.split(":")) for s in (
    "仁愛:ジンアイ 慈孝:ジコウ 博愛:ハクアイ 清和:セイワ 恵愛:ケイアイ 誠心:セイシン 聖和:セイワ 愛和:アイワ 杏林:キョウリン "
    "松涛:ショウトウ 健生:ケンセイ 明和:メイワ 育生:イクセイ 静和:セイワ 友愛:ユウアイ 信愛:シンアイ 和光:ワコウ 弘仁:コウジン "
    "尚仁:ショウジン 康生:コウセイ 仁心:ジンシン 啓仁:ケイジン 緑風:リョクフウ 青嵐:セイラン 光風:コウフウ 仁医:ジンイ "
    "協和:キョウワ 親和:シンワ 泰仁:タイジン 厚生:コウセイ 寿:コトブキ 敬愛:ケイアイ 三和:サンワ 昭仁:ショウジン 秀和:シュウワ").split()]
CORP_TYPES = [("医療法人社団", "イリョウホウジンシャダン", 0.38), ("医療法人", "イリョウホウジン", 0.36),
              ("医療法人財団", "イリョウホウジンザイダン", 0.08), ("社会医療法人", "シャカイイリョウホウジン", 0.08),
              ("一般財団法人", "イッパンザイダンホウジン", 0.04), ("社会福祉法人", "シャカイフクシホウジン", 0.03),
              ("特定医療法人", "トクテイイリョウホウジン", 0.03)]
GIVEN = ["花子", "太郎", "一郎", "美咲", "健", "恵", "直樹", "陽子", "誠", "由美"]
# variant kanji one source writes and the other does not (annex.text maps them back)
VARIANTS = {"崎": "﨑", "高": "髙", "辺": "邊", "浜": "濱", "斎": "齋"}
HOME_SYMBOLS = re.compile(r"^(支援診|支援病|在医総管|在後病|在充|在緩|在診実|在病実)")
HOME_NAMES = {  # for symbols the sample 名簿 does not carry
    "在充病": "別添1の「第14の2」の2の(3)に規定する在宅医療充実体制加算",
    "在緩診実": "別添1の「第9」の2の(1)に規定する在宅緩和ケア充実診療所・病院加算",
    "在緩診病": "別添1の「第14の2」の2の(1)に規定する在宅緩和ケア充実診療所・病院加算",
    "在病実1": "別添1の「第14の2」の2の(3)に規定する在宅療養実績加算1",
}
DASHES = "－ー−‐-"
FW = str.maketrans("0123456789", "０１２３４５６７８９")
KANJI_DIGITS = "〇一二三四五六七八九"


def fullwidth(s: str) -> str:
    """ASCII to full width, as the bureaus write 受理記号 (支援診１, 支援診２ア)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def kanji_number(n: int) -> str:
    if n < 10:
        return KANJI_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else KANJI_DIGITS[tens]) + "十" + (KANJI_DIGITS[ones] if ones else "")


def hiragana(kata: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kata)


_ROMA = dict(zip(
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデド"
    "バビブベボパピプペポヴァィゥェォ",
    "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no ha hi fu he ho ma mi mu me mo ya yu "
    "yo ra ri ru re ro wa o n ga gi gu ge go za ji zu ze zo da ji zu de do ba bi bu be bo pa pi pu pe po vu a i u e "
    "o".split()))


def romaji(kata: str) -> str:
    """Katakana -> simple Hepburn (enough for English names and mail addresses of synthetic data)."""
    out: list[str] = []
    double = False
    for c in kata:
        if c in "ャュョ" and out:
            prev = out.pop()
            v = {"ャ": "a", "ュ": "u", "ョ": "o"}[c]
            out.append(prev[:-1] + v if prev[:-1].endswith(("sh", "ch", "j")) or prev in ("ji",) else prev[:-1] + "y" + v)
            continue
        if c == "ッ":
            double = True
            continue
        if c in "ー・　 ":
            if c != "ー":
                out.append(" ")
            continue
        r = _ROMA.get(c, "")
        if double and r:
            r = r[0] + r
            double = False
        out.append(r)
    return re.sub(r"\s+", " ", "".join(out)).strip()


# --- reading the shipped sample ------------------------------------------------------------------
@dataclass
class Templates:
    master_rows: list[dict]
    catalog: dict[str, tuple[list[tuple[str, str]], list[float]]]   # kind -> ((name, raw symbol) list, cum weights)
    home: dict[str, tuple[str, str]]                                 # symbol -> (name, raw symbol)
    stems: list[tuple[str, str]]                                     # real name stems with their readings
    headers: dict[str, list[str]]                                    # hospital / clinic / dental


def load_templates(raw: Path = RAW) -> Templates:
    from python_calamine import CalamineWorkbook
    with open(raw / "reference/municipalities/municipalities.csv", encoding="utf-8-sig", newline="") as f:
        master = list(csv.DictReader(f))
    counts: dict[str, dict[tuple[str, str], int]] = {"hospital": {}, "clinic": {}}
    home: dict[str, tuple[str, str]] = {}
    for path in sorted((raw / "reference/kouseikyoku").glob("*.xlsx")):
        wb = CalamineWorkbook.from_path(str(path))
        for sheet in wb.sheet_names:
            grid = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
            kind = "clinic"
            for row in grid[4:]:
                if row[7]:
                    kind = "hospital" if "病院" in str(row[7]) else "clinic"
                name, raw_sym = str(row[13]).strip(), str(row[14]).strip()
                if not name or not raw_sym:
                    continue
                sym = unicodedata.normalize("NFKC", raw_sym)
                if HOME_SYMBOLS.match(sym):
                    home.setdefault(sym, (name, raw_sym))
                    continue
                counts[kind][(name, raw_sym)] = counts[kind].get((name, raw_sym), 0) + 1
    for sym, name in HOME_NAMES.items():
        home.setdefault(sym, (name, fullwidth(sym)))
    catalog = {}
    for kind, c in counts.items():
        items = sorted(c.items())
        cum, total = [], 0.0
        for _, n in items:
            total += n
            cum.append(total)
        catalog[kind] = ([k for k, _ in items], cum)
    headers, stems = {}, set()
    for kind, pattern in (("hospital", "01-1_*.csv.zip"), ("clinic", "02-1_*.csv.zip")):
        path = sorted((raw / "reference/iryo_joho_net").glob(pattern))[-1]
        with zipfile.ZipFile(path) as z:
            rows = list(csv.reader(io.StringIO(z.read(z.namelist()[0]).decode("utf-8-sig"), newline="")))
        headers[kind] = rows[0]
        for r in rows[1:]:
            stem = _stem(r[3], r[4]) if r[3] and r[4] else _stem(r[1], r[2])
            if stem:
                stems.add(stem)
    headers["dental"] = headers["hospital"][:57]
    return Templates(master, catalog, home, sorted(stems), headers)


_SUFFIXES = [("病院", "ビョウイン"), ("クリニック", "クリニック"), ("医院", "イイン"), ("診療所", "シンリョウショ"),
             ("ホスピタル", "ホスピタル")]


def _stem(name: str, kana: str) -> tuple[str, str] | None:
    """A real name's distinctive part with its reading: おとめがわ病院 -> (おとめがわ, オトメガワ)."""
    name, kana = name.strip(), kana.strip()
    if not name or not kana or re.search(r"[\s　・（）()立法人会国保健康]", name):
        return None
    for suf, ksuf in _SUFFIXES:
        if name.endswith(suf) and kana.endswith(ksuf):
            name, kana = name[:-len(suf)], kana[:-len(ksuf)]
            break
    else:
        return None
    for spec, kspec in SPECIALTIES:
        if name.endswith(spec) and kana.endswith(kspec) and len(name) > len(spec):
            name, kana = name[:-len(spec)], kana[:-len(kspec)]
            break
    if not 2 <= len(name) <= 8 or not re.fullmatch(r"[ァ-ヶー]+", kana) or re.search("病院|医院|診療所|クリニック", name):
        return None
    return name, kana


# --- places --------------------------------------------------------------------------------------
@dataclass(slots=True)
class Muni:
    code: str
    name: str
    kind: str
    kana: str
    parent: str
    stem: str
    stem_kana: str
    weight: float = 0.0
    gunshi: int = 0
    post3: str = ""
    lat: float = 0.0
    lon: float = 0.0
    towns: list = field(default_factory=list)


def _stem_of(name: str, kana: str) -> tuple[str, str]:
    for suf, ksufs in (("市", ("シ",)), ("区", ("ク",)), ("町", ("マチ", "チョウ")), ("村", ("ムラ", "ソン"))):
        if name.endswith(suf) and len(name) > 1:
            k = kana
            for ks in ksufs:
                if kana.endswith(ks):
                    k = kana[:-len(ks)]
                    break
            return name[:-1], k
    return name, kana


def municipalities(master: list[dict], pref: str) -> tuple[list[Muni], dict[str, Muni]]:
    """(places where institutions are: 市・町・村・特別区 and wards of 政令市, in code order;
    every current code of the prefecture -> Muni, 政令市 included)."""
    rows = [r for r in master if r["団体コード"][:2] == pref and r["区分"] != "都道府県" and not r["廃止日"]]
    by_code = {}
    for r in rows:
        name, kana = r["市区町村名"], r["市区町村名カナ"]
        stem, stem_kana = _stem_of(name, kana)
        parent = r["所属政令市コード"]
        if parent:
            pr = next(x for x in rows if x["団体コード"] == parent)
            ward, ward_kana = name[len(pr["市区町村名"]):], kana[len(pr["市区町村名カナ"]):] \
                if kana.startswith(pr["市区町村名カナ"]) else ""
            stem, stem_kana = _stem_of(ward, ward_kana)
        by_code[r["団体コード"]] = Muni(r["団体コード"], name, r["区分"], kana, parent, stem, stem_kana)
    places = [m for m in by_code.values() if m.kind != "政令市"]
    return sorted(places, key=lambda m: m.code), by_code


def _town_names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    out, seen = [], set()
    while len(out) < n:
        if rng.random() < 0.12:
            t = rng.choice(TOWN_SPECIAL)
        else:
            h, tl = rng.choice(TOWN_HEADS), rng.choice(TOWN_TAILS)
            t = (h[0] + tl[0], h[1] + tl[1])
        if t[0] not in seen:
            seen.add(t[0])
            out.append(t)
    return out


def setup_places(rng: random.Random, pref: str, places: list[Muni]) -> None:
    """Weights (how many institutions a place gets), 郡市区番号, postcode prefix, coordinates, towns."""
    _, lat0, lon0, post = PREFS[pref]
    spread = 1.6 if pref == "01" else 0.35
    capital = next((m.code for m in places if m.kind == "市"), None)
    for i, m in enumerate(places):
        base = {"特別区": 8.0, "区": 6.0, "市": 4.0, "町": 1.2, "村": 0.4}.get(m.kind, 1.0)
        if m.code == capital:
            base *= 4
        m.weight = base * rng.uniform(0.5, 1.5)
        m.gunshi = 1 + i * min(99, len(places)) // len(places)
        m.post3 = rng.choice(post.split()) + str(rng.randint(0, 9))
        m.lat = round(lat0 + rng.uniform(-spread, spread), 4)
        m.lon = round(lon0 + rng.uniform(-spread, spread), 4)
        m.towns = _town_names(rng, max(3, min(24, int(m.weight * 2.5))))


# --- institutions --------------------------------------------------------------------------------
@dataclass(slots=True)
class Entity:
    kind: str                    # hospital / clinic / dental
    pref: str
    muni: Muni
    base: tuple[str, str]        # facility name without 法人格, reading
    stem_kana: str
    corp: tuple[str, str] | None  # 法人 name, reading
    corp_side: str               # where the 法人格 is written: meibo / fac / both / none
    town: tuple[str, str]
    addr: tuple                  # (style, numbers...)
    in_fac: bool
    in_meibo: bool
    in_codes: bool
    public: bool = False
    old_base: tuple[str, str] | None = None   # renamed: the facility file still has the old name
    moved: bool = False          # the facility file has an older address
    variant_side: str = ""       # meibo / fac: which side writes the variant kanji
    beds: tuple = ()
    lat: float = 0.0
    lon: float = 0.0
    postcode: str = ""
    inst_code: str = ""
    facility_id: str = ""
    home: tuple = ()             # normalised home-care symbols (支援診2ア, 在医総管1, …)
    n_notes: int = 0
    co_located: "Entity | None" = None        # dental: shares the building of this clinic
    names: dict = field(default_factory=dict)  # rendered names / addresses per source


def _pick(rng: random.Random, pool: list):
    return pool[rng.randrange(len(pool))]


def _clinic_base(rng, m: Muni, town, stems) -> tuple[tuple[str, str], str]:
    r = rng.random()
    sur, spec = _pick(rng, SURNAMES), _pick(rng, SPECIALTIES)
    if r < 0.22:
        return (sur[0] + spec[0] + "クリニック", sur[1] + spec[1] + "クリニック"), sur[1]
    if r < 0.40:
        return (hiragana(sur[1]) + spec[0] + "クリニック", sur[1] + spec[1] + "クリニック"), sur[1]
    if r < 0.52:
        if rng.random() < 0.5:
            return (sur[0] + "医院", sur[1] + "イイン"), sur[1]
        return (sur[0] + spec[0] + "医院", sur[1] + spec[1] + "イイン"), sur[1]
    if r < 0.62:
        return (sur[0] + spec[0], sur[1] + spec[1]), sur[1]
    if r < 0.72:
        return (town[0] + spec[0] + "クリニック", town[1] + spec[1] + "クリニック"), town[1]
    if r < 0.80:
        w = _pick(rng, HIRA_WORDS)
        if rng.random() < 0.5:
            return (w[0] + "クリニック", w[1] + "クリニック"), w[1]
        return (w[0] + spec[0] + "クリニック", w[1] + spec[1] + "クリニック"), w[1]
    if r < 0.88 and stems:
        s = _pick(rng, stems)
        suf = _pick(rng, [("クリニック", "クリニック"), ("医院", "イイン"), ("診療所", "シンリョウショ")])
        return (s[0] + suf[0], s[1] + suf[1]), s[1]
    if r < 0.93:
        return (m.stem + "駅前" + spec[0] + "クリニック", m.stem_kana + "エキマエ" + spec[1] + "クリニック"), m.stem_kana
    if r < 0.97:
        return (town[0] + "診療所", town[1] + "シンリョウショ"), town[1]
    suf = _pick(rng, [("在宅クリニック", "ザイタククリニック"), ("ホームケアクリニック", "ホームケアクリニック")])
    return (sur[0] + suf[0], sur[1] + suf[1]), sur[1]


def _hospital_base(rng, m: Muni, town, stems, pref_name) -> tuple[tuple[str, str], str, bool]:
    r = rng.random()
    sur = _pick(rng, SURNAMES)
    if r < 0.24:
        return (sur[0] + "病院", sur[1] + "ビョウイン"), sur[1], False
    if r < 0.38:
        return (town[0] + "病院", town[1] + "ビョウイン"), town[1], False
    if r < 0.48:
        return (m.stem + town[0][:1] + "中央病院", m.stem_kana + "チュウオウビョウイン"), m.stem_kana, False
    if r < 0.58:
        return (sur[0] + "記念病院", sur[1] + "キネンビョウイン"), sur[1], False
    if r < 0.66 and stems:
        s = _pick(rng, stems)
        return (s[0] + "病院", s[1] + "ビョウイン"), s[1], False
    if r < 0.73:
        spec = _pick(rng, [("リハビリテーション病院", "リハビリテーションビョウイン"), ("脳神経外科病院", "ノウシンケイゲカビョウイン"),
                           ("整形外科病院", "セイケイゲカビョウイン"), ("循環器病院", "ジュンカンキビョウイン"),
                           ("こころの病院", "ココロノビョウイン"), ("腎クリニック病院", "ジンクリニックビョウイン")])
        return (town[0] + spec[0], town[1] + spec[1]), town[1], False
    if r < 0.80:
        kind = rng.random()
        if kind < 0.4:
            return ((pref_name + "立" + m.stem + town[0][:1] + "病院"), ""), m.stem_kana, True
        if kind < 0.7:
            return ((m.name + "立" + town[0] + "病院"), ""), town[1], True
        return (("国民健康保険" + town[0] + "病院"), "コクミンケンコウホケン" + town[1] + "ビョウイン"), town[1], True
    if r < 0.85:
        return (m.stem + town[0] + "医療センター", m.stem_kana + town[1] + "イリョウセンター"), m.stem_kana, False
    if r < 0.92:
        w = _pick(rng, HIRA_WORDS)
        return (w[0] + "病院", w[1] + "ビョウイン"), w[1], False
    return (town[0] + "ホスピタル", town[1] + "ホスピタル"), town[1], False


def _dental_base(rng, m: Muni, town, stems) -> tuple[tuple[str, str], str]:
    r = rng.random()
    sur = _pick(rng, SURNAMES)
    if r < 0.35:
        return (sur[0] + "歯科医院", sur[1] + "シカイイン"), sur[1]
    if r < 0.55:
        return (sur[0] + "歯科", sur[1] + "シカ"), sur[1]
    if r < 0.70:
        return (hiragana(sur[1]) + "歯科クリニック", sur[1] + "シカクリニック"), sur[1]
    if r < 0.82:
        w = _pick(rng, HIRA_WORDS)
        return (w[0] + "デンタルクリニック", w[1] + "デンタルクリニック"), w[1]
    if r < 0.92:
        return (town[0] + "歯科", town[1] + "シカ"), town[1]
    if stems:
        s = _pick(rng, stems)
        return (s[0] + "歯科医院", s[1] + "シカイイン"), s[1]
    return (sur[0] + "デンタルオフィス", sur[1] + "デンタルオフィス"), sur[1]


def _corp(rng, sur) -> tuple[str, str]:
    r = rng.random()
    cum = 0.0
    ctype = CORP_TYPES[0]
    for t in CORP_TYPES:
        cum += t[2]
        if r < cum:
            ctype = t
            break
    w = _pick(rng, CORP_WORDS) if rng.random() < 0.75 else sur
    return ctype[0] + w[0] + "会", ctype[1] + w[1] + "カイ"


def _address(rng, m: Muni, pref: str, kind: str) -> tuple:
    rural = m.kind in ("町", "村")
    r = rng.random()
    if pref == "03" and rural and r < 0.6:
        return ("chiwari", rng.randint(1, 40), rng.randint(1, 300), rng.choice([None, rng.randint(1, 30)]))
    if rural and r < 0.7:
        return ("banchi", rng.randint(1, 3000), rng.choice([None, rng.randint(1, 20)]), rng.random() < 0.3)
    if r < 0.55:
        return ("chome", rng.randint(1, 6), rng.randint(1, 35), rng.randint(1, 30))
    if r < 0.85:
        return ("ban", rng.randint(1, 40), rng.randint(1, 30))
    return ("banchi", rng.randint(1, 2500), rng.choice([None, rng.randint(1, 15)]), False)


def render_address(town: str, addr: tuple, style: str, rng: random.Random) -> str:
    """The street part of an address (after the municipality) as one source writes it.
    style: meibo (half-width digits), codes (full-width), fac (full-width, dashes)."""
    kind = addr[0]
    if kind == "chome":
        _, c, b, g = addr
        if style == "fac":
            v = rng.random()
            if v < 0.5:
                d = _pick(rng, DASHES)
                s = f"{c}{d}{b}{d}{g}"
            elif v < 0.8:
                s = f"{kanji_number(c)}丁目{b}番{g}号"
            else:
                s = f"{c}丁目{b}番{g}号"
            return town + s.translate(FW)
        v = rng.random()
        s = (f"{c}丁目{b}番{g}号" if v < 0.45 else f"{kanji_number(c)}丁目{b}番{g}号" if v < 0.75
             else f"{c}丁目{b}-{g}")
        return town + (s.translate(FW).replace("-", "－") if style == "codes" else s)
    if kind == "ban":
        _, b, g = addr
        if style == "fac":
            s = f"{b}{_pick(rng, DASHES)}{g}" if rng.random() < 0.5 else f"{b}番{g}号"
            return town + s.translate(FW)
        s = f"{b}番{g}号" if rng.random() < 0.7 else f"{b}-{g}"
        return town + (s.translate(FW).replace("-", "－") if style == "codes" else s)
    if kind == "banchi":
        _, n, e, oaza = addr
        if style == "fac":
            s = f"{n}{_pick(rng, DASHES)}{e}" if e else f"{n}"
            return town + s.translate(FW)
        v = rng.random()
        s = (f"{n}番地{e}" if e else f"{n}番地") if v < 0.6 else (f"{n}-{e}" if e else f"{n}")
        head = ("大字" if oaza else "") + town
        return head + (s.translate(FW).replace("-", "－") if style == "codes" else s)
    _, w, n, e = addr  # 岩手の地割
    if style == "fac":
        d = _pick(rng, DASHES)
        s = f"{w}{d}{n}" + (f"{d}{e}" if e else "")
        return town + s.translate(FW)
    s = f"第{w}地割{n}番地" + (str(e) if e else "") if rng.random() < 0.5 else f"{w}地割{n}番地" + (str(e) if e else "")
    return town + (s.translate(FW) if style == "codes" else s)


def _variant(s: str) -> str:
    for a, b in VARIANTS.items():
        s = s.replace(a, b)
    return s


def _status(rng: random.Random, e: Entity) -> tuple:
    """Home-care notifications of an institution in the 名簿 (normalised symbols)."""
    out = []
    if e.kind == "hospital":
        if rng.random() < 0.215:
            t = rng.choices(["1", "2", "3"], [0.12, 0.18, 0.70])[0]
            out.append("支援病" + t)
            if t in "12" and rng.random() < 0.3:
                out.append("在充病")
            if t == "3" and rng.random() < 0.12:
                out.append("在病実1")
            if rng.random() < 0.9:
                out.append("在医総管1")
        else:
            if e.beds and e.beds[-1] >= 200 and rng.random() < 0.2:
                out.append("在後病")
            if rng.random() < 0.25:
                out.append("在医総管1")
    else:
        if rng.random() < 0.175:
            t = rng.choices(["1", "2ア", "2イ", "3"], [0.03, 0.20, 0.06, 0.71])[0]
            out.append("支援診" + t)
            if t != "3" and rng.random() < 0.25:
                out.append("在充診")
            if t != "3" and rng.random() < 0.08:
                out.append("在緩診実")
            if t == "3" and rng.random() < 0.10:
                out.append(rng.choice(["在診実1", "在診実2"]))
            if rng.random() < 0.95:
                out.append(rng.choices(["在医総管1", "在医総管2", "在医総管3"], [0.97, 0.01, 0.02])[0])
        elif rng.random() < 0.12:
            out.append("在医総管1")
    return tuple(out)


def _beds(rng: random.Random, kind: str) -> tuple:
    if kind == "hospital":
        general = rng.choice([0, 0, rng.randint(20, 120), rng.randint(50, 300), rng.randint(100, 600)])
        ryoyo = rng.choice([0, 0, rng.randint(20, 120)])
        seishin = rng.choice([0, 0, 0, 0, rng.randint(50, 300)])
        if general + ryoyo + seishin < 20:
            general = rng.randint(20, 150)
        iryo = ryoyo if rng.random() < 0.8 else 0
        return (general, ryoyo, iryo, ryoyo - iryo, seishin, 0, rng.choice([0, 0, 0, 4]), general + ryoyo + seishin)
    if kind == "clinic" and rng.random() < 0.05:
        n = rng.randint(4, 19)
        return (n, 0, 0, 0, n)
    return ()


def generate_prefecture(seed: int, pref: str, pref_name: str, places: list[Muni], counts: dict[str, int],
                        tpl: Templates) -> list[Entity]:
    """Every institution of one prefecture: hospitals and clinics (医科, in 名簿 / code list / 医療情報ネット as
    drawn) and dental clinics (医療情報ネット only)."""
    rng = random.Random(f"synth:{seed}:{pref}")
    setup_places(rng, pref, places)
    weights = [m.weight for m in places]
    stems = tpl.stems
    ents: list[Entity] = []
    used: dict[str, set] = {}
    # (in facility file share handled by the caller's counts) extra institutions missing from 医療情報ネット
    plan = {"hospital": (counts["hospital"], 0.02), "clinic": (counts["clinic"], 0.08)}
    for kind, (n_fac, extra) in plan.items():
        n_total = n_fac + round(n_fac * extra)
        for i in range(n_total):
            m = places[rng.choices(range(len(places)), weights)[0]]
            town = _pick(rng, m.towns)
            public = False
            for _ in range(6):
                if kind == "hospital":
                    base, stem_kana, public = _hospital_base(rng, m, town, stems, pref_name)
                else:
                    base, stem_kana = _clinic_base(rng, m, town, stems)
                if base[0] not in used.setdefault(m.code, set()):
                    break
            used[m.code].add(base[0])
            in_fac = i < n_fac
            r = rng.random()
            if in_fac:
                if kind == "hospital":
                    in_meibo, in_codes = (False, False) if r < 0.01 else (False, True) if r < 0.015 else \
                        (True, False) if r < 0.025 else (True, True)
                else:
                    in_meibo, in_codes = (False, False) if r < 0.02 else (False, True) if r < 0.06 else \
                        (True, False) if r < 0.075 else (True, True)
            else:
                in_meibo, in_codes = (True, rng.random() < 0.9) if (kind == "hospital" or r < 0.7) else (False, True)
            corp = None
            if not public and rng.random() < (0.65 if kind == "hospital" else 0.35):
                corp = _corp(rng, _pick(rng, SURNAMES))
            e = Entity(kind, pref, m, base, stem_kana, corp,
                       rng.choices(["meibo", "fac", "both", "none"], [0.4, 0.2, 0.25, 0.15])[0],
                       town, _address(rng, m, pref, kind), in_fac, in_meibo, in_codes, public=public)
            e.beds = _beds(rng, kind)
            if in_fac and (in_meibo or in_codes):
                v = rng.random()
                if v < 0.005:
                    for _ in range(6):
                        old = (_hospital_base(rng, m, town, stems, pref_name)[0] if kind == "hospital"
                               else _clinic_base(rng, m, town, stems)[0])
                        if old[0] != base[0] and text.kind_hint(old[0]) == text.kind_hint(base[0]):
                            e.old_base = old
                            break
                elif v < 0.01:
                    e.moved = True
            if any(ch in base[0] for ch in VARIANTS) or "ヶ" in town[0]:
                if rng.random() < 0.5:
                    e.variant_side = rng.choice(["meibo", "fac"])
            e.lat = round(m.lat + rng.uniform(-0.05, 0.05), 6)
            e.lon = round(m.lon + rng.uniform(-0.05, 0.05), 6)
            e.postcode = m.post3 + f"{rng.randint(0, 9999):04d}"
            if in_meibo:
                e.home = _status(rng, e)
                e.n_notes = rng.randint(60, 100) if kind == "hospital" else rng.randint(9, 15)
            ents.append(e)
    # medical malls: a dental clinic in the building of a medical clinic (one 医療情報ネット may not list)
    clinics = [e for e in ents if e.kind == "clinic"]
    dused: dict[str, set] = {}
    for i in range(counts["dental"]):
        if clinics and rng.random() < 0.03:
            host = _pick(rng, clinics)
            m, town, addr = host.muni, host.town, host.addr
        else:
            host = None
            m = places[rng.choices(range(len(places)), weights)[0]]
            town, addr = _pick(rng, m.towns), _address(rng, m, pref, "dental")
        for _ in range(6):
            base, stem_kana = _dental_base(rng, m, town, stems)
            if base[0] not in dused.setdefault(m.code, set()):
                break
        dused[m.code].add(base[0])
        corp = _corp(rng, _pick(rng, SURNAMES)) if rng.random() < 0.2 else None
        e = Entity("dental", pref, m, base, stem_kana, corp, rng.choice(["fac", "none"]), town, addr, True,
                   False, False, co_located=host)
        e.lat = round(m.lat + rng.uniform(-0.05, 0.05), 6)
        e.lon = round(m.lon + rng.uniform(-0.05, 0.05), 6)
        ents.append(e)
    _assign_codes(rng, pref, ents)
    _render(rng, pref, pref_name, ents)
    return ents


def _assign_codes(rng: random.Random, pref: str, ents: list[Entity]) -> None:
    """10-digit 医療機関コード (郡市区番号 from the place, 機関番号 in steps, check digit by the prefecture's rule)
    and 医療情報ネット IDs (per kind, in municipality order)."""
    ika = [e for e in ents if e.kind != "dental" and (e.in_meibo or e.in_codes)]
    ika.sort(key=lambda e: (e.muni.gunshi, e.kind != "hospital", e.muni.code))
    by_gunshi: dict[int, list[Entity]] = {}
    for e in ika:
        by_gunshi.setdefault(e.muni.gunshi, []).append(e)
    for g, group in by_gunshi.items():
        step_max = max(1, min(5, 8999 // len(group)))
        n = rng.randint(1000, 1000 + max(0, 8999 - len(group) * step_max) // 4)
        for e in group:
            body = f"{pref}1{g:02d}{n:04d}"
            check = codes.luhn_check_digit(body[3:9] if pref in ("11", "12", "13", "14") else body)
            e.inst_code = f"{body}{check}"
            n += rng.randint(1, step_max)
    for kind, k in (("hospital", "1"), ("clinic", "2"), ("dental", "3")):
        fac = sorted((e for e in ents if e.kind == kind and e.in_fac), key=lambda e: e.muni.code)
        seq = rng.randint(1, 50)
        for e in fac:
            if pref in ELEVEN_DIGIT_IDS:
                e.facility_id = f"{pref}{k}{pref}1{seq:05d}"
                seq += rng.randint(1, 3)
            else:
                area = 3 + int(e.muni.code[2:5]) % 6
                e.facility_id = f"{pref}{k}{k}{pref}{area}{seq * 10:06d}"
                seq += rng.randint(1, 4)


def _render(rng: random.Random, pref: str, pref_name: str, ents: list[Entity]) -> None:
    """Names and addresses as each source writes them: 法人格 on one side, variant kanji, widths, dashes,
    丁目/番/号 or '-', town-only addresses and building names in the facility file, renamed and moved
    institutions."""
    for e in ents:
        base, town = e.base[0], e.town[0]
        meibo_base, fac_base = base, (e.old_base[0] if e.old_base else base)
        meibo_town, fac_town = town, town
        if e.variant_side == "meibo":
            meibo_base, meibo_town = _variant(meibo_base), meibo_town.replace("ヶ", "ケ")
        elif e.variant_side == "fac":
            fac_base, fac_town = _variant(fac_base), fac_town.replace("ヶ", "ケ")
        corp = e.corp[0] if e.corp else ""
        sep = rng.choice([" ", "", "　"])
        meibo_name = (corp + sep + meibo_base) if corp and e.corp_side in ("meibo", "both") else meibo_base
        fac_name = (corp + "　" + fac_base) if corp and e.corp_side in ("fac", "both") else fac_base
        building = ""
        if rng.random() < 0.05:
            building = f"{_pick(rng, SURNAMES)[0]}ビル{rng.randint(1, 5)}{rng.choice(['F', '階'])}"
        street = render_address(meibo_town, e.addr, "meibo", rng)
        meibo_addr = e.muni.name + street + ((" " + building) if building and rng.random() < 0.5 else "")
        codes_addr = e.muni.name + render_address(town, e.addr, "codes", rng)
        fac_street = render_address(fac_town, e.addr, "fac", rng)
        if e.moved:
            other = _pick(rng, e.muni.towns)
            fac_street = render_address(other[0], _address(rng, e.muni, pref, e.kind), "fac", rng)
        if e.kind != "hospital" and rng.random() < 0.04:
            fac_street = fac_town   # 医療情報ネット often gives the town only
        elif building and rng.random() < 0.5:
            fac_street += "　" + fullwidth(building)
        if e.co_located is not None:
            host = e.co_located.names
            fac_street = host["fac_street"]
        fac_kana = e.base[1] if not e.old_base else e.old_base[1]
        if corp and e.corp_side in ("fac", "both") and fac_kana:
            fac_kana = e.corp[1] + "　" + fac_kana
        codes_name = meibo_name if rng.random() < 0.85 else (fac_base if e.old_base else meibo_base)
        if e.old_base:
            codes_name = (corp + " " + fac_base) if corp and e.corp_side in ("meibo", "both") else fac_base
        e.names = {"meibo_name": meibo_name, "meibo_addr": meibo_addr, "codes_name": codes_name,
                   "codes_addr": codes_addr, "fac_name": fac_name, "fac_short": fac_base, "fac_kana": fac_kana,
                   "fac_street": fac_street, "fac_addr": pref_name + e.muni.name + fac_street}


# --- plan ----------------------------------------------------------------------------------------
def _shares(master: list[dict]) -> dict[str, dict[str, float]]:
    """Each prefecture's share of hospitals, clinics and dental clinics: population blended with the number of
    municipalities (rural prefectures have more hospitals per head than their population says)."""
    munis = {p: 0 for p in PREFS}
    for r in master:
        if r["区分"] in ("市", "町", "村", "特別区", "政令市") and not r["廃止日"]:
            munis[r["団体コード"][:2]] += 1
    pop_total, muni_total = sum(v[0] for v in PREFS.values()), sum(munis.values())
    out = {}
    for p, v in PREFS.items():
        pop, mun = v[0] / pop_total, munis[p] / muni_total
        out[p] = {"hospital": 0.5 * pop + 0.5 * mun, "clinic": 0.8 * pop + 0.2 * mun, "dental": 0.9 * pop + 0.1 * mun}
    return out


def plan_counts(master: list[dict], scale: str, prefs: list[str] | None) -> dict[str, dict[str, int]]:
    if scale not in SCALES:
        raise ValueError(f"scale は {', '.join(SCALES)} のいずれかです: {scale}")
    shares = _shares(master)
    if prefs:
        prefs = [str(p).zfill(2) for p in prefs]
        unknown = [p for p in prefs if p not in PREFS]
        if unknown:
            raise ValueError(f"都道府県コードが不正です: {', '.join(unknown)}")
    if scale == "national":
        chosen = prefs or sorted(PREFS)
    elif scale == "prefecture":
        chosen = (prefs or [DEFAULT_PREF])[:1]
    else:
        chosen = prefs or SMALL_PREFS
    out = {}
    for p in sorted(chosen):
        out[p] = {}
        for kind, total in NATIONAL.items():
            if scale == "small":
                factor = SMALL_SHARE / sum(shares[q][kind] for q in chosen)
            else:
                factor = 1.0
            out[p][kind] = max(3, round(total * shares[p][kind] * factor))
    return out


# --- writers: reference files ----------------------------------------------------------------------
def _zip(path: Path, member: str, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, payload, compresslevel=6)


_CLOSED_OTHER = ["年末年始（12/29～1/3）", "お盆（8/13～8/15）", "年末年始、お盆", "臨時休診はホームページでお知らせします"]


def _facility_line(e: Entity, n_cols: int, rng: random.Random) -> str:
    n = e.names
    short = n["fac_short"]
    kana = n["fac_kana"]
    short_kana = e.base[1] if not e.old_base else e.old_base[1]
    if rng.random() < 0.3:
        short_kana = ""
    english = ""
    if e.stem_kana and rng.random() < 0.55:
        word = {"hospital": "Hospital", "clinic": "Clinic", "dental": "Dental Clinic"}[e.kind]
        english = romaji(e.stem_kana).title() + " " + word
    kind_code = {"hospital": "1", "clinic": "2", "dental": "3"}[e.kind]
    if rng.random() < 0.04:
        lat, lon = "0.0", "0.0"
    else:
        lat, lon = repr(e.lat), repr(e.lon)
    home = ""
    if english and rng.random() < 0.45:
        home = f"https://{re.sub(r'[^a-z]', '', english.lower())[:24]}.example/"
    weekly = [""] * 7
    if rng.random() < 0.7:
        weekly = ["0"] * 7
        weekly[6] = "1"
        if e.kind != "hospital":
            weekly[rng.choice([2, 3, 5])] = "1" if rng.random() < 0.6 else "0"
        else:
            weekly[5] = "1" if rng.random() < 0.5 else "0"
    holiday = rng.choice(["1", "1", "1", "0", ""])
    other = _pick(rng, _CLOSED_OTHER) if rng.random() < 0.15 else ""
    head = [e.facility_id, n["fac_name"], kana, short, short_kana, english, kind_code, e.pref, e.muni.code[2:5],
            n["fac_addr"]]
    tail = [home, *weekly, *([""] * 35), holiday, other]
    if e.kind == "hospital":
        tail += [str(b) if b or rng.random() < 0.6 else "" for b in e.beds]
    elif e.kind == "clinic":
        tail += [str(b) for b in e.beds] if e.beds else [""] * 5
    assert len(head) + 2 + len(tail) == n_cols, (len(head), len(tail), n_cols)
    return ",".join(f'"{v}"' for v in head) + f",{lat},{lon}," + ",".join(f'"{v}"' for v in tail) + "\r\n"


def write_facility_files(out: Path, ents_by_pref: dict[str, list[Entity]], tpl: Templates, seed: int) -> dict:
    rows = {}
    files = {"hospital": "01-1_hospital_facility_info", "clinic": "02-1_clinic_facility_info",
             "dental": "03-1_dental_facility_info"}
    for kind, stem in files.items():
        header = tpl.headers[kind]
        parts = [",".join(f'"{h}"' for h in header) + "\r\n"]
        n = 0
        for pref in sorted(ents_by_pref):
            rng = random.Random(f"synth:{seed}:facility:{kind}:{pref}")
            fac = sorted((e for e in ents_by_pref[pref] if e.kind == kind and e.in_fac), key=lambda e: e.facility_id)
            for e in fac:
                parts.append(_facility_line(e, len(header), rng))
                n += 1
        name = f"{stem}_{SNAPSHOT}.csv"
        path = out / "reference/iryo_joho_net" / f"{name}.zip"
        _zip(path, name, b"\xef\xbb\xbf" + "".join(parts).encode("utf-8"))
        rows[str(path.relative_to(out))] = n
    return rows


def write_code_list(out: Path, ents_by_pref: dict[str, list[Entity]]) -> dict:
    lines = []
    for pref in sorted(ents_by_pref):
        for e in ents_by_pref[pref]:
            if e.in_codes:
                c = e.inst_code
                lines.append((c[:2] + c[3:], f"{c[:2]}{c[3:]},{c[3:]},{e.names['codes_name']},{e.postcode},"
                                             f"{e.names['codes_addr']}\r\n"))
    lines.sort()
    path = out / "reference/kouseikyoku_codes" / f"all_med_inst_cd_{CODE_LIST_MONTH}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(l for _, l in lines).encode("utf-8"))
    return {str(path.relative_to(out)): len(lines)}


def meibo_tasks(out: Path, ents_by_pref: dict[str, list[Entity]], pref_names: dict[str, str], tpl: Templates,
                seed: int) -> list[dict]:
    tasks = []
    for slug, prefs, number_style, date_style, extra in BUREAUS:
        sheets = []
        for p in prefs:
            if p not in ents_by_pref:
                continue
            insts = sorted((e for e in ents_by_pref[p] if e.in_meibo), key=lambda e: e.inst_code)
            sheets.append((p, pref_names[p], [
                (e.inst_code, e.names["meibo_name"], f"{e.postcode[:3]}-{e.postcode[3:]}", e.names["meibo_addr"],
                 e.kind, e.home, e.n_notes, e.muni.code[2:5], e.muni.name) for e in insts]))
        if sheets:
            tasks.append({"path": str(out / "reference/kouseikyoku" / f"shisetsu-{slug}-ika-{MEIBO_MONTH}.xlsx"),
                          "number_style": number_style, "date_style": date_style, "extra": extra, "seed": seed,
                          "catalog": tpl.catalog, "home": tpl.home, "sheets": sheets,
                          "weight": sum(i[6] for s in sheets for i in s[2])})
    return tasks


_MONTHS = [dt.date(y, m, 1) for y in range(2000, 2027) for m in range(1, 13) if dt.date(y, m, 1) <= MEIBO_AS_OF]
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def write_meibo(task: dict) -> dict:
    """One bureau's 名簿 workbook (constant_memory: rows are written in order and flushed)."""
    path = Path(task["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"created": CREATED})
    date_fmt = wb.add_format({"num_format": "yyyy/mm/dd"})
    wareki = task["date_style"] == "wareki"
    month_text = [codes.to_wareki(d) for d in _MONTHS]
    month_serial = [float((d - _EXCEL_EPOCH).days) for d in _MONTHS]
    recent = next(i for i, d in enumerate(_MONTHS) if d >= dt.date(2012, 4, 1))
    r2024 = next(i for i, d in enumerate(_MONTHS) if d >= dt.date(2024, 6, 1))
    catalog, home = task["catalog"], task["home"]
    style = task["number_style"]
    sep = {"comma": ",", "dash": "-", "dot": "."}[style]
    extra = task["extra"]
    header = MEIBO_HEADER + (MEIBO_EXTRA if extra else [])
    sheet_rows = {}
    made = MEIBO_AS_OF + dt.timedelta(days=9)
    for pref, pref_name, insts in task["sheets"]:
        ws = wb.add_worksheet(pref_name)
        ws.write_string(0, 0, f"[ {pref_name} ] 届出受理医療機関名簿 医科")
        ws.write_string(1, 0, f"{codes.to_wareki(MEIBO_AS_OF)}現在　{codes.to_wareki(made)}作成")
        for c, h in enumerate(header):
            ws.write_string(3, c, h)
        row = 4
        write_string, write_number = ws.write_string, ws.write_number
        for item, (code, name, postcode, address, kind, hsyms, n_notes, city3, city_name) in enumerate(insts, 1):
            rng = random.Random(f"{task['seed']}:meibo:{code}")
            pairs, cum = catalog[kind]
            chosen: dict[int, None] = {}
            n_pick = min(n_notes - len(hsyms), len(pairs))
            while len(chosen) < n_pick:
                for i in rng.choices(range(len(pairs)), cum_weights=cum, k=2 * n_pick):
                    chosen[i] = None
                    if len(chosen) >= n_pick:
                        break
            notes = [(pairs[i][0], pairs[i][1], rng.randrange(len(_MONTHS))) for i in chosen]
            for s in hsyms:
                lo = r2024 if s.startswith(("支援診2", "在充", "在医総管2", "在医総管3")) else recent
                notes.append((home[s][0], home[s][1], rng.randrange(lo, len(_MONTHS))))
            notes.sort()
            n7 = code[3:]
            for k, (nname, sym, month) in enumerate(notes):
                if k == 0:
                    write_number(row, 0, item)
                    write_string(row, 1, pref)
                    write_string(row, 2, pref_name)
                    write_string(row, 3, "医科")
                    write_string(row, 4, f"{n7[:2]}{sep}{n7[2:6]}{sep}{n7[6]}")
                    write_string(row, 7, name)
                    write_string(row, 8, postcode)
                    write_string(row, 9, address)
                    if extra:
                        write_string(row, 20, city3)
                        write_string(row, 21, city_name)
                write_string(row, 13, nname)
                write_string(row, 14, sym)
                write_string(row, 15, f"第{rng.randint(1, 999)}号")
                if wareki:
                    write_string(row, 16, month_text[month])
                else:
                    write_number(row, 16, month_serial[month], date_fmt)
                row += 1
        sheet_rows[pref_name] = row - 4
    wb.close()
    return {"path": str(path), "sheets": sheet_rows}


# --- areas and reports ---------------------------------------------------------------------------
@dataclass
class Unit:
    """A municipality as areas.csv and reports see it: one 市町村, or a 政令市 with its wards."""
    code: str
    name: str
    kind: str
    members: list[str]


def make_areas(rng: random.Random, by_code: dict[str, Muni]) -> tuple[list[dict], dict[str, list[str]]]:
    """areas.csv rows (団体コード order) and 医師会 -> member codes. ~5–10 二次医療圏 per prefecture, 1–3 医師会
    each; a 政令市 and its wards in one area under one 医師会 (the wards listed too, since institutions lie in
    wards)."""
    units = []
    for m in sorted(by_code.values(), key=lambda m: m.code):
        if m.parent:
            continue
        members = [m.code] + ([w.code for w in sorted(by_code.values(), key=lambda w: w.code) if w.parent == m.code]
                              if m.kind == "政令市" else [])
        units.append(Unit(m.code, m.name, m.kind, members))
    n_areas = max(1, min(10, max(5, round(len(units) / 6)), len(units)))
    cities = [u for u in units if u.kind in ("市", "政令市", "特別区")]
    towns = [u for u in units if u not in cities]
    area_of: dict[str, int] = {}
    for i, u in enumerate(cities):
        area_of[u.code] = i * n_areas // max(1, len(cities))
    for j, u in enumerate(towns):
        area_of[u.code] = j * n_areas // max(1, len(towns))
    groups: list[list[Unit]] = [[] for _ in range(n_areas)]
    for u in units:
        groups[area_of[u.code]].append(u)
    groups = [g for g in groups if g]
    rows, ishikai, used_area, used_ishikai = [], {}, set(), set()
    for g in groups:
        g.sort(key=lambda u: u.code)
        lead = next((u for u in g if u.kind in ("市", "政令市", "特別区")), g[0])
        area = by_code[lead.code].stem
        while area in used_area:
            area += "北"
        used_area.add(area)
        split = len(g) >= 8 and rng.random() < 0.5
        # 医師会: the 政令市 alone, the rest in 1–3 contiguous groups
        designated = [u for u in g if u.kind == "政令市"]
        rest = [u for u in g if u.kind != "政令市"]
        n_i = 0 if not rest else 1 if len(rest) <= 2 else min(len(rest), rng.choice([1, 2, 2, 3]))
        parts = [[u] for u in designated] + [rest[k * len(rest) // n_i:(k + 1) * len(rest) // n_i] for k in range(n_i)]
        for part in parts:
            if not part:
                continue
            first = part[0]
            stem = by_code[first.code].stem
            name = f"{first.name}医師会" if first.kind in ("市", "政令市", "特別区") else f"{stem}地区医師会"
            while name in used_ishikai:
                name = name.replace("医師会", "第二医師会")
            used_ishikai.add(name)
            ishikai[name] = [c for u in part for c in u.members]
            for u in part:
                home_area = area if not split else area + ("北" if g.index(u) < len(g) // 2 else "南")
                for c in u.members:
                    rows.append({"団体コード": c, "市町村名": by_code[c].name, "二次医療圏": area,
                                 "在宅医療圏": home_area, "郡市医師会": name})
    rows.sort(key=lambda r: r["団体コード"])
    return rows, ishikai


def _type_label(symbols: tuple) -> str | None:
    s = next((x for x in symbols if x.startswith(("支援病", "支援診"))), None)
    if s is None:
        return None
    return next(l for l in INSTITUTION_TYPES if l.startswith(s[:4]))


def _contact(rng: random.Random) -> dict:
    sur = _pick(rng, SURNAMES)
    return {"所属": rng.choice(["事務局", "地域医療課", "在宅医療推進係", "長寿社会課", "高齢者支援課"]),
            "記入者": f"{sur[0]} {_pick(rng, GIVEN)}", "電話": f"000-{rng.randint(0, 9999):04d}-{rng.randint(0, 9999):04d}",
            "メール": f"{romaji(sur[1]).replace(' ', '')}{rng.randint(1, 99)}@example.invalid"}


def _start_text(rng: random.Random) -> str:
    """開始時期 as 市町村 write it: 平成30年4月1日, H28年度～, 令和2年度～, R3.4, 2019/4, 2018年4月, 令和2年4月."""
    y, m = rng.randint(2015, 2025), rng.choice([4, 4, 4, 4, 7, 10, 1])
    d = dt.date(y, m, 1)
    fy = y if m >= 4 else y - 1
    reiwa = d >= dt.date(2019, 5, 1)
    v = rng.random()
    if v < 0.25:
        return codes.to_wareki(d)
    if v < 0.4:
        return (codes.to_wareki(d, nendo=True) if reiwa else f"H{fy - 1988}年度") + "～"
    if v < 0.55 and reiwa:
        return f"R{y - 2018}.{m}"
    if v < 0.7:
        return f"{y}/{m}"
    if v < 0.85:
        return f"{y}年{m}月"
    return codes.to_wareki(d).rsplit("月", 1)[0] + "月"


def _unknown_name(rng: random.Random, m: Muni) -> str:
    return f"{m.stem}{rng.choice(['みらい', 'あすなろ', 'ゆうき', 'はるか'])}在宅クリニック"


def build_reports(seed: int, pref: str, pref_name: str, out: Path, ents: list[Entity], by_code: dict[str, Muni],
                  ishikai: dict[str, list[str]], all_muni_names: set[str]) -> tuple[list[dict], dict]:
    """Report file specs of one prefecture (rendered by write_reports) and counts. The rows name institutions
    of the 名簿 as a 医師会 would (name with or without 法人格, code, 7-digit 医療機関番号), with ~1.5 % defects."""
    rng = random.Random(f"synth:{seed}:reports:{pref}")
    base = out / pref / "reports"
    insts = [e for e in ents if e.in_meibo]
    keys: dict[str, int] = {}
    for e in insts:
        k = text.name_key(e.names["meibo_name"])
        keys[k] = keys.get(k, 0) + 1
    by_muni: dict[str, list[Entity]] = {}
    for e in insts:
        by_muni.setdefault(e.muni.code, []).append(e)
    specs, n_rows, n_hubs = [], 0, 0
    for name, members in ishikai.items():
        v = rng.random()
        if v < 0.03:
            continue   # did not answer
        if v < 0.035:
            specs.append({"path": str(base / "ishikai" / f"{name}_送付状.xlsx"), "layout": "cover", "sender": name,
                          "pref_name": pref_name, "rows": [], "defect": "layout_not_recognised"})
            continue
        area_insts = [e for c in members for e in by_muni.get(c, [])]
        area_insts.sort(key=lambda e: (e.muni.code, not e.home or not e.home[0].startswith("支援病"),
                                       e.names["meibo_name"]))
        shien = [e for e in area_insts if _type_label(e.home)]
        rows = []
        for e in area_insts:
            label = _type_label(e.home)
            if label and rng.random() < 0.94:
                pass
            elif not label and "在医総管1" in e.home and rng.random() < 0.03:
                pass
            else:
                if label:
                    rows.append(_inst_row(rng, e, keys, report=False))
                continue
            rows.append(_inst_row(rng, e, keys, report=True))
        if rng.random() < 0.1 and shien:
            # a neighbour's institution reported too (outside the area, duplicate)
            others = [e for e in insts if e.muni.code not in members and _type_label(e.home)]
            if others:
                rows.append(_inst_row(rng, _pick(rng, others), keys, report=True))
        layout = rng.choices(["prefilled", "template", "list_xlsx", "two_row", "csv_cp932", "csv_utf8"],
                             [0.40, 0.12, 0.15, 0.10, 0.15, 0.08])[0]
        if layout != "prefilled":
            rows = [r for r in rows if r["report"]]
        if layout in ("two_row", "csv_cp932") and any(r["ambiguous"] for r in rows):
            layout = "list_xlsx"   # no code column: a name shared in the prefecture could not be matched
        if layout in ("template", "csv_utf8"):
            rng.shuffle(rows)
        for r in rows:
            if r["report"] and rng.random() < 0.012:
                r["defect"] = _inst_defect(rng, layout)
        if rng.random() < 0.12:
            m = by_code[_pick(rng, members)]
            rows.append({"code": "", "name": _unknown_name(rng, m), "muni": m.name, "address": "", "label": None,
                         "symbol": "", "tori": [True, True, False, False, True, False], "report": True,
                         "ambiguous": False, "defect": "institution_not_found", "hospital": False})
        file_name = {"prefilled": f"{name}_調査票_記入済.xlsx", "template": f"{name}_調査票.xlsx",
                     "list_xlsx": f"{name}_積極的役割.xlsx", "two_row": f"{name}_報告.xlsx",
                     "csv_cp932": f"{name}.csv", "csv_utf8": f"{name}_回答.csv"}[layout]
        sender = ("一般社団法人" + name) if rng.random() < 0.1 else name
        specs.append({"path": str(base / "ishikai" / file_name), "layout": layout, "sender": sender,
                      "pref_name": pref_name, "contact": _contact(rng), "rows": rows, "kind": "ishikai"})
        n_rows += sum(1 for r in rows if r["report"])
    # hubs: per reporting municipality 1–3, some shared by the municipalities of an area
    units = sorted({c for c in by_code if not by_code[c].parent})
    hubs_of: dict[str, list[dict]] = {}
    ishikai_of = {c: n for n, cs in ishikai.items() for c in cs}
    for c in units:
        m = by_code[c]
        if rng.random() > 0.65:
            continue
        n = rng.choices([1, 2, 3], [0.7, 0.25, 0.05])[0]
        kinds = rng.sample(["center", "houkatsu", "hospital", "station", "hokenjo"], n)
        for k in kinds:
            hubs_of.setdefault(c, []).append(_hub(rng, k, m, [m.name], ishikai_of.get(c), pref_name,
                                                  by_muni.get(c, []) + [e for w in by_code.values()
                                                                        if w.parent == c for e in by_muni.get(w.code, [])]))
    for name, members in ishikai.items():
        heads = [c for c in members if not by_code[c].parent]
        if len(heads) >= 2 and rng.random() < 0.35:
            group = heads[:rng.randint(2, min(3, len(heads)))]
            hub = _hub(rng, "shared", by_code[group[0]], [by_code[c].name for c in group], name, pref_name, [])
            hub["name"] = f"{name.replace('医師会', '')}在宅医療連携拠点"
            for c in group:
                hubs_of.setdefault(c, []).append(dict(hub))
    for c, hubs in sorted(hubs_of.items()):
        m = by_code[c]
        layout = rng.choices(["template", "csv_cp932", "csv_utf8", "list_xlsx"], [0.55, 0.2, 0.1, 0.15])[0]
        for h in hubs:
            if rng.random() < 0.015:
                h["defect"] = "area_municipality_unknown"
                h["area"] = h["area"] + ["・", "、"][rng.randrange(2)] + _no_such_muni(rng, m, all_muni_names)
            elif rng.random() < 0.006 and layout in ("template", "csv_utf8"):
                h["defect"] = "yes_or_blank"
        file_name = {"template": f"{m.name}_調査票.xlsx", "csv_cp932": f"{m.name}.csv",
                     "csv_utf8": f"{m.name}_拠点.csv", "list_xlsx": f"{m.name}_連携拠点.xlsx"}[layout]
        specs.append({"path": str(base / "shichoson" / file_name), "layout": layout, "sender": m.name,
                      "pref_name": pref_name, "contact": _contact(rng), "rows": hubs, "kind": "shichoson"})
        n_hubs += len(hubs)
    return specs, {"institution_rows": n_rows, "hub_rows": n_hubs}


def _inst_row(rng: random.Random, e: Entity, keys: dict[str, int], report: bool) -> dict:
    name = e.names["meibo_name"]
    if report and rng.random() < 0.3:
        name = e.base[0]   # without 法人格, as the sender knows it
    hospital = e.kind == "hospital"
    tori = [rng.random() < p for p in (0.8, 0.6, 0.25, 0.45, 0.75, 0.7 if hospital else 0.0)]
    if not any(tori):
        tori[0] = True
    return {"code": e.inst_code, "name": name, "muni": e.muni.name, "address": e.names["meibo_addr"],
            "label": _type_label(e.home), "symbol": next((s for s in e.home if s.startswith("支援")), ""),
            "tori": tori, "report": report, "ambiguous": keys.get(text.name_key(name), 0) > 1, "defect": None,
            "hospital": hospital}


def _inst_defect(rng: random.Random, layout: str) -> str:
    if layout in ("list_xlsx", "csv_cp932"):
        return rng.choice(["torikumi_in_range", "inst_code_check_digit"] if layout == "list_xlsx"
                          else ["torikumi_in_range"])
    if layout in ("csv_utf8", "template"):
        return rng.choice(["yes_or_blank", "inst_code_check_digit"])
    return "yes_or_blank"


def _no_such_muni(rng: random.Random, m: Muni, all_names: set[str]) -> str:
    for cand in (m.stem + "町", m.stem + "村", m.stem + "東町", m.stem + "新町", "北" + m.stem + "村"):
        if text.basic(cand) not in all_names:
            return cand
    return m.stem + "第二新町"


def _hub(rng: random.Random, kind: str, m: Muni, area: list[str], ishikai: str | None, pref_name: str,
         insts: list[Entity]) -> dict:
    area_text = rng.choice(["・", "、"]).join(area)
    tori = [rng.random() < p for p in (0.85, 0.7, 0.6, 0.6, 0.5)]
    if not any(tori):
        tori[0] = True
    hub = {"area": area_text, "start": _start_text(rng), "tori": tori, "same_prog": False, "same_inst": False,
           "defect": None}
    if kind in ("center", "shared"):
        hub.update(name=f"{m.name}在宅医療・介護連携支援センター", kind="地域医師会等関係団体",
                   operator=ishikai or f"{m.name}医師会", op_kind="地域医師会等関係団体", same_prog=True)
    elif kind == "houkatsu":
        hub.update(name=f"{m.name}{rng.choice(['中央', '東部', '西部', '北部'])}地域包括支援センター",
                   kind="地域包括支援センター", operator=m.name, op_kind="市町村", same_prog=rng.random() < 0.5)
    elif kind == "hospital":
        hosp = [e for e in insts if e.kind == "hospital" and e.home and e.home[0].startswith("支援病")]
        if hosp:
            h = _pick(rng, hosp)
            hub.update(name=h.names["meibo_name"], kind="病院",
                       operator=h.corp[0] if h.corp else h.names["meibo_name"], op_kind="病院", same_inst=True)
        else:
            hub.update(name=f"{m.name}在宅医療連携室", kind="市町村", operator=m.name, op_kind="市町村")
    elif kind == "station":
        w = _pick(rng, HIRA_WORDS)
        hub.update(name=f"訪問看護ステーション{w[0]}（{m.name}）", kind="訪問看護事業所",
                   operator=f"株式会社{w[0]}ケア", op_kind="訪問看護事業所")
    else:
        hub.update(name=f"{pref_name}{m.stem}保健所", kind="保健所", operator=pref_name, op_kind="保健所")
    return hub


def _ok_cp932(rows: list[list]) -> bool:
    try:
        "".join(str(v) for r in rows for v in r).encode("cp932")
        return True
    except UnicodeEncodeError:
        return False


def _write_csv(path: Path, rows: list[list], encoding: str) -> str:
    if encoding == "cp932" and not _ok_cp932(rows):
        encoding = "utf-8-sig"   # a name with a character Shift_JIS lacks: Excel would save UTF-8
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return encoding


def _marks(tori: list[bool], mark: str = "○") -> list[str]:
    return [mark if t else "" for t in tori]


def write_reports(task: dict) -> dict:
    """Render report files (xlsxwriter / csv). Returns rows per file and the defects with their rows."""
    files, defects = {}, []
    for spec in task["specs"]:
        path = Path(spec["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        rows_written = _RENDER[spec["layout"]](path, spec, defects)
        files[str(path)] = rows_written
    return {"files": files, "defects": defects}


def _wb(path: Path) -> xlsxwriter.Workbook:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    wb.set_properties({"created": CREATED})
    return wb


def _defect(defects: list, path: Path, sheet: str | None, row: int, rule: str, value: str) -> None:
    defects.append({"file": str(path), "sheet": sheet or "", "row": row, "rule": rule, "value": value})


def _inst_cells(r: dict, path: Path, sheet: str | None, excel_row: int, defects: list, list_form: bool):
    """(code, torikumi) as written, with the row's defect applied."""
    code, tori = r["code"], r["tori"]
    d = r.get("defect")
    if d == "inst_code_check_digit" and code:
        code = code[:9] + str((int(code[9]) + 1) % 10)
        _defect(defects, path, sheet, excel_row, d, code)
    if list_form:
        nums = [str(i + 1) for i, t in enumerate(tori) if t]
        if d == "torikumi_in_range":
            nums.append("7")
            _defect(defects, path, sheet, excel_row, d, ",".join(nums))
        return code, nums
    marks = _marks(tori, "○")
    if d == "yes_or_blank":
        k = next((i for i, t in enumerate(tori) if t), 0)
        marks[k] = "△"
        _defect(defects, path, sheet, excel_row, d, "△")
    return code, marks


def _sender_block(ws, fmt, labels: list[str], values: list[str]) -> None:
    for i, (lab, val) in enumerate(zip(labels, values)):
        ws.write_string(i + 1, 0, lab, fmt)
        if val:
            ws.write_string(i + 1, 1, val)


def _render_template(path: Path, spec: dict, defects: list) -> int:
    """Our own 調査票 (sheets 記入要領 and 入力: title, sender block rows 2–6, note row 7, header row 8)."""
    kind = ISHIKAI if spec["kind"] == "ishikai" else SHICHOSON
    cols = kind.template_columns()
    wb = _wb(path)
    bold = wb.add_format({"bold": True})
    guide = wb.add_worksheet("記入要領")
    guide.write_string(0, 0, f"{spec['pref_name']} {kind.title}　記入要領")
    guide.write_string(2, 0, "入力シートの表に1行に1件ずつ記入してください。")
    ws = wb.add_worksheet("入力")
    ws.write_string(0, 0, f"{spec['pref_name']} {kind.title}", bold)
    c = spec["contact"]
    _sender_block(ws, bold, [kind.sender_label, "所属", "記入者", "電話", "メール"],
                  [spec["sender"], c["所属"], c["記入者"], c["電話"], c["メール"]])
    ws.write_string(6, 0, "1行に1件ずつ記入してください。" if spec["layout"] != "prefilled" else
                    "県が厚生局の名簿から記入しました。報告する行の「報告」欄に○を、行う取組に○をつけてください。")
    for i, col in enumerate(cols):
        ws.write_string(7, i, col.label, bold)
    idx = {col.field: i for i, col in enumerate(cols)}
    r0 = 8
    for k, r in enumerate(spec["rows"]):
        row = r0 + k
        ws.write_number(row, idx["no"], k + 1)
        if spec["kind"] == "ishikai":
            code, marks = _inst_cells(r, path, "入力", row + 1, defects, False)
            if spec["layout"] == "prefilled" or k % 3 or r.get("defect") == "inst_code_check_digit":
                if code:
                    ws.write_string(row, idx["inst_code"], code)
            ws.write_string(row, idx["name"], r["name"])
            ws.write_string(row, idx["municipality"], r["muni"])
            if spec["layout"] == "prefilled":
                ws.write_string(row, idx["address"], r["address"])
            if r["label"]:
                ws.write_string(row, idx["reported_type"], r["label"])
            if r["report"]:
                ws.write_string(row, idx["report"], "○")
                for n in range(6):
                    if marks[n]:
                        ws.write_string(row, idx[f"torikumi_{n + 1}"], marks[n])
            if r.get("defect") == "institution_not_found":
                _defect(defects, path, "入力", row + 1, "institution_not_found", r["name"])
        else:
            _hub_template_row(ws, idx, row, r, path, defects)
    for i in range(len(spec["rows"]), len(spec["rows"]) + 20):   # the template's numbered empty rows
        ws.write_number(r0 + i, idx["no"], i + 1)
    wb.close()
    return sum(1 for r in spec["rows"] if r.get("report", True))


def _hub_template_row(ws, idx: dict, row: int, h: dict, path: Path, defects: list) -> None:
    ws.write_string(row, idx["name"], h["name"])
    ws.write_string(row, idx["hub_kind"], h["kind"])
    ws.write_string(row, idx["area"], h["area"])
    ws.write_string(row, idx["operator"], h["operator"])
    ws.write_string(row, idx["operator_kind"], h["op_kind"])
    ws.write_string(row, idx["start"], h["start"])
    if h["same_prog"]:
        ws.write_string(row, idx["same_as_program"], "○")
    if h["same_inst"]:
        ws.write_string(row, idx["same_as_institution"], "○")
    marks = _marks(h["tori"])
    if h.get("defect") == "yes_or_blank":
        marks[next((i for i, t in enumerate(h["tori"]) if t), 0)] = "△"
    for n in range(5):
        if marks[n]:
            ws.write_string(row, idx[f"torikumi_{n + 1}"], marks[n])
    if h.get("defect"):
        _defect(defects, path, "入力", row + 1, h["defect"], h["area"] if h["defect"].startswith("area") else "△")


def _render_list_xlsx(path: Path, spec: dict, defects: list) -> int:
    wb = _wb(path)
    if spec["kind"] == "ishikai":
        ws = wb.add_worksheet("様式1")
        ws.write_string(0, 0, f"積極的役割を担う医療機関一覧（{spec['sender']}）")
        for c, h in enumerate(["No", "医療機関コード", "医療機関名", "所在地", "取組事項", "連絡先"]):
            ws.write_string(2, c, h)
        for k, r in enumerate(spec["rows"]):
            row = 3 + k
            code, nums = _inst_cells(r, path, "様式1", row + 1, defects, True)
            if code and k % 4 == 1 and r.get("defect") != "inst_code_check_digit":
                code = f"{code[3:5]},{code[5:9]},{code[9]}"   # the 名簿's 7-digit form
            ws.write_number(row, 0, k + 1)
            if code:
                ws.write_string(row, 1, code)
            ws.write_string(row, 2, r["name"])
            ws.write_string(row, 3, r["address"] or r["muni"])
            ws.write_string(row, 4, "".join(CIRCLED[int(n) - 1] if n != "7" else "⑦" for n in nums) if k % 2
                            else ",".join(nums))
            ws.write_string(row, 5, spec["contact"]["電話"])
            if r.get("defect") == "institution_not_found":
                _defect(defects, path, "様式1", row + 1, "institution_not_found", r["name"])
    else:
        ws = wb.add_worksheet("拠点一覧")
        ws.write_string(0, 0, f"在宅医療に必要な連携を担う拠点（{spec['sender']}）")
        ws.write_string(1, 0, f"市町村名：{spec['sender']}")
        for c, h in enumerate(["番号", "拠点名", "拠点の種別", "対象区域", "運営主体", "運営主体の種別", "開始年月", "取組事項"]):
            ws.write_string(3, c, h)
        for k, h in enumerate(spec["rows"]):
            row = 4 + k
            ws.write_number(row, 0, k + 1)
            for c, v in enumerate([h["name"], h["kind"], h["area"], h["operator"], h["op_kind"], h["start"]], 1):
                ws.write_string(row, c, v)
            ws.write_string(row, 7, "".join(CIRCLED[i] for i, t in enumerate(h["tori"]) if t))
            if h.get("defect"):
                _defect(defects, path, "拠点一覧", row + 1, h["defect"], h["area"])
    wb.close()
    return len(spec["rows"])


def _render_two_row(path: Path, spec: dict, defects: list) -> int:
    """An old-style report: title rows, a two-row header with 取組事項 merged over ①..⑥, the municipality merged
    down over its institutions, a note under the table."""
    wb = _wb(path)
    ws = wb.add_worksheet("報告")
    center = wb.add_format({"align": "center", "valign": "vcenter"})
    ws.write_string(0, 0, "令和8年度 在宅医療において積極的役割を担う医療機関について（報告）")
    ws.write_string(1, 0, f"医師会名：{spec['sender']}")
    ws.write_string(2, 0, f"担当：{spec['contact']['記入者']}　TEL {spec['contact']['電話']}")
    ws.merge_range(4, 0, 5, 0, "市町村", center)
    ws.merge_range(4, 1, 5, 1, "医療機関名称", center)
    ws.merge_range(4, 2, 5, 2, "届出区分", center)
    ws.merge_range(4, 3, 4, 8, "取組事項", center)
    for n in range(6):
        ws.write_string(5, 3 + n, CIRCLED[n], center)
    rows = sorted(spec["rows"], key=lambda r: r["muni"])
    r0, k = 6, 0
    while k < len(rows):
        j = k
        while j < len(rows) and rows[j]["muni"] == rows[k]["muni"]:
            j += 1
        if j - k > 1:
            ws.merge_range(r0 + k, 0, r0 + j - 1, 0, rows[k]["muni"], center)
        else:
            ws.write_string(r0 + k, 0, rows[k]["muni"])
        for i in range(k, j):
            r = rows[i]
            _, marks = _inst_cells(r, path, "報告", r0 + i + 1, defects, False)
            ws.write_string(r0 + i, 1, r["name"])
            if r["symbol"]:
                ws.write_string(r0 + i, 2, fullwidth(r["symbol"]))
            for n in range(6):
                if marks[n]:
                    ws.write_string(r0 + i, 3 + n, marks[n].replace("○", "〇"))
            if r.get("defect") == "institution_not_found":
                _defect(defects, path, "報告", r0 + i + 1, "institution_not_found", r["name"])
        k = j
    ws.write_string(r0 + len(rows) + 1, 0, "※ 取組事項の番号は県の調査票記入要領による。")
    wb.close()
    return len(rows)


def _render_csv_cp932(path: Path, spec: dict, defects: list) -> int:
    if spec["kind"] == "ishikai":
        rows = [[f"{spec['sender']} 積極的役割を担う医療機関 報告"], [],
                ["番号", "医療機関の名称", "市町村名", "種別", "取組事項（番号）", "備考"]]
        for k, r in enumerate(spec["rows"]):
            _, nums = _inst_cells(r, path, None, len(rows) + 1, defects, True)
            if r.get("defect") == "institution_not_found":
                _defect(defects, path, None, len(rows) + 1, "institution_not_found", r["name"])
            rows.append([str(k + 1), r["name"], r["muni"], r["symbol"], ",".join(nums), ""])
        rows += [[""] * 6, ["", "（以下余白）", "", "", "", ""]]
    else:
        rows = [[f"在宅医療に必要な連携を担う拠点（{spec['sender']}）"],
                ["名称", "事業区域", "運営主体", "運営主体の種別", "開始時期", "取組事項"]]
        for h in spec["rows"]:
            if h.get("defect"):
                _defect(defects, path, None, len(rows) + 1, h["defect"], h["area"])
            rows.append([h["name"], h["area"], h["operator"], h["op_kind"], h["start"],
                         ",".join(str(i + 1) for i, t in enumerate(h["tori"]) if t)])
    _write_csv(path, rows, "cp932")
    return len(spec["rows"])


def _render_csv_utf8(path: Path, spec: dict, defects: list) -> int:
    if spec["kind"] == "ishikai":
        rows = [["医師会名", spec["sender"]], [],
                ["医療機関コード", "医療機関名", "所在市町村", "種別", *[f"取組{n}" for n in range(1, 7)]]]
        for r in spec["rows"]:
            code, marks = _inst_cells(r, path, None, len(rows) + 1, defects, False)
            if r.get("defect") == "institution_not_found":
                _defect(defects, path, None, len(rows) + 1, "institution_not_found", r["name"])
            rows.append([code, r["name"], r["muni"], r["label"] or "", *[m.replace("○", "1") for m in marks]])
    else:
        rows = [["市町村名", spec["sender"]], ["担当者", spec["contact"]["記入者"]], [],
                ["拠点名", "種別", "区域", "運営主体名", "運営主体の種別", "開始年度", *[f"取組{CIRCLED[n]}" for n in range(5)]]]
        for h in spec["rows"]:
            marks = ["1" if t else "" for t in h["tori"]]
            if h.get("defect") == "yes_or_blank":
                marks[next((i for i, t in enumerate(h["tori"]) if t), 0)] = "△"
            if h.get("defect"):
                _defect(defects, path, None, len(rows) + 1, h["defect"],
                        h["area"] if h["defect"].startswith("area") else "△")
            rows.append([h["name"], h["kind"], h["area"], h["operator"], h["op_kind"], h["start"], *marks])
    _write_csv(path, rows, "utf-8-sig")
    return len(spec["rows"])


def _render_cover(path: Path, spec: dict, defects: list) -> int:
    wb = _wb(path)
    ws = wb.add_worksheet("送付状")
    for i, t in enumerate([f"{spec['pref_name']}保健福祉部長 様", f"{spec['sender']}長",
                           "在宅医療に係る調査について（回答）", "標記について、別添のとおり回答します。",
                           "（別添は追って送付します）"]):
        ws.write_string(i * 2, 0, t)
    wb.close()
    _defect(defects, path, None, 0, "layout_not_recognised", "")
    return 0


_RENDER = {"prefilled": _render_template, "template": _render_template, "list_xlsx": _render_list_xlsx,
           "two_row": _render_two_row, "csv_cp932": _render_csv_cp932, "csv_utf8": _render_csv_utf8,
           "cover": _render_cover}


# --- generate ------------------------------------------------------------------------------------
def _clear(out: Path) -> None:
    """Remove what a previous generation wrote (only the folders this module writes)."""
    if not out.is_dir():
        return
    for p in out.iterdir():
        if p.is_dir() and (p.name in ("reference", "truth") or re.fullmatch(r"[0-4]\d", p.name)):
            shutil.rmtree(p)


def _run_tasks(fn, tasks: list[dict], pool) -> list:
    """Results (no pool) or futures (pool) of fn over tasks, in task order."""
    if pool is None:
        return [fn(t) for t in tasks]
    return [pool.submit(fn, t) for t in tasks]


def generate(out: Path, scale: str = "national", seed: int = 0, prefs: list[str] | None = None, *,
             workers: int | None = None, raw: Path = RAW) -> dict:
    """Write a complete raw/-like input folder (see the module docstring). Returns the manifest (also written to
    out/truth/manifest.json): counts, files with their rows, truth links, timings."""
    t0 = time.perf_counter()
    out = Path(out)
    tpl = load_templates(raw)
    counts = plan_counts(tpl.master_rows, scale, prefs)
    _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference/municipalities").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw / "reference/municipalities/municipalities.csv",
                    out / "reference/municipalities/municipalities.csv")
    pref_names = {r["団体コード"][:2]: r["都道府県名"] for r in tpl.master_rows if r["区分"] == "都道府県"}
    all_names = {text.basic(r["市区町村名"]) for r in tpl.master_rows if r["市区町村名"]}
    # every random stream is per prefecture, so a prefecture is the same whichever others run with it
    ents_by_pref: dict[str, list[Entity]] = {}
    munis_by_pref: dict[str, dict[str, Muni]] = {}
    for p in counts:
        places, by_code = municipalities(tpl.master_rows, p)
        munis_by_pref[p] = by_code
        ents_by_pref[p] = generate_prefecture(seed, p, pref_names[p], places, counts[p], tpl)
    t_entities = time.perf_counter() - t0
    if workers is None:
        workers = 1 if scale == "small" else max(1, min(4, os.cpu_count() or 1))
    m_tasks = sorted(meibo_tasks(out, ents_by_pref, pref_names, tpl, seed), key=lambda t: -t["weight"])
    r_tasks, area_rows, report_counts = [], {}, {"institution_rows": 0, "hub_rows": 0}
    for p in counts:
        rows, ishikai = make_areas(random.Random(f"synth:{seed}:areas:{p}"), munis_by_pref[p])
        area_rows[p] = rows
        specs, n = build_reports(seed, p, pref_names[p], out, ents_by_pref[p], munis_by_pref[p], ishikai, all_names)
        for k in report_counts:
            report_counts[k] += n[k]
        r_tasks.append({"specs": specs})
    pool = None
    if workers > 1:
        import multiprocessing
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        meibo_futs = _run_tasks(write_meibo, [{k: v for k, v in t.items() if k != "weight"} for t in m_tasks], pool)
        report_futs = _run_tasks(write_reports, r_tasks, pool)
        # meanwhile, in this process: the CSV files
        files: dict[str, int] = {}
        files.update(write_facility_files(out, ents_by_pref, tpl, seed))
        files.update(write_code_list(out, ents_by_pref))
        files.update(write_prefecture_config(out, counts, pref_names, area_rows, raw))
        truth_files, n_truth = write_truth(out, ents_by_pref)
        files.update(truth_files)
        meibo = [f.result() if pool else f for f in meibo_futs]
        reports = [f.result() if pool else f for f in report_futs]
    finally:
        if pool is not None:
            pool.shutdown()
    meibo_rows = 0
    for m in meibo:
        rel = str(Path(m["path"]).relative_to(out))
        files[rel] = sum(m["sheets"].values())
        meibo_rows += files[rel]
    defects = []
    n_report_files = 0
    for r in reports:
        for path, n in r["files"].items():
            files[str(Path(path).relative_to(out))] = n
            n_report_files += 1
        defects += r["defects"]
    defects.sort(key=lambda d: (d["file"], d["row"]))
    with open(out / "truth/report_defects.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["file", "sheet", "row", "rule", "value"])
        for d in defects:
            w.writerow([str(Path(d["file"]).relative_to(out)), d["sheet"], d["row"], d["rule"], d["value"]])
    elapsed = time.perf_counter() - t0
    ents = [e for v in ents_by_pref.values() for e in v]
    manifest = {
        "scale": scale, "seed": seed, "prefectures": sorted(counts), "out": str(out),
        "counts": {
            "hospitals_in_facility_file": sum(1 for e in ents if e.kind == "hospital" and e.in_fac),
            "clinics_in_facility_file": sum(1 for e in ents if e.kind == "clinic" and e.in_fac),
            "dental_in_facility_file": sum(1 for e in ents if e.kind == "dental"),
            "institutions_in_meibo": sum(1 for e in ents if e.in_meibo),
            "institutions_in_code_list": sum(1 for e in ents if e.in_codes),
            "meibo_rows": meibo_rows,
            "shien_byo": sum(1 for e in ents if any(s.startswith("支援病") for s in e.home)),
            "shien_shin": sum(1 for e in ents if any(s.startswith("支援診") for s in e.home)),
            "zaiisoukan": sum(1 for e in ents if any(s.startswith("在医総管") for s in e.home)),
            "kouhou_byoin": sum(1 for e in ents if "在後病" in e.home),
            "renamed": sum(1 for e in ents if e.old_base), "moved": sum(1 for e in ents if e.moved),
            "truth_links": n_truth,
            "report_files": n_report_files,
            "institution_report_rows": report_counts["institution_rows"],
            "hub_report_rows": report_counts["hub_rows"],
            "report_defects": len(defects),
            "report_defects_by_rule": _count([d["rule"] for d in defects]),
        },
        "files": dict(sorted(files.items())),
        "seconds": {"entities": round(t_entities, 2), "total": round(elapsed, 2)},
        "workers": workers,
    }
    manifest["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    (out / "truth/manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def write_prefecture_config(out: Path, counts: dict, pref_names: dict[str, str], area_rows: dict[str, list[dict]],
                            raw: Path) -> dict:
    from annex.areas import AREA_HEADER
    assert list(AREA_HEADER) == AREA_COLUMNS
    header = (raw / "03/facility_link_overrides.csv").read_bytes().splitlines(keepends=True)[0]
    files = {}
    for p in counts:
        d = out / p
        d.mkdir(parents=True, exist_ok=True)
        (d / "prefecture.toml").write_text(f'pref_code = "{p}"\npref_name = "{pref_names[p]}"\n', encoding="utf-8")
        (d / "facility_link_overrides.csv").write_bytes(header)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(AREA_COLUMNS)
        for r in area_rows[p]:
            w.writerow([r[c] for c in AREA_COLUMNS])
        (d / "areas.csv").write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
        files[f"{p}/areas.csv"] = len(area_rows[p])
        (d / "reports/ishikai").mkdir(parents=True, exist_ok=True)
        (d / "reports/shichoson").mkdir(parents=True, exist_ok=True)
    return files


def write_truth(out: Path, ents_by_pref: dict[str, list[Entity]]) -> tuple[dict, int]:
    d = out / "truth"
    d.mkdir(parents=True, exist_ok=True)
    links = sorted((e.inst_code, e.facility_id) for v in ents_by_pref.values() for e in v
                   if e.inst_code and e.facility_id and e.kind != "dental")
    with open(d / "links.csv", "w", encoding="utf-8", newline="") as f:
        f.write("inst_code,facility_id\r\n")
        f.writelines(f"{a},{b}\r\n" for a, b in links)
    cols = ["pref_code", "kind", "inst_code", "facility_id", "municipality_code", "in_meibo", "in_code_list",
            "in_facility_file", "meibo_name", "facility_name", "meibo_address", "facility_address", "home_care",
            "corp_side", "variant_side", "renamed", "moved", "co_located_with"]
    with open(d / "institutions.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(cols)
        for p in sorted(ents_by_pref):
            for e in ents_by_pref[p]:
                w.writerow([p, e.kind, e.inst_code, e.facility_id, e.muni.code, int(e.in_meibo), int(e.in_codes),
                            int(e.in_fac), e.names["meibo_name"] if e.kind != "dental" else "", e.names["fac_name"],
                            e.names["meibo_addr"] if e.kind != "dental" else "", e.names["fac_addr"],
                            " ".join(e.home), e.corp_side if e.corp else "", e.variant_side, int(bool(e.old_base)),
                            int(e.moved), e.co_located.facility_id if e.co_located else ""])
    return {"truth/links.csv": len(links)}, len(links)


# --- CLI -----------------------------------------------------------------------------------------
def _cli(args: argparse.Namespace) -> int:
    try:
        m = generate(args.out, args.scale, args.seed, args.pref or None)
    except ValueError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 2
    c = m["counts"]
    print(f"合成データを作成しました: {args.out}（{m['seconds']['total']:.1f} 秒、{m['bytes'] / 1e6:,.0f} MB）")
    print(f"  都道府県 {len(m['prefectures'])} / 病院 {c['hospitals_in_facility_file']:,} / "
          f"診療所 {c['clinics_in_facility_file']:,} / 歯科 {c['dental_in_facility_file']:,}")
    print(f"  名簿 {c['institutions_in_meibo']:,} 機関・{c['meibo_rows']:,} 行 / コード一覧 {c['institutions_in_code_list']:,} 行"
          f" / 正解の紐付け {c['truth_links']:,} 組")
    print(f"  報告 {c['report_files']:,} ファイル（医療機関 {c['institution_report_rows']:,} 行・拠点 "
          f"{c['hub_report_rows']:,} 行、意図した誤り {c['report_defects']:,} 件）")
    print(f"  正解と内訳: {Path(args.out) / 'truth'}")
    return 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the `synth` command to the `annex` command line."""
    p = subparsers.add_parser(
        "synth", help="全国規模の合成入力データ（raw/ と同じ形式）を作成します",
        description="医療情報ネットの施設ファイル・厚生局の届出受理医療機関名簿・コード一覧・圏域設定・医師会と市町村の報告を、"
                    "公表されている実際の形式で合成します（同じシードなら同じ内容）。正解の紐付けは <DIR>/truth/ に書きます。"
                    "性能測定と紐付けの精度確認用です。")
    p.add_argument("--scale", choices=SCALES, default="national",
                   help="規模: national（全国47都道府県）・prefecture（1都道府県、全国と同じ密度）・small（試験用、2〜3県で全国の約1%%）")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="出力フォルダ（raw/ と同じ構成。既存の合成データは置き換えます）")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="乱数のシード（既定: 0）")
    p.add_argument("--pref", action="append", metavar="CODE",
                   help="都道府県コード（複数指定可。prefecture の既定は 13、small の既定は 03・14・39）")
    p.set_defaults(func=_cli)
    return p


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m annex.synth")
    register_cli(ap.add_subparsers(dest="command", required=True))
    a = ap.parse_args()
    sys.exit(a.func(a))
