"""Reading the reference data of one run: which files, which snapshot, and the institutions they describe."""
from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from annex import text, workers
from annex.cache import cached_read, file_sha256, is_cached
from annex.code_list import CODE_LIST_COLUMNS, read_code_list
from annex.facility_files import FACILITY_COLUMNS, parse_file_name, read_facility_file
from annex.codes import muni_code6
from annex.findings import ReadResult, finding
from annex.frames import per_value
from annex.meibo import read_meibo
from annex.status import status_symbol
from annex.municipalities import MunicipalityIndex, read_master

MASTER_PATH = Path("reference/municipalities/municipalities.csv")
FACILITY_DIR = Path("reference/iryo_joho_net")
MEIBO_DIR = Path("reference/kouseikyoku")
CODE_LIST_DIR = Path("reference/kouseikyoku_codes")


@dataclass
class Prefecture:
    code: str
    name: str
    dir: Path


def configured_prefectures(raw: Path) -> list[Prefecture]:
    """Every raw/<NN>/prefecture.toml."""
    out = []
    for p in sorted(raw.glob("[0-4][0-9]/prefecture.toml")):
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
        out.append(Prefecture(str(cfg["pref_code"]).zfill(2), cfg["pref_name"], p.parent))
    return out


@dataclass
class ReferenceData:
    master: ReadResult
    index: MunicipalityIndex
    facility_files: list[ReadResult] = field(default_factory=list)
    meibo_files: list[ReadResult] = field(default_factory=list)
    code_lists: list[ReadResult] = field(default_factory=list)

    partial: bool = False   # only some prefectures' rows (read_reference(only=…)): not for staging a whole run
    _parts: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def results(self) -> list[ReadResult]:
        return [self.master, *self.facility_files, *self.meibo_files, *self.code_lists]

    def for_prefecture(self, pref_code: str) -> "ReferenceData":
        """The same reference data cut to one prefecture: what a worker process needs to link it and check its
        reports (pickled to the worker: the prefecture's rows, not the country's)."""
        def one(kind: str, frame: pl.DataFrame) -> list[ReadResult]:
            return [ReadResult(kind, "", frame)]
        return ReferenceData(self.master, self.index, one("facility_file", self.of_prefecture("facilities", pref_code)),
                             one("meibo", _for_linking(self.of_prefecture("notifications", pref_code))),
                             one("code_list", self.of_prefecture("code_list", pref_code)))

    def release_parts(self) -> None:
        """Forget the per-prefecture split (memory); of_prefecture() splits again if asked."""
        self._parts.clear()

    def of_prefecture(self, what: str, pref_code: str) -> pl.DataFrame:
        """facilities / notifications / code_list of one prefecture. Nationally each is split once, not
        filtered out of 1.5 M rows for every prefecture; a run that redoes a few prefectures filters just
        those (SPLIT_FROM). Each file's frame is cut on its own: cutting their concatenation would first copy
        it whole into one chunk (+700 MB for the 名簿 rows). Redone when files were added."""
        stamp = (len(self.facility_files), len(self.meibo_files), len(self.code_lists))
        if self._parts.get(what, (None,))[0] != stamp:
            self._parts[what] = (stamp, {}, False)
        _, parts, whole = self._parts[what]
        if pref_code not in parts and not whole:
            frames = self._frames(what)
            empty = getattr(self, what)().clear()
            if len(parts) + 1 < SPLIT_FROM:
                cut = [f.filter(pl.col("pref_code") == pref_code) for f in frames]
                parts[pref_code] = pl.concat(cut) if cut else empty
            else:
                pieces: dict[str, list[pl.DataFrame]] = {}
                for f in frames:
                    for key, part in _by_prefecture(f).items():
                        pieces.setdefault(key, []).append(part)
                parts.update({k: pl.concat(v) for k, v in pieces.items()}, **{"": empty})
                self._parts[what] = (stamp, parts, True)
        return parts.get(pref_code, parts.get(""))

    def _frames(self, what: str) -> list[pl.DataFrame]:
        """The per-file frames code_list() / facilities() / notifications() concatenate."""
        if what == "facilities":
            return [r.accepted for r in self.facility_files if r.status == "read" and r.accepted.height]
        return [r.accepted for r in (self.meibo_files if what == "notifications" else self.code_lists)
                if r.accepted.height]

    def code_list(self) -> pl.DataFrame:
        frames = self._frames("code_list")
        return pl.concat(frames) if frames else pl.DataFrame(schema=CODE_LIST_COLUMNS)

    def facilities(self) -> pl.DataFrame:
        frames = self._frames("facilities")
        return pl.concat(frames) if frames else pl.DataFrame(schema=FACILITY_COLUMNS)

    def notifications(self) -> pl.DataFrame:
        frames = self._frames("notifications")
        return pl.concat(frames) if frames else pl.DataFrame()


