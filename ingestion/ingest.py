"""Ingestion: landing files -> raw -> staging, enforcing each source's data contract.

For a business date D, a source ingests every file the manifest says arrived by D that is not
already loaded with the same content hash. The landing zone is a trust boundary: each file is checked
whole first (a relative path without wildcards that stays inside the landing zone, symlinks included; the contract's
format; present, same bytes, sha256 and data rows as the manifest; declared encoding; header matching
the contract; not empty unless the contract allows it); a file failing any of these is rejected with
its reason and nothing of it is loaded. No name or path from the manifest ever becomes SQL text. Rows are then checked one by one in DuckDB
SQL; bad rows go to `quarantine.rows` with the rule and the row as delivered. Good rows go to
`raw.<source>`, and `staging.<source>` keeps the latest delivered version of every key.

Everything a partition does for a source happens in one transaction, and re-running a partition
first undoes what it did, so a day can be re-run any number of times with the same result.
"""

from __future__ import annotations

import csv
import hashlib
import io
import posixpath
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from data_contracts.contracts import Contract, contract_for
from data_contracts.expectations import SuiteResult, validate_frame
from data_contracts.personal import PERSONAL_COLUMNS, log_read
from data_contracts.rules import checked_sql, detail_sql, mark_duplicates, needs_registry, repeated_keys
from valuecredit.checks import CheckOutcome
from valuecredit.sqltext import lit, q
from valuecredit.store import transaction

# More bad rows than this, in a file of at least MIN_ROWS_FOR_RATE rows or across the partition's
# files, fails the source's contract check: one bad row in a ten-row file is not a broken feed.
MAX_QUARANTINE_RATE = 0.05
MIN_ROWS_FOR_RATE = 200
GX_SAMPLE_ROWS = 20_000


class LandingError(RuntimeError):
    """The landing zone itself is unusable (no manifest, unreadable manifest)."""


class FileRejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class FileOutcome:
    file: str
    status: str  # loaded | rejected
    reason: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    sha256: str = ""
    delivered_on: date | None = None
    cells_stripped: int = 0  # cells whose control characters the contract strips


@dataclass
class SourceOutcome:
    source: str
    partition_date: date
    files: list[FileOutcome] = field(default_factory=list)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    staged_rows: int = 0

    @property
    def rejected(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "rejected"]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)


def load_manifest(landing: Path) -> pd.DataFrame:
    path = Path(landing) / "manifest.csv"
    if not path.exists():
        raise LandingError(f"{path}: no manifest; the landing zone must list every delivered file")
    try:
        m = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise LandingError(f"{path}: unreadable manifest ({exc})") from None
    need = {"file", "source", "period", "delivered_on", "format", "encoding", "rows", "bytes", "sha256"}
    if missing := need - set(m.columns):
        raise LandingError(f"{path}: manifest lacks column(s) {', '.join(sorted(missing))}")
    m["delivered_on"] = pd.to_datetime(m["delivered_on"], errors="coerce").dt.date
    if m["delivered_on"].isna().any():
        bad = m.index[m["delivered_on"].isna()][0] + 2
        raise LandingError(f"{path}: line {bad}: delivered_on is not a date")
    # a line whose counts are not whole numbers rejects its own file (`manifest_invalid`), not the night
    for column in ("rows", "bytes"):
        text = m[column].str.strip()
        numbers = pd.to_numeric(text.where(text.str.fullmatch(r"\d{1,15}")), errors="coerce")
        m[column] = numbers.fillna(-1).astype("int64")
    return m


def _check_header(names: list[str], contract: Contract) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FileRejected("header_duplicate", f"column(s) {', '.join(dupes)} appear more than once")
    missing = [c for c in contract.column_names if c not in names]
    extra = [n for n in names if n not in contract.column_names]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise FileRejected("column_mismatch", "; ".join(parts) + f" (contract: {', '.join(contract.column_names)})")


# a Chinese character in UTF-8: three bytes, E0-EF then two continuation bytes
_UTF8_CJK = re.compile(rb"[\xe0-\xef][\x80-\xbf]{2}")


