"""Publication to each partner bank: its own products' rows only, authorised firms only, personal data
masked, with the model, catalogue and product-catalogue versions and the data snapshot on every row.

In DuckDB each bank has a schema (`bank_b01`, ...) whose `eligibility` table is replaced inside one
transaction for all banks: a reader sees yesterday's tables or today's, never a mix or a partial
one. On disk each bank has a folder `<out>/<bank_id>/<date>/` with `changes.parquet`, `changes.csv`
and `manifest.json` (the pairs inserted, updated and withdrawn since the bank's previous publication,
with the reason of each withdrawal: `lending.delta`), `early_warnings.csv` (the bank's borrowers' open
warnings and those closed that day; also the table `early_warnings`) and, on the bank's full-table
days (weekly unless the catalogue says otherwise, `lending.delta.full_table_reason`), the full table:
`eligibility.parquet`, `eligibility.csv` (UTF-8 with BOM, so Excel shows the Chinese text) and
`eligibility.xlsx` (the eligible rows and the near misses, for people); the folder is written aside and renamed into place
(a date published again: exchanged with its old folder in one step), then `LATEST` is replaced.
Publication never goes backwards: a date older than a bank's `LATEST` (a re-run or a backfill) writes
its own folder (first keeping, in the programme's own copies beside `publish/` and not in the bank's folder,
the full table of the next night made against the folder it replaces: `lending.delta.keep_later_nights_whole`), but neither moves `LATEST` nor replaces the bank's tables, which stay on the newest date
published (recorded in `decisions.published_tables`): an older night would bring back firms that have
since withdrawn their consent. Every
row comes from the one authorisation gate (`lending.gate`); the CSVs' text is neutralised for
spreadsheets (`valuecredit.spreadsheet`). The tables are replaced and the files written inside one transaction, which
commits only when every bank's folder is complete: a failure anywhere leaves the previous publication
as it was (the programme's kept copies aside).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import zipfile
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from rustpy_xlsxwriter import FastExcel, Format

from data_contracts.personal import LEGAL_REP_NAME, log_read, masked_legal_rep_sql
from lending.delta import (
    REASONS,
    Stored,
    full_table_of,
    full_table_reason,
    keep_later_nights_whole,
    kept_root,
    tidy_kept,
    write_changes,
)
from lending.eligibility import CONDITIONS, MATCH_DEGREE, PAIR_VALUES
from lending.gate import authorised_firms_sql, bank_facing_firms_sql
from lending.products import ProductCatalogue
from scoring.sql import PointInTime
from valuecredit.schema import ensure
from valuecredit.spreadsheet import excel_csv, neutral
from valuecredit.sqltext import SQL, lit, q
from valuecredit.store import transaction

# what each machine column of a bank's files means, for the people who read them: (column, 中文名, unit,
# meaning); written beside the files as data_dictionary.csv and into the workbook (header notes and a sheet)
DICTIONARY = (
    ("uscc", "统一社会信用代码", "", "企业的统一社会信用代码 (GB 32100) / the firm's unified social credit code"),
    ("firm_name", "企业名称", "", "登记名称 / registered name"),
    ("legal_rep", "法定代表人(脱敏)", "", "姓名脱敏,仅留首末字 / legal representative, masked"),
    ("district_code", "所在区县代码", "GB/T 2260", "行政区划代码,如 500112 渝北区 / administrative division code"),
    ("industry", "行业门类", "GB/T 4754", "国民经济行业分类门类字母,如 C 制造业 / industry section letter"),
    ("product_id", "产品代码", "", "合作银行产品代码 / the bank's product id"),
    ("product_name", "产品名称", "", "产品名称 / product name"),
    ("eligible", "是否可贷", "true/false", "评价日是否满足该产品全部条件 / meets every condition of the product"),
    ("limit_fen", "预授信额度", "分 (fen, 1/100 元)", "可贷时的测算额度,不可贷为 0 / computed limit, 0 when not eligible"),
    ("rate_bp", "参考年利率", "基点 (bp, 1/100 %)", "按违约概率定价的年利率 / indicative annual rate priced on the PD"),
    ("term_months", "期限", "月 (months)", "产品期限 / the product's term"),
    ("match_degree", "匹配度", "0-1", "已满足条件的比例 / share of the product's conditions met"),
    ("gates", "准入门槛", "", "未通过的门槛: negative_list 负面清单, no_authorisation 未授权, not_sme 非中小企业, "
                         "outside_region 非本市注册 / failed gates"),
    ("gate_reasons", "门槛及触发规则", "", "每个未通过的门槛及触发它的规则编号和名称, 如 negative_list: N01 失信被执行人 / "
                                       "each failed gate with the rules that closed it"),
    ("shortfalls", "差距", "", "未满足的条件、企业的数值及要求 / unmet conditions with the firm's value and the requirement"),
    ("pd", "违约概率(12个月)", "0-1, 6 位小数 (6 decimals)", "模型估计的12个月违约概率 / 12-month probability of default"),
    ("grade", "信用等级", "AAA-C", "4+19+1 商业价值评价等级 / grade of the commercial-value score"),
    ("score", "商业价值总分", "0-1000", "4+19+1 商业价值评价总分 / commercial-value score"),
    ("as_of", "评价日", "日期 (date)", "数据所属的业务日期 / business date"),
    ("model_version", "模型版本", "", "决定违约概率的模型版本 / the PD model's version"),
    ("catalogue_version", "评价体系版本", "", "4+19+1 评价体系版本 / scoring catalogue version"),
    ("products_version", "产品目录版本", "", "产品目录版本 / product catalogue version"),
    ("snapshot_id", "数据快照", "", "所用数据的快照标识 / the data snapshot used"),
    ("change", "变动类型", "", "insert 新增, update 变更, withdraw 撤回 (changes.csv: 相对上一次发布 / since the previous "
                           "publication)"),
    ("reason", "撤回或失去资格原因", "", ", ".join(f"{k} {v.split(' / ')[0]}" for k, v in REASONS.items()) + " (changes.csv)"),
    ("warning_id", "预警编号", "", "预警的标识 / warning id (early_warnings.csv)"),
    ("kind", "预警类型", "", "revenue_drop 营收下滑, headcount_drop 参保人数下滑, power_drop 用电下滑, new_arrears 新增社保欠缴, "
                         "new_negative_hit 新增负面清单命中, pd_jump 违约概率跃升 / warning kind"),
    ("severity", "严重程度", "", "high 高, medium 中 / severity"),
    ("evidence", "依据", "", "触发预警的数据 / the data that raised it"),
    ("status", "状态", "", "open 未关闭, closed 已关闭 / status"),
    ("raised_on", "发出日期", "日期 (date)", "预警发出的业务日期 / business date raised"),
    ("updated_on", "更新日期", "日期 (date)", "最近一次更新的业务日期 / business date last updated"),
    ("closed_on", "关闭日期", "日期 (date)", "关闭的业务日期 / business date closed"),
)
PD_DECIMALS = 6  # a PD in the files: more digits are noise to a reader and differ between platforms' printing

# an older date's tables, only long enough to write its folder: the connection's own temporary ones (DuckDB
# fails a commit that drops a table created and replaced in the same transaction)
BACKFILL_SCHEMA = "temp"


class PublishError(RuntimeError):
    """Publication could not be completed; the previous one stands."""


def bank_schema(bank_id: str) -> str:
    if not bank_id.replace("_", "").isalnum():
        raise PublishError(f"bank id {bank_id!r} cannot name a schema")
    return f"bank_{bank_id.lower()}"


def published_rows_sql(as_of: date, authorised: SQL | None = None) -> str:
    """Every bank's rows for the date: the firms of the authorisation gate only (`authorised`: a
    relation of `lending.gate.authorised_firms_sql`, computed here when not given), masked, the
    shortfalls as text.

    Read from the stored firms, products and pairs rather than the `decisions.eligibility` view: the
    pairs are cut to the authorised firms before anything is joined to them (at 70,000,000 pairs a
    night that is 5x faster), and each firm's values and each product's requirements are spelled
    once, not once per pair."""
    d = f"DATE {lit(as_of.isoformat())}"
    reg = PointInTime("", as_of).rows("registry")
    firm_values = ", ".join(f"{value} AS v_{name}" for name, _, value, _ in CONDITIONS if name not in PAIR_VALUES)
    needs = ", ".join(f"'{name}: ' AS h_{name}, ' (needs ' || {required} || ')' AS r_{name}" for name, _, _, required in CONDITIONS)
    # a pair's value (the renewal's: the firm's loans from this bank alone) is spelled where firm and product meet
    value = ({name: expr if name in PAIR_VALUES else f"v_{name}" for name, _, expr, _ in CONDITIONS}
             | {"limit": "coalesce(CAST(computed_limit_fen // 100 AS VARCHAR), 'no data')"})
    text = ", ".join(f"CASE WHEN unmet & {1 << i} <> 0 THEN h_{name} || {value[name]} || r_{name} END"
                     for i, (name, *_) in enumerate(CONDITIONS))
    return f"""
    WITH f AS (SELECT *, {firm_values} FROM decisions.eligibility_firms
               WHERE as_of = {d} AND authorised  -- as eligibility decided it, and as the gate says now
                 AND uscc IN (SELECT uscc FROM {authorised or f"({authorised_firms_sql(as_of)})"})),
         p AS (SELECT *, {needs} FROM decisions.eligibility_products WHERE as_of = {d}),
         e AS (SELECT * FROM decisions.eligibility_pairs WHERE as_of = {d} AND uscc IN (SELECT uscc FROM f))
    SELECT p.bank_id, e.uscc, r.name AS firm_name, r.legal_rep,
           r.district_code, r.industry, e.product_id, p.product_name, e.eligible,
           CASE WHEN e.eligible THEN coalesce(e.computed_limit_fen, 0) ELSE 0 END AS limit_fen, e.rate_bp, p.term_months,
           {MATCH_DEGREE.format(unmet="e.unmet", n="p.n_conditions", gates="f.gates")} AS match_degree,
           array_to_string(f.gates, ', ') AS gates, f.gate_reasons,
           concat_ws('; ', {text}) AS shortfalls,
           round(f.pd, {PD_DECIMALS}) AS pd, f.grade, f.total AS score, e.as_of, f.model_version, f.catalogue_version, f.products_version, f.snapshot_id
    FROM e JOIN f USING (uscc, as_of) JOIN p USING (as_of, product_id)
    LEFT JOIN (SELECT uscc, any_value(name) AS name, {masked_legal_rep_sql("any_value")} AS legal_rep,
                      any_value(district_code) AS district_code, any_value(industry) AS industry FROM {reg} GROUP BY uscc) r
        USING (uscc)"""


def bank_rows_sql(as_of: date, bank_id: str, published: SQL | None = None) -> str:
    """The bank's rows for the date: its products only, from `published` (the relation of
    `published_rows_sql`, computed here when not given)."""
    source = published or f"({published_rows_sql(as_of)})"
    return f"SELECT * EXCLUDE (bank_id) FROM {source} WHERE bank_id = {lit(bank_id)} ORDER BY uscc, product_id"


def bank_warnings_sql(as_of: date, bank_id: str, authorised: SQL | None = None) -> str:
    """The bank's early warnings as they stand on the date: open ones, and those closed that day; on
    the firms of the authorisation gate only (a borrower's data goes to its bank under the firm's
    authorisation, like its eligibility)."""
    d = f"DATE {lit(as_of.isoformat())}"
    return f"""
    SELECT warning_id, uscc, kind, severity, evidence, status, raised_on, updated_on, closed_on
    FROM decisions.early_warnings
    WHERE bank_id = {lit(bank_id)} AND raised_on <= {d} AND (status = 'open' OR closed_on = {d})
      AND uscc IN (SELECT uscc FROM {authorised or f"({authorised_firms_sql(as_of)})"})
    ORDER BY uscc, kind, raised_on, status, warning_id"""


@dataclass
class PublishSummary:
    as_of: date
    banks: int
    rows: dict[str, int]
    folder: str


def _write_files(con: duckdb.DuckDBPyConnection, schema: str, folder: Path, as_of: date, books: Executor,
                 full: bool) -> Future | None:
    """The bank's tables, as just created in `schema`, to files beside the change files: the early
    warnings and the data dictionary every night; with the full table (`full`) its CSV (DuckDB wrote
    the Parquet already) and the workbook of what people read: the eligible rows and the firms one
    condition short of one of the bank's products and eligible for none of them (the bank's prospects);
    without it the Parquet goes (it was written for its SHA-256, which the manifest keeps).
    The workbook is written by `books` while DuckDB goes on with the
    next bank (the Rust writer and zlib leave Python's lock); the caller waits for it."""
    excel_csv(con, f"SELECT * FROM {q(schema)}.early_warnings", folder / "early_warnings.csv")
    _dictionary(folder / "data_dictionary.csv")
    if not full:
        (folder / "eligibility.parquet").unlink()
        return None
    excel_csv(con, f"SELECT * FROM {q(schema)}.eligibility", folder / "eligibility.csv")
    sheets = {"eligible 可贷": "eligible",
              "near misses 差一步": "NOT eligible AND gates = '' AND shortfalls <> '' AND NOT contains(shortfalls, ';') "
                                    f"AND uscc NOT IN (SELECT uscc FROM {q(schema)}.eligibility WHERE eligible)"}
    # in the table's order: a filter with a subquery (the near misses) may return rows in any order
    frames = {name: con.execute(f"SELECT * FROM {q(schema)}.eligibility WHERE {where} ORDER BY uscc, product_id").df()
              for name, where in sheets.items()}
    return books.submit(_workbook, folder / "eligibility.xlsx", frames, as_of)


def _dictionary(path: Path) -> None:
    """The data dictionary beside a bank's files: UTF-8 with a byte-order mark, like the CSVs, and the
    same bytes every night."""
    rows = [("column", "中文名", "unit", "meaning"), *DICTIONARY]
    text = "".join(",".join('"' + str(neutral(c)).replace('"', '""') + '"' for c in row) + "\n" for row in rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


EXCEL_CELL_CHARS = 32_767  # Excel's limit: one longer text refused every bank's workbook of the night


def _within_excel(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells cut to what a workbook cell holds, marked with '…' (the CSV and Parquet keep them whole)."""
    long = {c for c in frame.columns if (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype))
            and (frame[c].astype("string").str.len().fillna(0) > EXCEL_CELL_CHARS).any()}
    if not long:
        return frame
    frame = frame.copy()
    for c in long:
        text = frame[c].astype("string")
        frame[c] = text.where(text.str.len() <= EXCEL_CELL_CHARS, text.str.slice(0, EXCEL_CELL_CHARS - 1) + "…")
    return frame


def _workbook(path: Path, sheets: dict[str, pd.DataFrame], as_of: date) -> None:
    """Through rust_xlsxwriter (XlsxWriter's author's Rust port: 8x faster than XlsxWriter at 200,000
    rows a bank); it stamps the workbook with the time of writing, which is replaced by the business
    date so that the same night gives the same bytes."""
    book = FastExcel(str(path) + ".tmp")
    notes = {c: f"{zh} ({unit})" if unit else zh for c, zh, unit, _ in DICTIONARY}
    day = Format().set_num_format("yyyy-mm-dd")
    for name, frame in sheets.items():
        frame = frame.assign(**{c: pd.to_datetime(frame[c]) for c in frame.columns if c == "as_of" or c.endswith("_on")})
        book.sheet(name, _within_excel(frame), notes={c: notes[c] for c in frame.columns if c in notes},
                   column_formats={c: day for c in frame.columns if c == "as_of" or c.endswith("_on")})
    book.sheet("字段说明 columns", pd.DataFrame(list(DICTIONARY), columns=["column", "中文名", "unit", "meaning"]))
    book.save()
    stamp = f"{as_of.isoformat()}T00:00:00Z".encode()
    with zipfile.ZipFile(str(path) + ".tmp") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp, data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    os.remove(str(path) + ".tmp")


def publish(con: duckdb.DuckDBPyConnection, as_of: date, products: ProductCatalogue, out: Path) -> PublishSummary:
    """Publish the date's eligibility to every bank: inside one transaction the banks' tables are
    replaced and written to folders aside; the transaction commits only once every folder is
    complete, and the folders are then renamed into place."""
    out = Path(out)
    banks = sorted(products.banks)
    ensure(con, "decisions.early_warnings", "decisions.published_tables",  # never warned: an empty list
           "decisions.published_table_sha256")
    for bank in banks:  # what an earlier publication left if it crashed
        _tidy(out / bank)
    kept = kept_root(out)  # kept copies no longer needed, a bank no longer in the catalogue's too
    for bank in sorted({*banks, *(p.name for p in kept.iterdir() if p.is_dir())} if kept.is_dir() else banks):
        tidy_kept(out / bank)
    staged: dict[str, Path] = {}
    rows: dict[str, int] = {}
    try:
        with transaction(con):
            # the authorisation gate once: every table and file below is cut to it; a date published
            # again after newer ones also keeps out every firm that has withdrawn since
            con.execute(f"CREATE OR REPLACE TEMP TABLE _authorised AS {bank_facing_firms_sql(con, as_of)}")
            # the masked rows of every bank once, then each bank's share of them
            # (sorted by bank, so that each bank's share is read from its own row groups)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _published AS {published_rows_sql(as_of, '_authorised')} "
                        "ORDER BY bank_id, uscc, product_id")
            log_read(con, "publication", "registry", as_of, masked=True, columns=(LEGAL_REP_NAME,),
                     records=con.execute("SELECT count(DISTINCT uscc) FROM _published").fetchone()[0])
            with ThreadPoolExecutor(max_workers=1) as books:  # leaving it waits for the workbook being written
                book = None
                for bank in banks:
                    schema, kind = bank_schema(bank), "TABLE"
                    stored_day = _tables_date(con, bank, schema)
                    backfill = stored_day > as_of
                    stored = None
                    if backfill:  # the bank's tables stay on their newer date
                        schema, kind = BACKFILL_SCHEMA, "TEMP TABLE"
                    else:
                        # what the bank was given last, where its folder has no full table to compare with
                        if _has_table(con, schema) and full_table_of(out / bank, stored_day) is None:
                            con.execute(f"CREATE OR REPLACE TEMP TABLE _stored AS SELECT * FROM {q(schema)}.eligibility")
                            sha = con.execute("SELECT table_sha256 FROM decisions.published_table_sha256 "
                                              "WHERE bank_id = ? AND as_of = ?", [bank, stored_day]).fetchone()
                            stored = Stored("_stored", stored_day, sha[0] if sha else None)
                        con.execute("INSERT OR REPLACE INTO decisions.published_tables VALUES (?, ?)", [bank, as_of])
                        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
                    con.execute(f"CREATE OR REPLACE {kind} {q(schema)}.eligibility AS {bank_rows_sql(as_of, bank, '_published')}")
                    con.execute(f"CREATE OR REPLACE {kind} {q(schema)}.early_warnings AS "
                                f"{bank_warnings_sql(as_of, bank, '_authorised')}")
                    rows[bank] = con.execute(f"SELECT count(*) FROM {q(schema)}.eligibility").fetchone()[0]
                    tmp = out / bank / f".{as_of.isoformat()}.partial"
                    shutil.rmtree(tmp, ignore_errors=True)
                    staged[bank] = tmp
                    tmp.mkdir(parents=True)
                    # the full table every night, for its SHA-256 (what a bank's rebuild is checked against)
                    con.execute(f"COPY {q(schema)}.eligibility TO {lit(str(tmp / 'eligibility.parquet'))} (FORMAT parquet)")
                    if (out / bank / as_of.isoformat()).exists():  # published again: later nights may rest on it
                        keep_later_nights_whole(out / bank, as_of)
                    full_reason = full_table_reason(out / bank, as_of, products.full_table_days[bank], backfill)
                    manifest = write_changes(con, f"{q(schema)}.eligibility", tmp, out / bank, as_of, bank, "_authorised",
                                             backfill, full_reason, stored)
                    con.execute("DROP TABLE IF EXISTS _stored")
                    if not backfill:
                        con.execute("INSERT OR REPLACE INTO decisions.published_table_sha256 VALUES (?, ?, ?)",
                                    [bank, as_of, manifest["table_sha256"]])
                    previous, book = book, _write_files(con, schema, tmp, as_of, books, manifest["full_table"] is not None)
                    if previous is not None:  # one workbook in hand at a time: memory stays bounded
                        previous.result()
                if book is not None:
                    book.result()
            for table in ("eligibility", "early_warnings"):
                con.execute(f"DROP TABLE IF EXISTS {q(BACKFILL_SCHEMA)}.{q(table)}")
            con.execute("DROP TABLE _published")
            con.execute("DROP TABLE _authorised")
    except BaseException:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for bank, tmp in staged.items():
        _put_in_place(out / bank, tmp, as_of)
    return PublishSummary(as_of, len(banks), rows, str(out))


def _has_table(con: duckdb.DuckDBPyConnection, schema: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'eligibility'",
                       [schema]).fetchone()[0] > 0


def _tables_date(con: duckdb.DuckDBPyConnection, bank: str, schema: str) -> date:
    """The date the bank's tables hold: as recorded, or (a store published before the record was
    kept) the newest date in its eligibility table; `date.min` when it has none."""
    recorded = con.execute("SELECT as_of FROM decisions.published_tables WHERE bank_id = ?", [bank]).fetchone()
    found = [recorded[0]] if recorded else []
    if _has_table(con, schema):
        found += [d for (d,) in con.execute(f"SELECT max(as_of) FROM {q(schema)}.eligibility").fetchall() if d]
    return max(found, default=date.min)


def _latest(bank_dir: Path) -> date | None:
    path = bank_dir / "LATEST"
    return date.fromisoformat(path.read_text(encoding="utf-8").strip()) if path.exists() else None


def _put_in_place(bank_dir: Path, tmp: Path, as_of: date) -> None:
    """The complete folder `tmp` becomes the date's folder, then LATEST names it unless it names a
    newer date (an older date re-published never moves LATEST backwards). At no instant does
    LATEST name a missing folder: a new date's folder is in place before LATEST moves to it, and a
    date published again is exchanged with its old folder in one step, the old one deleted after.
    A crash at any step leaves LATEST on a complete folder, and `_tidy` clears the rest next time."""
    final = bank_dir / as_of.isoformat()
    if final.exists():
        try:
            _exchange(tmp, final)  # `tmp` now holds the old folder
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            # no atomic exchange here: the old folder aside, then the new one in (a crash between
            # the two leaves the date's folder missing until `_tidy` puts the old one back)
            tmp, old = bank_dir / f".{as_of.isoformat()}.replaced", tmp
            os.replace(final, tmp)
            os.replace(old, final)
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, final)
    if (current := _latest(bank_dir)) is not None and current > as_of:
        return
    latest = bank_dir / ".LATEST.tmp"
    latest.write_text(as_of.isoformat() + "\n", encoding="utf-8")
    os.replace(latest, bank_dir / "LATEST")


_LIBC = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders atomically (Linux `renameat2` with RENAME_EXCHANGE, since 3.15 on ext4, xfs,
    btrfs and tmpfs); OSError EINVAL or ENOSYS where the system or its file system cannot."""
    renameat2 = getattr(_LIBC, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _tidy(bank_dir: Path) -> None:
    """What a crashed publication left in a bank's folder: half-written folders and LATEST files go;
    a folder set aside while its date was published again (where folders cannot be exchanged) goes
    back if its date's folder is missing, else goes too."""
    if not bank_dir.is_dir():
        return
    for path in sorted(bank_dir.iterdir()):
        if path.name == ".LATEST.tmp":
            path.unlink()
        elif path.name.startswith(".") and path.name.endswith(".partial"):
            shutil.rmtree(path)
        elif path.name.startswith(".") and path.name.endswith(".replaced"):
            final = bank_dir / path.name[1:-len(".replaced")]
            if final.exists():
                shutil.rmtree(path)
            else:
                os.replace(path, final)