PARALLEL_BYTES = 16 * 2**20   # reference files to parse: from this size on, in worker processes
SPLIT_FROM = 3   # prefectures asked for: from then on a frame is split by prefecture once, not filtered


def _by_prefecture(frame: pl.DataFrame) -> dict[str | None, pl.DataFrame]:
    """{pref_code: its rows} of one file's frame, in the frame's order. A 名簿 workbook has a sheet per prefecture,
    so each prefecture's rows are one run: those are cut as slices, which share the frame's memory; partition_by
    copied every column (nationally a second copy of the 1.5 M 名簿 rows, ~0.3 s of CPU on the run's one busy
    thread between the parse and the prefectures' work). A frame whose prefectures come in several runs is
    partitioned as before."""
    if frame.height == 0:
        return {}
    codes = frame["pref_code"]
    # where the code changes (null counts as a value); the first row always starts a run
    first = codes.ne_missing(codes.shift(1)).arg_true().to_list()
    if not first or first[0] != 0:
        first = [0, *first]
    keys = codes.gather(first).to_list()
    if len(set(keys)) < len(keys):   # a prefecture in two runs
        return {key[0]: part for key, part in frame.partition_by("pref_code", as_dict=True).items()}
    ends = [*first[1:], frame.height]
    return {key: frame.slice(start, end - start) for key, start, end in zip(keys, first, ends)}


def facility_file_plan(raw: Path, as_of: dt.date | None = None) -> tuple[list[Path], list[Path]]:
    """(files to read, superseded files): the latest snapshot of each kind (01-1, 02-1, 03-1), or with as_of
    the latest published on or before that date (a deadline rerun reproduces what was valid then)."""
    latest: dict[str, tuple] = {}
    other, superseded = [], []
    for p in sorted((raw / FACILITY_DIR).glob("*")):
        parsed = parse_file_name(p)
        if parsed is None:
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in (".csv", ".zip"):
                other.append(p)  # read anyway: the reader reports the bad name clearly
            continue
        kind, snap = parsed
        if as_of is not None and snap > as_of:
            superseded.append(p)  # newer than the date asked for
            continue
        if kind not in latest or snap > latest[kind][0]:
            if kind in latest:
                superseded.append(latest[kind][1])
            latest[kind] = (snap, p)
        else:
            superseded.append(p)
    return sorted(v[1] for v in latest.values()) + other, superseded


_MONTHLY = re.compile(r"^(?P<series>.+?)[-_]?r(?P<yy>\d{2})(?P<mm>\d{2})$")      # shisetsu-touhoku-ika-r0808
_YYYYMM = re.compile(r"^(?P<series>.+?)_(?P<yyyy>\d{4})(?P<mm>\d{2})$")           # all_med_inst_cd_202508