def _decode(data: bytes, encoding: str) -> str:
    if encoding == "gbk":
        try:
            data.decode("utf-8")
            if not data.isascii():  # Chinese text that is valid UTF-8 is almost never GBK
                raise FileRejected("wrong_encoding", "declared GBK but the bytes are UTF-8")
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("gbk")
        except UnicodeDecodeError as exc:
            raise FileRejected("wrong_encoding", f"not valid GBK at byte {exc.start}") from None
        # a GBK file with UTF-8 lines pasted in decodes, as mojibake: a line holding UTF-8 Chinese
        # that is valid UTF-8 as a whole is one of them (the regex finds candidates at C speed)
        checked_to = -1
        for m in _UTF8_CJK.finditer(data):
            if m.start() < checked_to:
                continue
            start, end = data.rfind(b"\n", 0, m.start()) + 1, data.find(b"\n", m.end())
            checked_to = len(data) if end < 0 else end
            try:
                data[start:checked_to].decode("utf-8")
            except UnicodeDecodeError:
                continue
            line = data.count(b"\n", 0, start) + 1
            raise FileRejected("wrong_encoding", f"declared GBK but line {line} is UTF-8 (mixed encodings)")
        return text
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected("wrong_encoding", f"not valid UTF-8 at byte {exc.start} (declared {encoding})") from None


def landing_path(landing: Path, file: str) -> Path:
    """The file a manifest entry names: a relative, normalised path whose target, symlinks
    followed, lies inside the landing zone. Anything else is rejected, never opened."""
    if not file or "\x00" in file or "\\" in file or posixpath.isabs(file) or Path(file).is_absolute():
        raise FileRejected("path_outside_landing", f"{file!r} is not a relative path inside the landing zone")
    if posixpath.normpath(file) != file or ".." in file.split("/"):
        raise FileRejected("path_outside_landing", f"{file!r} is not a normalised path inside the landing zone")
    if any(c in file for c in "*?[]{}"):  # DuckDB reads a path as a glob: it would read other files
        raise FileRejected("path_wildcard", f"{file!r} holds a wildcard, which would read other files than it names")
    root = Path(landing).resolve()
    if any(c in str(root) for c in "*?[]{}"):  # DuckDB globs the whole path it is given, folders included
        raise FileRejected("path_wildcard", f"the landing zone's own path {root} holds a wildcard character, "
                                            "which would read other folders' files: move it")
    path = root / file  # absolute: DuckDB never reads `file:...` or `~/...` as anything but a name in the zone
    if not path.resolve().is_relative_to(root):
        raise FileRejected("path_outside_landing", f"{file!r} resolves to {path.resolve()}, outside {root}")
    return path