def monthly_plan(paths: list[Path], as_of: dt.date | None = None) -> tuple[list[Path], list[Path]]:
    """Monthly lists (厚生局 名簿 rYYMM in 令和, code lists YYYYMM): per series the latest month, or the latest
    month on or before as_of. Two months of one bureau's list are never read together (they would double
    every notification). A file whose name carries no month is read as it is."""
    best: dict[str, tuple[dt.date, Path]] = {}
    keep, superseded = [], []
    for p in sorted(paths):
        m = _MONTHLY.match(p.stem)
        if m:
            month = dt.date(2018 + int(m["yy"]), int(m["mm"]), 1)
        else:
            m = _YYYYMM.match(p.stem)
            month = dt.date(int(m["yyyy"]), int(m["mm"]), 1) if m else None
        if month is None or not 1 <= month.month <= 12:
            keep.append(p)
            continue
        if as_of is not None and month > as_of:
            superseded.append(p)
            continue
        series = m["series"]
        if series in best:
            older = min(best[series], (month, p))
            superseded.append(older[1])
            best[series] = max(best[series], (month, p))
        else:
            best[series] = (month, p)
    return sorted(keep + [v[1] for v in best.values()]), superseded


def read_reference(raw: Path, prefs: set[str], as_of: dt.date | None = None, cache: Path | None = None,
                   only: set[str] | None = None, helper: workers.Helper | None = None) -> ReferenceData:
    """Every reference file valid at as_of (default: the newest), parsed once per content (cache: Parquet).
    only: of the prefectures read, keep just these prefectures' rows (a run that redoes a few of them reads
    the parse made for all, cut while it is scanned); the result is then not for staging the whole run.
    helper: a run's helper process (workers.Helper), which parses all files but the largest into the cache
    while the largest parses here."""
    master_path = raw / MASTER_PATH
    master = cached_read(cache, master_path, "municipalities", "", lambda: read_master(master_path))
    index = MunicipalityIndex(master.accepted)
    ref = ReferenceData(master, index)
    # what the other readers depend on besides their own bytes: the prefectures and the master
    params = ",".join(sorted(prefs)) + "|" + (file_sha256(master_path) if master_path.is_file() else "")
    (to_read, superseded), (meibo, old_meibo), (code_lists, old_lists) = _plans(raw, as_of)
    jobs = [(kind, p, cache, params, prefs, index, only) for kind, paths in
            (("facility_file", to_read), ("meibo", meibo), ("code_list", code_lists)) for p in paths]
    # nationally: 8 bureau workbooks (1.5 M rows) and 3 facility files, parsed side by side in worker processes
    # when at least 3 of them, and enough bytes to pay for starting the workers, are not in the parse cache
    # (one prefecture's files, ~6 MB for 東京都, parse in ~2 s here; spawned workers took 6 s)
    missing = [job for job in jobs if not is_cached(cache, job[1], job[0], params)]
    parsed_here: dict[Path, ReadResult] = {}
    if len(missing) >= 3 and sum(job[1].stat().st_size for job in missing) >= PARALLEL_BYTES \
            and cache is not None and workers.worker_count(len(missing)) > 1:
        # the workers parse into the cache and send back nothing: reading their Parquet here is cheaper than
        # pickling 1.5 M rows back through a pipe; each file is read as soon as it is parsed, while the workers
        # go on with the others. This process parses too (here=): the largest file first, from the moment it
        # knows the plan, while the worker is forked
        def take(i: int, parsed: ReadResult | None) -> None:
            parsed_here[missing[i][1]] = parsed if parsed is not None else _read_source(*missing[i])
        workers.map_jobs(_parse_into_cache, missing, weights=[p.stat().st_size for _, p, *_ in missing],
                         on_result=take, here=_read_source)
    elif len(missing) >= 2 and cache is not None and helper is not None and helper.parallel:
        # one prefecture's files (東京都: the 関東信越 名簿 5 MB; 3 facility files and the code list 1.5 MB)
        largest = max(missing, key=lambda job: job[1].stat().st_size)
        beside = [helper.submit(_parse_into_cache, *job) for job in missing if job is not largest]
        parsed_here[largest[1]] = _read_source(*largest)
        for job in beside:
            job.result()
    # from the cache, or parsed here
    results = [parsed_here[job[1]] if job[1] in parsed_here else _read_source(*job) for job in jobs]
    ref.partial = only is not None
    by_kind = {"facility_file": ref.facility_files, "meibo": ref.meibo_files, "code_list": ref.code_lists}
    for (kind, *_), res in zip(jobs, results):
        by_kind[kind].append(res)
    for p in superseded:
        ref.facility_files.append(ReadResult("facility_file", str(p), pl.DataFrame(schema=FACILITY_COLUMNS),
                                             status="superseded"))
    for kind, paths, target in (("meibo", old_meibo, ref.meibo_files), ("code_list", old_lists, ref.code_lists)):
        for p in paths:
            target.append(ReadResult(kind, str(p), pl.DataFrame(), status="superseded"))
    return ref


def _plans(raw: Path, as_of: dt.date | None) -> list[tuple[list[Path], list[Path]]]:
    """(to read, superseded) of the facility files, the 名簿 workbooks and the code lists."""
    meibo = [p for p in (raw / MEIBO_DIR).glob("*.xls*") if not p.name.startswith("~$")]
    return [facility_file_plan(raw, as_of), monthly_plan(meibo, as_of),
            monthly_plan(list((raw / CODE_LIST_DIR).glob("*.csv")), as_of)]


def reference_bytes(raw: Path, as_of: dt.date | None = None) -> int:
    """Size of the reference files a run reads (what its parsing and linking scale with)."""
    return sum(p.stat().st_size for to_read, _ in _plans(raw, as_of) for p in to_read if p.is_file())


# an institution's row that institutions() takes (after the 名簿 rows before the code list's): the newest list,
# then the first file and row in it
FIRST_ROW = (["as_of", "source_file", "source_row"], [True, False, False])
# what the per-prefecture work reads of the 名簿 rows: the institution columns (institutions()) and the symbol
# (status.institutions_with_status)
_LINKING_COLUMNS = ["inst_code", "pref_code", "tensuhyo", "name", "address", "postcode", "beds", "city_code", "as_of",
                    "source_file", "source_sheet", "source_row", "symbol"]


def _for_linking(notes: pl.DataFrame) -> pl.DataFrame:
    """The 名簿 rows a prefecture's linking and report checks depend on, out of its one-per-notification rows
    (Tokyo: 137 k rows, sent to a worker process): each institution's first row, as institutions() picks it,
    and every 支援病/支援診/在後病/在医総管 row, as the status rule reads them. Same results, a tenth of the rows."""
    if notes.height == 0 or not set(_LINKING_COLUMNS) <= set(notes.columns):
        return notes
    notes = notes.select(_LINKING_COLUMNS)
    first = (notes.sort(FIRST_ROW[0], descending=FIRST_ROW[1], nulls_last=True)
             .unique("inst_code", keep="first", maintain_order=True))
    home_care = notes.filter(status_symbol())
    return pl.concat([first, home_care]).unique(["source_file", "source_sheet", "source_row"], keep="first",
                                                maintain_order=True)


def _parse_into_cache(*job) -> None:
    _read_source(*job)


def _read_source(kind: str, path: Path, cache: Path | None, params: str, prefs: set[str],
                 index: MunicipalityIndex, only: set[str] | None = None) -> ReadResult:
    """One reference file through the parse cache (module level: it runs in worker processes)."""
    rows = None if only is None else pl.col("pref_code").is_in(sorted(only))
    if kind == "facility_file":
        return cached_read(cache, path, kind, params, lambda: read_facility_file(path, prefs, index.current), rows)
    if kind == "meibo":
        return cached_read(cache, path, kind, params, lambda: read_meibo(path, prefs, index.pref_code_by_name), rows)
    return cached_read(cache, path, kind, params, lambda: read_code_list(path, prefs), rows)