def _check_file(probe: duckdb.DuckDBPyConnection, path: Path, entry: pd.Series, contract: Contract,
                tmpdir: Path) -> tuple[Path, list[str]]:
    """Check a file as a whole; return the path DuckDB should read (UTF-8 for CSV) and the file's
    columns in the file's order (a CSV's columns are read by name, not by position).

    `probe` is a cursor of its own: a file DuckDB cannot parse fails there, not inside the
    ingestion transaction (which a failed statement would abort)."""
    if entry["format"] != contract.file_format:
        raise FileRejected("format_mismatch", f"the manifest says {entry['format']!r}, the contract of "
                                              f"{contract.source} says {contract.file_format!r}")
    if entry["rows"] < 0 or entry["bytes"] < 0:
        raise FileRejected("manifest_invalid", "the manifest's rows or bytes for this file are not whole numbers")
    if not path.exists():
        raise FileRejected("file_missing", "listed in the manifest but not in the landing zone")
    if not path.is_file():
        raise FileRejected("not_a_file", "listed in the manifest, but a folder, a device or a pipe, not a file")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != entry["sha256"] or len(data) != entry["bytes"]:
        raise FileRejected("file_truncated" if len(data) < entry["bytes"] else "file_altered",
                           f"{len(data)} bytes with sha256 {sha[:12]}, manifest says {entry['bytes']} bytes with "
                           f"sha256 {entry['sha256'][:12]}: truncated or altered in transit")
    if entry["format"] == "parquet":
        try:
            described = probe.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                                      [str(path)]).fetchall()
            rows = probe.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)",
                                 [str(path)]).fetchone()[0]
        except duckdb.Error as exc:
            raise FileRejected("unreadable", f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        names = [r[0] for r in described]
        _check_header(names, contract)
        nested = [f"{n} {t}" for n, t, *_ in described if any(k in t for k in ("[]", "STRUCT", "MAP", "UNION"))]
        if nested:  # a list or a record where the contract has one value: no cast can read it
            raise FileRejected("type_mismatch", f"column(s) {', '.join(nested)} hold nested values, not one value a cell")
        _check_rows(rows, entry, contract)
        return path, names
    text = _decode(data, entry["encoding"])
    del data
    if not text or text.isspace():  # (no stripped copy of a large file)
        raise FileRejected("file_empty", "the file holds no header and no rows")
    newline = text.find("\n")
    first = (text if newline < 0 else text[:newline]).lstrip("\ufeff")
    header = [h.strip() for h in next(csv.reader(io.StringIO(first)), [])]
    if not header or header == [""]:
        raise FileRejected("header_missing", "the first line is empty: a CSV starts with its header")
    _check_header(header, contract)
    target = path
    if entry["encoding"] != "utf-8" or text.startswith("\ufeff"):
        target = tmpdir / (path.name + ".utf8.csv")
        target.write_text(text.lstrip("\ufeff"), encoding="utf-8")
    try:
        rows = probe.execute(f"SELECT count(*) FROM {READ_CSV}", _read_csv_params(target, header)).fetchone()[0]
    except duckdb.Error as exc:
        raise FileRejected("unparseable", str(exc).splitlines()[0][:300]) from None
    _check_rows(rows, entry, contract)
    return target, header


def _check_rows(rows: int, entry: pd.Series, contract: Contract) -> None:
    """The data rows (header excluded) the file holds against the manifest's count and the contract."""
    if rows != entry["rows"]:
        raise FileRejected("rows_mismatch", f"{rows} data rows, the manifest says {entry['rows']}")
    if rows == 0 and not contract.allow_empty:
        raise FileRejected("file_empty", f"no data rows, and the contract of {contract.source} needs some")


# the path and the column struct are bound parameters (_read_csv_params): no file name becomes SQL text
# (hive partitioning off: a folder named `uscc=X/` must not rewrite a column's values)
READ_CSV = ("read_csv(?, header = true, columns = ?, delim = ',', quote = '\"', escape = '\"', "
            "strict_mode = true, null_padding = false, parallel = false, hive_partitioning = false)")


def _read_csv_params(path: Path, header: list[str]) -> list:
    """DuckDB applies `columns` by position: they are named in the file's own order, so that a file
    whose columns come in another order than the contract's is still read by name."""
    return [str(path), {c: "VARCHAR" for c in header}]


def _load_csv(con: duckdb.DuckDBPyConnection, f: int, path: Path, contract: Contract, header: list[str]) -> None:
    """Append a CSV's rows to `_batch_csv`, numbered from 1 in file order (header excluded)."""
    cols = ", ".join(q(c) for c in contract.column_names)
    con.execute(f"INSERT INTO _batch_csv SELECT ?, row_number() OVER (), {cols} FROM {READ_CSV}",
                [f, *_read_csv_params(path, header)])


CHUNK_FILES = 8  # files validated in one SQL pass: bounds memory at provincial scale


def ingest_source(con: duckdb.DuckDBPyConnection, landing: Path, source: str, business_date: date) -> SourceOutcome:
    """Ingest one source's files due by `business_date`, replacing whatever this date did before."""
    contract = contract_for(source)
    landing = Path(landing)
    manifest = load_manifest(landing)
    outcome = SourceOutcome(source, business_date)
    d = business_date.isoformat()
    with transaction(con):
        # undo this date's earlier work
        con.execute(f"DELETE FROM raw.{q(source)} WHERE _partition = ?", [d])
        con.execute(f"UPDATE raw.{q(source)} SET _superseded_on = NULL, _valid_to = NULL WHERE _superseded_on = ?", [d])
        con.execute("DELETE FROM quarantine.rows WHERE source = ? AND partition_date = ?", [source, d])
        con.execute("DELETE FROM meta.ingested_files WHERE source = ? AND partition_date = ?", [source, d])
        had_rows = con.execute(f"SELECT count(*) > 0 FROM raw.{q(source)}").fetchone()[0]
        loaded = set(con.execute("SELECT file, sha256 FROM meta.ingested_files WHERE source = ? AND status = 'loaded'",
                                 [source]).fetchall())
        due = manifest[(manifest["source"] == source) & (manifest["delivered_on"] <= business_date)]
        due = due.drop_duplicates(["file", "sha256"])  # the same file listed twice is one delivery
        due = [e for _, e in due.sort_values(["delivered_on", "file"]).iterrows() if (e["file"], e["sha256"]) not in loaded]
        probe = con.cursor()
        with tempfile.TemporaryDirectory(prefix="valuecredit-ingest-") as tmp:
            for start in range(0, len(due), CHUNK_FILES):
                outcome.files += _ingest_chunk(con, probe, landing, due[start:start + CHUNK_FILES], contract, business_date, Path(tmp))
        for f in outcome.files:
            con.execute("INSERT INTO meta.ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                source, f.file, f.sha256, f.delivered_on, d, f.status, f.reason, f.rows_read, f.rows_loaded,
                f.rows_quarantined])
        if source in PERSONAL_COLUMNS and (read := sum(f.rows_read for f in outcome.files)):
            log_read(con, "ingest", source, business_date, records=read, masked=False)
        _supersede(con, contract, d, had_rows)
    outcome.quarantined_by_rule = quarantined_by_rule(con, business_date, source)
    outcome.staged_rows = con.execute(f"SELECT count(*) FROM staging.{q(source)}").fetchone()[0]
    return outcome


def _ingest_chunk(con, probe, landing: Path, entries: list[pd.Series], contract: Contract, business_date: date,
                  tmpdir: Path) -> list[FileOutcome]:
    source = contract.source
    results: dict[int, FileOutcome] = {}
    accepted: list[tuple[int, pd.Series, Path, list[str]]] = []
    for f, entry in enumerate(entries):
        try:
            path = landing_path(landing, entry["file"])
            accepted.append((f, entry, *_check_file(probe, path, entry, contract, tmpdir)))
        except FileRejected as rej:
            results[f] = FileOutcome(entry["file"], "rejected", f"{rej.reason}: {rej.detail}")
        except (OSError, RuntimeError, ValueError, csv.Error) as exc:  # a name too long, a symlink loop, ...
            results[f] = FileOutcome(entry["file"], "rejected", f"unreadable: {type(exc).__name__}: {str(exc)[:200]}")
    con.execute("CREATE OR REPLACE TEMP TABLE _files (_f INTEGER, file VARCHAR, path VARCHAR, delivered_on DATE)")
    cols = ", ".join(q(c) for c in contract.column_names)
    if contract.file_format == "parquet":
        for f, entry, path, _ in accepted:
            con.execute("INSERT INTO _files VALUES (?, ?, ?, ?)", [f, entry["file"], str(path), entry["delivered_on"]])
        paths_sql = ", ".join(lit(p) for _, _, p, _ in accepted)  # a table function's file list is literal SQL
        batch = "_batch_parquet"
        # a table, not a view: the rows are read once, and a failed row's record is the row that was checked
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _batch_parquet AS SELECT f._f, p.file_row_number + 1 AS _row, {cols}
                        FROM read_parquet([{paths_sql}], file_row_number = true, filename = true,
                                          union_by_name = true, hive_partitioning = false) p
                        JOIN _files f ON f.path = p.filename""" if accepted else
                    "CREATE OR REPLACE TEMP TABLE _batch_parquet AS SELECT NULL::INTEGER AS _f, NULL::BIGINT AS _row, "
                    + ", ".join(f"NULL::VARCHAR AS {q(c)}" for c in contract.column_names) + " WHERE false")
    else:
        batch = "_batch_csv"
        con.execute("CREATE OR REPLACE TEMP TABLE _batch_csv (_f INTEGER, _row BIGINT, "
                    + ", ".join(f"{q(c)} VARCHAR" for c in contract.column_names) + ")")
        for f, entry, path, header in accepted:
            _load_csv(con, f, path, contract, header)
            con.execute("INSERT INTO _files VALUES (?, ?, ?, ?)", [f, entry["file"], str(path), entry["delivered_on"]])
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {checked_sql(contract, batch, '_files')}")
    mark_duplicates(con, contract, "_checked")
    # by name: a store made before a contract gained a column holds it last
    con.execute(f"""INSERT INTO raw.{q(source)} ({cols}, _file, _row, _delivered_on, _partition, _superseded_on, _valid_to)
                    SELECT {cols}, f.file, c._row, c._delivered_on, ?, NULL, NULL
                    FROM _checked c JOIN _files f USING (_f) WHERE c._rule IS NULL""", [business_date])
    counts = {f: (n, bad, stripped) for f, n, bad, stripped in con.execute(
        "SELECT _f, count(*), count(_rule), sum(_stripped) FROM _checked GROUP BY _f").fetchall()}
    if any(bad for _, bad, _ in counts.values()):  # the rows as delivered are read again for the failed ones only
        con.execute(f"""INSERT INTO quarantine.rows SELECT ?, f.file, x._row, x._rule, x._detail, x._record, ?
                        FROM ({detail_sql(contract, '_checked', batch)}) x JOIN _files f USING (_f)""",
                    [source, business_date])
    for f, entry in enumerate(entries):
        if f not in results:
            n, bad, stripped = counts.get(f, (0, 0, 0))
            note = f"control_characters_stripped: {stripped} cell(s)" if stripped else ""
            results[f] = FileOutcome(entry["file"], "loaded", note, n, n - bad, bad, cells_stripped=stripped or 0)
        results[f].sha256, results[f].delivered_on = entry["sha256"], entry["delivered_on"]
    con.execute(f"DROP TABLE _checked; DROP TABLE {batch}")  # the memory goes back before the next chunk
    return [results[f] for f in range(len(entries))]


def _supersede(con, contract: Contract, d: str, had_rows: bool) -> None:
    """Mark older versions of every key this date delivered again; the latest delivery wins."""
    keys = ", ".join(q(k) for k in contract.key)
    if had_rows:  # only keys this date delivered can have gained a newer version
        scope = (f"(SELECT rowid AS _rid, * FROM raw.{q(contract.source)} r SEMI JOIN "
                 f"(SELECT DISTINCT {keys} FROM raw.{q(contract.source)} WHERE _partition = {lit(d)}) USING ({keys}))")
    else:
        scope = f"(SELECT rowid AS _rid, * FROM raw.{q(contract.source)})"
    con.execute(f"""
        UPDATE raw.{q(contract.source)} AS r SET _superseded_on = {lit(d)}, _valid_to = v._next FROM (
            SELECT _rid, _n, _next FROM (
                SELECT _rid, row_number() OVER w AS _n, lag(_delivered_on) OVER w AS _next
                FROM {scope} s SEMI JOIN ({repeated_keys(keys, f"(SELECT * FROM {scope} WHERE _superseded_on IS NULL)")})
                USING ({keys})
                WHERE _superseded_on IS NULL
                WINDOW w AS (PARTITION BY {keys} ORDER BY _delivered_on DESC, _file DESC, _row DESC))
            WHERE _n > 1) v
        WHERE r.rowid = v._rid""")


def quarantined_by_rule(con: duckdb.DuckDBPyConnection, business_date: date, source: str | None = None) -> dict[str, int]:
    """Rows a business date quarantined, by rule (for one source, or all)."""
    where, args = "partition_date = ?", [business_date]
    if source:
        where, args = where + " AND source = ?", args + [source]
    return dict(con.execute(f"SELECT rule, count(*) FROM quarantine.rows WHERE {where} GROUP BY rule ORDER BY rule",
                            args).fetchall())


def awaiting_registry(con: duckdb.DuckDBPyConnection, contract: Contract, d: str) -> dict[str, int]:
    """Per file of the partition, its rows quarantined as `firm_unknown` (a row so named breaks no
    other rule) that are dated (by the contract's first date checked against delivery) after the
    latest founding the registry has delivered, for a source delivered each month before the
    registry is: their firm may be one founded since, which the source names before the registry's
    monthly file does (the authorisation platform delivers on the 1st, the registry on the 3rd).
    They stay quarantined, but do not count against their file as broken: counted, they stopped
    the night on the 1st and 2nd of every month where new firms are a large share of a small
    delivery. A row dated before the registry's latest founding still counts, and so does every
    such row of a source delivered after the registry."""
    if not (needs_registry(contract) and contract.not_after_delivery
            and contract.delivery_day < contract_for("registry").delivery_day):
        return {}
    when = contract.column(contract.not_after_delivery[0])
    value = f"json_extract_string(record, {lit('$.' + when.name)})"
    known = "(SELECT max(founded_on) FROM staging.registry)"
    # judged last, the row's date or period passed its type and is not after the delivery
    after = f"TRY_CAST({value} AS DATE) > {known}" if when.type == "date" else f"{value} > strftime({known}, '%Y-%m')"
    return dict(con.execute(f"""SELECT file, count(*) FROM quarantine.rows WHERE source = ? AND partition_date = ?
                                AND rule = 'firm_unknown' AND {after} GROUP BY file""",
                            [contract.source, d]).fetchall())


def check_source(con: duckdb.DuckDBPyConnection, source: str, business_date: date) -> CheckOutcome:
    """The blocking contract check of one source for one partition."""
    contract = contract_for(source)
    d = business_date.isoformat()
    problems: list[str] = []
    files = con.execute("SELECT file, status, reason, rows_read, rows_quarantined FROM meta.ingested_files "
                        "WHERE source = ? AND partition_date = ? ORDER BY file", [source, d]).fetchall()
    awaiting = awaiting_registry(con, contract, d)
    for file, status, reason, n_read, n_bad in files:
        n_bad = (n_bad or 0) - awaiting.get(file, 0)
        if status == "rejected":
            problems.append(f"{file} rejected ({reason})")
        elif n_read >= MIN_ROWS_FOR_RATE and n_bad / n_read > MAX_QUARANTINE_RATE:
            problems.append(f"{file}: {n_bad} of {n_read} rows quarantined, above the {MAX_QUARANTINE_RATE:.0%} limit"
                            + (f" (and {awaiting[file]} naming firms the registry has not delivered yet)"
                               if awaiting.get(file) else ""))
    all_read = sum(f[3] or 0 for f in files)
    all_bad = sum(f[4] or 0 for f in files) - sum(awaiting.values())
    if all_read and all_bad / all_read > MAX_QUARANTINE_RATE:
        problems.append(f"{all_bad} of {all_read} rows quarantined across the partition's files, "
                        f"above the {MAX_QUARANTINE_RATE:.0%} limit"
                        + (f" (and {sum(awaiting.values())} naming firms the registry has not delivered yet)"
                           if awaiting else ""))
    key = ", ".join(q(k) for k in contract.key)
    total = con.execute(f"SELECT count(*) FROM staging.{q(source)}").fetchone()[0]
    loaded = sum(f[3] - f[4] for f in files if f[1] == "loaded" and f[3] is not None)
    if loaded == 0:  # nothing loaded: earlier partitions' checks cleared every key there is
        repeated = 0
    elif loaded * 10 >= total:  # most of the table is new (a first night): count every key
        repeated = con.execute(f"SELECT count(*) FROM ({repeated_keys(key, f'staging.{q(source)}')})").fetchone()[0]
    else:  # a repeated key involves a row loaded in this partition: look at those keys only
        repeated = con.execute(f"""
            SELECT count(*) FROM (SELECT {key} FROM staging.{q(source)} SEMI JOIN (
                SELECT DISTINCT {key} FROM staging.{q(source)} WHERE _file IN (SELECT file FROM meta.ingested_files
                    WHERE source = ? AND partition_date = ? AND status = 'loaded')) USING ({key})
                GROUP BY ALL HAVING count(*) > 1)""", [source, d]).fetchone()[0]
    if repeated:
        problems.append(f"staging.{source} holds {repeated} repeated keys")
    cols = ", ".join(q(c) for c in contract.column_names)
    sample = con.execute(
        f"SELECT {cols} FROM staging.{q(source)} WHERE _file IN (SELECT file FROM meta.ingested_files "
        f"WHERE source = ? AND partition_date = ? AND status = 'loaded') "
        f"ORDER BY hash({key}) LIMIT {GX_SAMPLE_ROWS}", [source, d]).df()
    if source in PERSONAL_COLUMNS and len(sample):
        log_read(con, "contract_check", source, business_date, records=len(sample), masked=False)
    # no row loaded tonight: the suite, whose columns are the contract's own, would have nothing to check
    suite = validate_frame(contract, sample) if len(sample) else SuiteResult(True, 0, [], 0)
    if not suite.success:
        problems.append("Great Expectations suite failed: " + "; ".join(suite.failed))
    quarantined = quarantined_by_rule(con, business_date, source)
    meta = {
        "files": len(files), "rejected_files": sum(1 for f in files if f[1] == "rejected"),
        "quarantined_rows": sum(quarantined.values()), "quarantined_by_rule": quarantined,
        "staged_rows": total, "gx_expectations": suite.evaluated, "gx_rows_validated": suite.rows,
        "awaiting_registry": sum(awaiting.values()),
    }
    if problems:
        return CheckOutcome(False, f"{source}: " + " | ".join(problems), meta)
    return CheckOutcome(True, f"{source}: contract holds for {len(files)} file(s)", meta)