INSTITUTION_COLUMNS = {"inst_code": pl.String, "pref_code": pl.String, "tensuhyo": pl.String, "name": pl.String,
                       "address": pl.String, "postcode": pl.String, "beds": pl.Int32,
                       "municipality_code": pl.String, "has_gaiji": pl.Boolean, "in_meibo": pl.Boolean,
                       "as_of": pl.Date, "source_file": pl.String, "source_row": pl.Int64}


def institutions(notifications: pl.DataFrame, index: MunicipalityIndex,
                 code_list: pl.DataFrame | None = None) -> tuple[pl.DataFrame, list[dict]]:
    """One row per 医療機関コード with its municipality: from its first row in the 名簿, else from the code list.

    When the same code appears in two files (two bureaus' lists, or two months), the latest as-of wins.
    """
    found: list[dict] = []
    base = notifications.select("inst_code", "pref_code", "tensuhyo", "name", "address", "postcode", "beds",
                                "city_code", "as_of", "source_file", "source_sheet", "source_row") \
        .with_columns(pl.lit(True).alias("in_meibo")) if notifications.height else None
    if code_list is not None and code_list.height:
        extra = code_list.with_columns(pl.lit("1").alias("tensuhyo"), pl.lit(None, pl.Int32).alias("beds"),
                                       pl.lit(None, pl.String).alias("city_code"),
                                       pl.lit(None, pl.String).alias("source_sheet"),
                                       pl.lit(False).alias("in_meibo"))
        if base is not None:
            extra = extra.filter(~pl.col("inst_code").is_in(base["inst_code"].implode()))
        base = pl.concat([base, extra.select(base.columns)]) if base is not None else extra
    if base is None or base.height == 0:
        return pl.DataFrame(schema=INSTITUTION_COLUMNS), found
    first = (base.sort(["in_meibo", *FIRST_ROW[0]], descending=[True, *FIRST_ROW[1]], nulls_last=True)
             .unique("inst_code", keep="first", maintain_order=True))
    # the municipality from the 名簿's own 市町村コード where it gives one (once per distinct code), else from
    # the address; 外字 found column-wise. Row by row only for the addresses and the findings.
    def from_code(pref_city: str) -> str | None:
        pref, city = pref_city.split("|")
        return index.current(muni_code6(pref + city.zfill(3)[-3:]))

    first = first.with_columns(
        municipality_code=pl.when(pl.col("city_code").str.contains(r"^[0-9]+$"))
        .then(pl.concat_str("pref_code", "city_code", separator="|")).pipe(per_value, from_code),
        has_gaiji=pl.col("name").str.contains(text.PRIVATE_USE_CLASS).fill_null(False))
    munis = first["municipality_code"].to_list()
    for i, (pref, address) in enumerate(first.select("pref_code", "address").iter_rows()):
        if munis[i] is None:
            munis[i] = index.resolve(pref, address)[0]
    first = first.with_columns(pl.Series("municipality_code", munis, dtype=pl.String))
    for r in first.filter(pl.col("municipality_code").is_null() | pl.col("has_gaiji")).iter_rows(named=True):
        if r["municipality_code"] is None:
            found.append(finding(r["source_file"], r["source_sheet"], r["source_row"], "医療機関所在地（住所）",
                                 r["address"], "municipality_from_address",
                                 "住所から市区町村を特定できません。この医療機関は圏域に配置されず、紐付け候補も県内全体から探します。",
                                 severity="warning"))
        if r["has_gaiji"]:
            found.append(finding(r["source_file"], r["source_sheet"], r["source_row"], "医療機関名称", r["name"],
                                 "gaiji", "名称に外字（私用領域の文字）が含まれます。表示できない環境があります。名称はそのまま保持します。",
                                 severity="warning"))
    return first.select(list(INSTITUTION_COLUMNS)).cast(INSTITUTION_COLUMNS), found
