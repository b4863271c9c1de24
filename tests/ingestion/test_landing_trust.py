"""The landing zone is a trust boundary: whatever a manifest names and whatever a file holds, nothing
of it becomes SQL, nothing outside the landing zone is read, and every refused file has its reason."""

import dataclasses
import hashlib
import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.contracts import Column, contract_for
from data_contracts.identifiers import uscc_check_char
from data_contracts.personal import reads
from ingestion import ingest
from ingestion.ingest import ingest_source
from simulate.landing import MANIFEST_COLUMNS, deliver
from valuecredit.store import connect

DAY = date(2026, 11, 28)
FIRMS = ["91500103123456788W", "91500112006000378W"]
INJECTION = ("bank/banks/a.csv', header=true); COPY (SELECT uscc, legal_rep_name, legal_rep_id FROM staging.registry) "
             "TO 'exfil.csv'; --.csv")


def registry_frame(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"uscc": FIRMS[:len(names)], "name": names, "district_code": "500103", "industry": "C",
                         "industry_division": "34", "founded_on": date(2010, 1, 1), "registered_capital_fen": 100, "size_class": "小型",
                         "status": "存续", "status_date": date(2010, 1, 1), "legal_rep_name": "张三明",
                         "legal_rep_id": "11010519491231002X"})


def social_frame(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"uscc": FIRMS[:n], "period": "2026-10", "insured_headcount": 10, "technical_staff": 2,
                         "contribution_fen": 100_000, "arrears_months": 0})


SOCIAL = "social/social_insurance/social_insurance_2026-10.csv"


def landing_zone(root: Path) -> Path:
    """A landing zone with the registry of two firms delivered, and an empty manifest otherwise."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns=MANIFEST_COLUMNS).to_csv(root / "manifest.csv", index=False)
    deliver(root, contract_for("registry"), "market/registry/registry_2026-10.csv", "2026-10",
            registry_frame(["重庆甲有限公司", "重庆乙有限公司"]), date(2026, 11, 3))
    return root


def add_entry(landing: Path, file: str, source: str, data: bytes, rows: int, fmt: str = "csv",
              encoding: str = "utf-8", delivered_on: str = "2026-11-20") -> None:
    """A manifest line for bytes that are already somewhere: correct size, hash and rows."""
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    entry = {"file": file, "source": source, "department": contract_for(source).department, "period": "2026-10",
             "delivered_on": delivered_on, "format": fmt, "encoding": encoding, "rows": rows, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest()}
    pd.concat([manifest, pd.DataFrame([entry]).astype(str)]).to_csv(landing / "manifest.csv", index=False)


def ingest_one(landing: Path, source: str, db: Path | None = None):
    con = connect(db or landing.parent / "store.duckdb")
    if source != "registry":
        ingest_source(con, landing, "registry", DAY)
    out = ingest_source(con, landing, source, DAY)
    recorded = con.execute("SELECT file, status, reason FROM meta.ingested_files WHERE source = ? ORDER BY file",
                           [source]).fetchall()
    return con, out, recorded


def test_a_file_named_to_inject_sql_is_loaded_under_its_name_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a COPY TO 'exfil.csv' would land
    landing = landing_zone(tmp_path / "landing")
    banks = pd.DataFrame({"bank_id": ["B01"], "bank_name": ["重庆银行"]})
    deliver(landing, contract_for("banks"), "bank/banks/a.csv", "2026-10", banks, date(2026, 11, 1))
    deliver(landing, contract_for("banks"), INJECTION, "2026-10", banks.assign(bank_name="渝农商行"), date(2026, 11, 2))
    db = tmp_path / "store.duckdb"
    con = connect(db)
    ingest_source(con, landing, "registry", DAY)
    logged = reads(db)
    out = ingest_source(con, landing, "banks", DAY)
    assert not [p for p in tmp_path.rglob("exfil*")] and not (Path(os.getcwd()) / "exfil.csv").exists()
    assert reads(db) == logged  # no personal data read for it
    assert [(f.file, f.status, f.rows_loaded) for f in out.files] == [("bank/banks/a.csv", "loaded", 1),
                                                                      (INJECTION, "loaded", 1)]
    # the file's own row, under its literal name: the later delivery of the same bank wins
    assert con.execute("SELECT bank_name, _file FROM staging.banks").fetchall() == [("渝农商行", INJECTION)]


def test_a_landing_zone_whose_path_holds_an_apostrophe_ingests_normally(tmp_path):
    landing = landing_zone(tmp_path / "o'brien" / "landing")
    deliver(landing, contract_for("social_insurance"), SOCIAL, "2026-10", social_frame(), date(2026, 11, 12))
    _, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.status, f.reason, f.rows_loaded) for f in out.files] == [("loaded", "", 2)]


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_manifest_path_leaving_the_landing_zone_is_rejected(tmp_path, where):
    landing = landing_zone(tmp_path / "landing")
    outside = tmp_path / "outside" / "social_insurance_2026-10.csv"
    outside.parent.mkdir()
    data = social_frame().to_csv(index=False).encode()
    outside.write_bytes(data)
    file = str(outside) if where == "absolute" else "../outside/social_insurance_2026-10.csv"
    add_entry(landing, file, "social_insurance", data, rows=2)
    con, out, recorded = ingest_one(landing, "social_insurance")
    assert [(f.status, f.reason.split(":")[0]) for f in out.files] == [("rejected", "path_outside_landing")]
    assert recorded[0][1:] == ("rejected", out.files[0].reason)
    assert con.execute("SELECT count(*) FROM raw.social_insurance").fetchone()[0] == 0


def test_a_symlink_out_of_the_landing_zone_is_rejected(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    outside = tmp_path / "secret.csv"
    data = social_frame().to_csv(index=False).encode()
    outside.write_bytes(data)
    link = landing / SOCIAL
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    add_entry(landing, SOCIAL, "social_insurance", data, rows=2)
    _, out, _ = ingest_one(landing, "social_insurance")
    assert out.files[0].status == "rejected"
    assert out.files[0].reason.startswith(f"path_outside_landing: '{SOCIAL}' resolves to {outside}")


def test_a_file_named_with_a_wildcard_is_rejected_not_expanded_to_other_files(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    deliver(landing, contract_for("social_insurance"), SOCIAL, "2026-10", social_frame(), date(2026, 11, 12))
    deliver(landing, contract_for("social_insurance"), "social/social_insurance/*.csv", "2026-10", social_frame(1),
            date(2026, 11, 13))
    _, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.file, f.status, f.reason.split(":")[0], f.rows_read) for f in out.files] == [
        (SOCIAL, "loaded", "", 2), ("social/social_insurance/*.csv", "rejected", "path_wildcard", 0)]


def test_a_manifest_format_against_the_contract_rejects_the_file(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    data = pd.DataFrame({"uscc": FIRMS, "period": "2026-10", "revenue_fen": 1, "vat_fen": 1, "income_tax_fen": 1,
                         "tax_arrears_fen": 0}).to_csv(index=False).encode()
    (landing / "tax" / "tax_monthly").mkdir(parents=True)
    (landing / "tax/tax_monthly/tax_monthly_2026-10.csv").write_bytes(data)
    add_entry(landing, "tax/tax_monthly/tax_monthly_2026-10.csv", "tax_monthly", data, rows=2, fmt="csv")
    _, out, recorded = ingest_one(landing, "tax_monthly")
    assert [(f.status, f.reason) for f in out.files] == [
        ("rejected", "format_mismatch: the manifest says 'csv', the contract of tax_monthly says 'parquet'")]
    assert recorded[0][2] == out.files[0].reason


@pytest.mark.parametrize("declared", [1, 3])
def test_a_row_count_other_than_the_manifests_rejects_the_file(tmp_path, declared):
    landing = landing_zone(tmp_path / "landing")
    deliver(landing, contract_for("social_insurance"), SOCIAL, "2026-10", social_frame(), date(2026, 11, 12))
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    manifest.loc[manifest.file == SOCIAL, "rows"] = str(declared)
    manifest.to_csv(landing / "manifest.csv", index=False)
    _, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.status, f.reason) for f in out.files] == [
        ("rejected", f"rows_mismatch: 2 data rows, the manifest says {declared}")]


def test_an_empty_file_is_rejected_unless_its_contract_allows_it(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    deliver(landing, contract_for("social_insurance"), SOCIAL, "2026-10", social_frame(0), date(2026, 11, 12))
    _, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.status, f.reason) for f in out.files] == [
        ("rejected", "file_empty: no data rows, and the contract of social_insurance needs some")]
    # a month without a penalty is a month like another
    penalties = contract_for("penalties")
    assert penalties.allow_empty and not contract_for("social_insurance").allow_empty
    deliver(landing, penalties, "market/penalties/penalties_2026-10.csv", "2026-10",
            pd.DataFrame(columns=list(penalties.column_names)), date(2026, 11, 3))
    _, out, _ = ingest_one(landing, "penalties", tmp_path / "other.duckdb")
    assert [(f.status, f.rows_read) for f in out.files] == [("loaded", 0)]


CONTROL = {"NUL": "\x00", "ESC": "\x1b", "DEL": "\x7f", "CSI": "\x9b", "RLO": "\u202e", "ZWSP": "\u200b"}


def _control_banks(landing: Path) -> None:
    names = [f"重庆{c}银行" for c in CONTROL.values()] + ["重庆\t乙\n银行"]
    frame = pd.DataFrame({"bank_id": [f"B{i}" for i in range(len(names))], "bank_name": names})
    deliver(landing, contract_for("banks"), "bank/banks/banks.csv", "2026-10", frame, date(2026, 11, 1))


def test_control_characters_in_a_text_cell_quarantine_the_row(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    _control_banks(landing)
    con, out, _ = ingest_one(landing, "banks")
    assert [(f.status, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in out.files] == [("loaded", 7, 1, 6)]
    quarantined = con.execute("SELECT row, rule, detail FROM quarantine.rows ORDER BY row").fetchall()
    assert quarantined == [(i + 1, "control_character", f"bank_name holds control character U+{ord(c):04X}")
                           for i, c in enumerate(CONTROL.values())]
    # tab and line feed inside a quoted cell are text, kept as delivered
    assert con.execute("SELECT bank_id, bank_name FROM staging.banks").fetchall() == [("B6", "重庆\t乙\n银行")]


def test_a_contract_may_strip_control_characters_and_count_them(tmp_path, monkeypatch):
    stripping = dataclasses.replace(contract_for("banks"), control_characters="strip")
    monkeypatch.setattr(ingest, "contract_for", lambda source: stripping if source == "banks" else contract_for(source))
    landing = landing_zone(tmp_path / "landing")
    _control_banks(landing)
    con, out, _ = ingest_one(landing, "banks")
    [f] = out.files
    assert (f.status, f.rows_loaded, f.rows_quarantined, f.cells_stripped) == ("loaded", 7, 0, 6)
    assert f.reason == "control_characters_stripped: 6 cell(s)"
    assert con.execute("SELECT bank_name FROM staging.banks ORDER BY bank_id").fetchall() == [
        ("重庆银行",)] * 6 + [("重庆\t乙\n银行",)]


def _control_in_either_column(landing: Path) -> None:
    frame = pd.DataFrame({"bank_id": ["B0", "B\x7f1", "B\u202e2", "B3"],
                          "bank_name": ["重庆\x1b银行", "重庆银行", "重庆\u200b银行", "重庆银行"]})
    deliver(landing, contract_for("banks"), "bank/banks/banks.csv", "2026-10", frame, date(2026, 11, 1))


def test_the_first_text_cell_with_a_control_character_names_the_row_and_every_such_cell_counts(tmp_path, monkeypatch):
    """The row is checked once for any control character in its text cells; the first cell holding
    one, in the contract's order, is the reason, and stripping counts every cell it cleaned."""
    landing = landing_zone(tmp_path / "quarantine")
    _control_in_either_column(landing)
    con, out, _ = ingest_one(landing, "banks")
    assert con.execute("SELECT row, detail FROM quarantine.rows ORDER BY row").fetchall() == [
        (1, "bank_name holds control character U+001B"), (2, "bank_id holds control character U+007F"),
        (3, "bank_id holds control character U+202E")]
    stripping = dataclasses.replace(contract_for("banks"), control_characters="strip")
    monkeypatch.setattr(ingest, "contract_for", lambda source: stripping if source == "banks" else contract_for(source))
    landing = landing_zone(tmp_path / "strip")
    _control_in_either_column(landing)
    con, out, _ = ingest_one(landing, "banks")
    assert out.files[0].cells_stripped == 4
    assert con.execute("SELECT bank_id, bank_name FROM staging.banks ORDER BY bank_id").fetchall() == [
        ("B0", "重庆银行"), ("B1", "重庆银行"), ("B2", "重庆银行"), ("B3", "重庆银行")]


def _social_values(con) -> list[tuple]:
    return con.execute("SELECT uscc, insured_headcount, technical_staff FROM raw.social_insurance ORDER BY uscc").fetchall()


def test_a_csv_is_read_by_its_column_names_not_their_order(tmp_path):
    """The header was checked as a set and the columns read by position: a file listing
    technical_staff before insured_headcount loaded each into the other."""
    landing = landing_zone(tmp_path / "landing")
    frame = social_frame()[["uscc", "period", "technical_staff", "insured_headcount", "contribution_fen",
                            "arrears_months"]]
    data = frame.to_csv(index=False).encode()
    (landing / SOCIAL).parent.mkdir(parents=True, exist_ok=True)
    (landing / SOCIAL).write_bytes(data)
    add_entry(landing, SOCIAL, "social_insurance", data, rows=2)
    con, out, recorded = ingest_one(landing, "social_insurance")
    assert [s for _, s, _ in recorded] == ["loaded"]
    assert _social_values(con) == [(FIRMS[0], 10, 2), (FIRMS[1], 10, 2)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_folder_named_like_a_column_changes_no_value(tmp_path, fmt):
    """DuckDB's hive partitioning read `uscc=X/` in a path as the value of the column uscc."""
    landing = landing_zone(tmp_path / "landing")
    if fmt == "csv":
        file, source, data = f"uscc={FIRMS[1]}/si.csv", "social_insurance", social_frame(1).to_csv(index=False).encode()
    else:
        power = pd.DataFrame({"uscc": [FIRMS[0]], "period": ["2026-10"], "kwh": [10.0], "arrears_fen": [0]})
        tmp = tmp_path / "p.parquet"
        power.to_parquet(tmp, index=False)
        file, source, data = "period=1999-01/p.parquet", "power", tmp.read_bytes()
    (landing / file).parent.mkdir(parents=True, exist_ok=True)
    (landing / file).write_bytes(data)
    add_entry(landing, file, source, data, rows=1, fmt=fmt)
    con, out, recorded = ingest_one(landing, source)
    assert [s for _, s, _ in recorded] == ["loaded"]
    column = "uscc" if fmt == "csv" else "period"
    assert con.execute(f"SELECT {column} FROM raw.{source}").fetchall() == [(FIRMS[0] if fmt == "csv" else "2026-10",)]


BROKEN_FILES = [  # (what, bytes or a callable making the file, expected reason)
    ("a blank first line", b"\n" + social_frame().to_csv(index=False).encode(), "header_missing"),
    ("lines ended by CR alone", social_frame().to_csv(index=False).replace("\n", "\r").encode(), "unreadable"),
]


@pytest.mark.parametrize("what,data,reason", BROKEN_FILES, ids=[b[0] for b in BROKEN_FILES])
def test_a_file_that_breaks_the_reader_is_rejected_not_the_night(tmp_path, what, data, reason):
    landing = landing_zone(tmp_path / "landing")
    (landing / SOCIAL).parent.mkdir(parents=True, exist_ok=True)
    (landing / SOCIAL).write_bytes(data)
    add_entry(landing, SOCIAL, "social_insurance", data, rows=2)
    _, out, recorded = ingest_one(landing, "social_insurance")
    assert [(s, r.split(":")[0]) for _, s, r in recorded] == [("rejected", reason)]


def test_names_counts_and_kinds_the_reader_cannot_take_are_rejected_one_by_one(tmp_path):
    landing = landing_zone(tmp_path / "landing")
    good = social_frame(1).to_csv(index=False).encode()
    long_name = "social/" + "x" * 300 + ".csv"  # longer than a file name may be
    add_entry(landing, long_name, "social_insurance", good, rows=1)
    (landing / "social" / "folder.csv").mkdir(parents=True)
    add_entry(landing, "social/folder.csv", "social_insurance", good, rows=1)
    (landing / "social" / "ok.csv").write_bytes(good)
    add_entry(landing, "social/ok.csv", "social_insurance", good, rows=1)
    add_entry(landing, "social/ok.csv", "social_insurance", good, rows=1)  # the same line twice: one delivery
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    (landing / "social" / "counts.csv").write_bytes(good)
    add_entry(landing, "social/counts.csv", "social_insurance", good, rows=1)
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    manifest.loc[manifest.file == "social/counts.csv", "rows"] = "1.0"
    manifest.to_csv(landing / "manifest.csv", index=False)
    nested = tmp_path / "nested.parquet"
    pd.DataFrame({"uscc": [FIRMS[0]], "period": ["2026-10"], "kwh": [[1.0, 2.0]], "arrears_fen": [0]}).to_parquet(nested)
    (landing / "power").mkdir()
    (landing / "power" / "nested.parquet").write_bytes(nested.read_bytes())
    add_entry(landing, "power/nested.parquet", "power", nested.read_bytes(), rows=1, fmt="parquet")
    con, out, recorded = ingest_one(landing, "social_insurance")
    reasons = {file: (status, reason.split(":")[0]) for file, status, reason in recorded}
    assert reasons == {long_name: ("rejected", "unreadable"), "social/folder.csv": ("rejected", "not_a_file"),
                       "social/counts.csv": ("rejected", "manifest_invalid"), "social/ok.csv": ("loaded", "")}
    assert con.execute("SELECT count(*) FROM raw.social_insurance").fetchone()[0] == 1
    _, _, recorded = ingest_one(landing, "power", tmp_path / "store.duckdb")
    assert [(s, r.split(":")[0]) for _, s, r in recorded] == [("rejected", "type_mismatch")]


def test_a_name_that_looks_like_a_url_is_a_file_inside_the_zone(tmp_path, monkeypatch):
    """With the landing zone given as `.`, `file:/elsewhere/x.csv` was read by DuckDB from /elsewhere."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = social_frame(1).assign(insured_headcount=999).to_csv(index=False).encode()
    (outside / "x.csv").write_bytes(secret)
    landing = landing_zone(tmp_path / "landing")
    name = f"file:{outside}/x.csv"
    decoy = social_frame(1).to_csv(index=False).encode()
    (landing / name).parent.mkdir(parents=True, exist_ok=True)
    (landing / name).write_bytes(decoy)
    add_entry(landing, name, "social_insurance", decoy, rows=1)
    monkeypatch.chdir(landing)
    con, out, recorded = ingest_one(Path("."), "social_insurance", tmp_path / "store.duckdb")
    assert [s for _, s, _ in recorded] == ["loaded"]
    assert _social_values(con) == [(FIRMS[0], 10, 2)]  # the decoy inside the zone, never the file outside


def test_a_landing_zone_whose_own_path_holds_a_wildcard_reads_nothing_elsewhere(tmp_path):
    """DuckDB globs the whole path: `landing[1]/x.csv` read `landing1/x.csv`."""
    landing = landing_zone(tmp_path / "landing[1]")
    decoy = landing_zone(tmp_path / "landing1")
    data = social_frame(1).to_csv(index=False).encode()
    for zone, frame in ((landing, social_frame(1)), (decoy, social_frame(1).assign(insured_headcount=999))):
        (zone / SOCIAL).parent.mkdir(parents=True, exist_ok=True)
        (zone / SOCIAL).write_bytes(frame.to_csv(index=False).encode())
    add_entry(landing, SOCIAL, "social_insurance", data, rows=1)
    con, out, recorded = ingest_one(landing, "social_insurance", tmp_path / "store.duckdb")
    assert [(s, r.split(":")[0]) for _, s, r in recorded] == [("rejected", "path_wildcard")]
    assert con.execute("SELECT count(*) FROM raw.social_insurance").fetchone()[0] == 0


def test_a_contract_cannot_name_a_column_like_ingestions_own():
    """The checks add `_f`, `_row`, `_ctrl` and the stored tables `_file`, `_partition`: a contract
    column so named would be read in their place (a `_ctrl` column once decided control characters)."""
    with pytest.raises(ValueError, match=r"contract banks: column\(s\) _ctrl start with '_'"):
        dataclasses.replace(contract_for("banks"), columns=(*contract_for("banks").columns, Column("_ctrl", "text")))


def deliver_as(landing: Path, monkeypatch, fmt: str, name: str, frame: pd.DataFrame, day: str = "2026-11-20",
               as_text: bool = True) -> None:
    """A social-insurance file, as text cells or typed, in CSV or (under a contract that says so) Parquet."""
    if fmt == "parquet":
        as_parquet = dataclasses.replace(contract_for("social_insurance"), file_format="parquet")
        monkeypatch.setattr(ingest, "contract_for",
                            lambda source: as_parquet if source == "social_insurance" else contract_for(source))
    path = landing / f"social/social_insurance/{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.astype(str) if as_text else frame
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    add_entry(landing, str(path.relative_to(landing)), "social_insurance", path.read_bytes(), len(frame), fmt,
              delivered_on=day)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_whole_number_column_takes_10_0_but_quarantines_10_5_instead_of_rounding_it(tmp_path, monkeypatch, fmt):
    landing = landing_zone(tmp_path / "landing")
    deliver_as(landing, monkeypatch, fmt, "social_insurance_2026-10", social_frame().assign(insured_headcount=["10.0", "10.5"]))
    con, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in out.files] == [("loaded", 1, 1)]
    assert con.execute("SELECT uscc, insured_headcount FROM staging.social_insurance").fetchall() == [(FIRMS[0], 10)]
    assert con.execute("SELECT row, rule, detail, record FROM quarantine.rows").fetchall() == [
        (2, "type_invalid", "insured_headcount=10.5 is not a valid int",
         '{"uscc":"91500112006000378W","period":"2026-10","insured_headcount":"10.5","technical_staff":"2",'
         '"contribution_fen":"100000","arrears_months":"0"}')]


def test_a_whole_number_in_a_parquet_double_column_is_judged_by_its_value_not_its_type(tmp_path, monkeypatch):
    # pandas writes an integer column with a gap as doubles; a large whole double is out of range, not malformed
    landing = landing_zone(tmp_path / "landing")
    frame = social_frame().assign(insured_headcount=[10.0, 14429444606371.0], contribution_fen=[10.00004, 100.0])
    deliver_as(landing, monkeypatch, "parquet", "social_insurance_2026-10", frame, as_text=False)
    con, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.rows_loaded, f.rows_quarantined) for f in out.files] == [(0, 2)]
    assert con.execute("SELECT row, rule, detail FROM quarantine.rows ORDER BY row").fetchall() == [
        (1, "type_invalid", "contribution_fen=10.00004 is not a valid money"),
        (2, "value_out_of_range", "insured_headcount=14429444606371 is above 1e+06")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_key_twice_in_a_file_is_judged_by_its_copies_and_a_key_in_a_later_file_corrects_it(tmp_path, monkeypatch, fmt):
    landing = landing_zone(tmp_path / "landing")
    a, b = social_frame().to_dict("records")
    # a: two identical copies (the first kept); b: three rows in two versions (none kept)
    deliver_as(landing, monkeypatch, fmt, "social_insurance_2026-10",
               pd.DataFrame([a, b, a, b | {"insured_headcount": 11}, b]), day="2026-11-12")
    deliver_as(landing, monkeypatch, fmt, "social_insurance_2026-10b", pd.DataFrame([a | {"insured_headcount": 12}]))
    con, out, _ = ingest_one(landing, "social_insurance")
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in out.files] == [("loaded", 1, 4), ("loaded", 1, 0)]
    conflict = f"key ({FIRMS[1]}, 2026-10) appears 2 different ways in the file"
    assert con.execute("SELECT row, rule, detail FROM quarantine.rows ORDER BY row").fetchall() == [
        (2, "duplicate_conflict", conflict),
        (3, "duplicate_exact", f"key ({FIRMS[0]}, 2026-10) repeated; the copy at row 1 is kept"),
        (4, "duplicate_conflict", conflict), (5, "duplicate_conflict", conflict)]
    assert con.execute("SELECT uscc, insured_headcount FROM staging.social_insurance").fetchall() == [(FIRMS[0], 12)]


def test_repeated_keys_stay_exact_when_different_keys_share_a_hash():
    """The hash only narrows the rows down; a collision (forced here: every key hashes alike) costs an
    exact look at the keys themselves, never a key reported repeated that is not."""
    import duckdb

    from data_contracts.rules import repeated_keys

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 1), ('a', 1), ('a', 2), ('b', 1), ('c', 3), ('c', 3), "
                "('c', 3)) v(k, m)")
    sql = repeated_keys('"k", "m"', "t")
    con.execute("CREATE MACRO colliding_hash(x, y) AS 42")
    colliding = sql.replace("hash(", "colliding_hash(")
    assert colliding.count("colliding_hash(") == 3  # the narrowing, and the grouping in both its clauses
    for variant in (sql, colliding):
        assert sorted(con.execute(variant).fetchall()) == [("a", 1), ("c", 3)]


def test_a_firm_founded_since_the_registrys_last_file_does_not_stop_the_night(tmp_path):
    """The authorisation platform delivers on the 1st, the registry on the 3rd: a firm founded in
    November is authorised before the registry names it. Its row is quarantined (its firm is
    unknown), but does not count against the file as broken; a row for an unknown firm dated before
    the registry's latest founding still does."""
    landing = landing_zone(tmp_path / "landing")
    registry = registry_frame(["重庆甲有限公司", "重庆乙有限公司"]).assign(founded_on=[date(2010, 1, 1), date(2026, 10, 27)])
    deliver(landing, contract_for("registry"), "market/registry/registry_2026-10.csv", "2026-10", registry,
            date(2026, 11, 3))
    new_firms = [body + uscc_check_char(body) for body in ("91500105MA5UX0001", "91500106MA5UY0002", "91500107MA5UW0003")]

    def authorisations(firms: list[str], granted: date) -> pd.DataFrame:
        return pd.DataFrame({"uscc": firms, "granted_on": granted, "expires_on": date(2027, 11, 1),
                             "revoked_on": pd.NaT})

    frame = pd.concat([authorisations(FIRMS, date(2026, 11, 2)), authorisations(new_firms, date(2026, 11, 20))])
    deliver(landing, contract_for("authorisations"), "platform/authorisations/authorisations_2026-11.csv", "2026-11",
            frame, date(2026, 11, 28))
    con, out, _ = ingest_one(landing, "authorisations")
    assert out.quarantined_by_rule == {"firm_unknown": len(new_firms)}
    check = ingest.check_source(con, "authorisations", DAY)
    assert check.passed, check.description
    assert check.metadata["awaiting_registry"] == len(new_firms)
    # the same firms authorised before the registry's latest founding: unknown to it, not new
    con.close()
    landing = landing_zone(tmp_path / "landing2")
    deliver(landing, contract_for("registry"), "market/registry/registry_2026-10.csv", "2026-10", registry,
            date(2026, 11, 3))
    frame = pd.concat([authorisations(FIRMS, date(2026, 11, 2)), authorisations(new_firms, date(2026, 10, 1))])
    deliver(landing, contract_for("authorisations"), "platform/authorisations/authorisations_2026-11.csv", "2026-11",
            frame, date(2026, 11, 28))
    con, out, _ = ingest_one(landing, "authorisations", tmp_path / "store2.duckdb")
    check = ingest.check_source(con, "authorisations", DAY)
    assert not check.passed and f"{len(new_firms)} of {len(frame)} rows quarantined" in check.description
    assert check.metadata["awaiting_registry"] == 0


@pytest.mark.parametrize("case", ["a date after the delivery", "a source delivered after the registry"])
def test_rows_of_unknown_firms_that_are_broken_or_late_still_stop_the_night(tmp_path, case):
    """The allowance for firms the registry has not named yet holds for rows that break no other
    rule, of a source delivered before the registry: a made-up but well-formed code does not hide a
    date after the delivery, and a source delivered after the registry's file gets no allowance."""
    landing = landing_zone(tmp_path / "landing")
    registry = registry_frame(["重庆甲有限公司", "重庆乙有限公司"]).assign(founded_on=[date(2010, 1, 1), date(2026, 10, 27)])
    deliver(landing, contract_for("registry"), "market/registry/registry_2026-10.csv", "2026-10", registry,
            date(2026, 11, 3))
    unknown = [body + uscc_check_char(body) for body in ("91500105MA5UX0001", "91500106MA5UY0002", "91500107MA5UW0003")]
    if case == "a date after the delivery":
        source, period = "authorisations", "2026-11"
        frame = pd.DataFrame({"uscc": FIRMS + unknown, "granted_on": [date(2026, 11, 2)] * 2 + [date(2099, 12, 31)] * 3,
                              "expires_on": date(2100, 11, 1), "revoked_on": pd.NaT})
        rule = "date_future"
    else:
        source, period = "social_insurance", "2026-11"
        frame = pd.concat([social_frame(), social_frame(2).assign(uscc=unknown[:2])]).assign(period="2026-11")
        rule = "firm_unknown"
    deliver(landing, contract_for(source), f"x/{source}_{period}.csv", period, frame, date(2026, 11, 28))
    con, out, _ = ingest_one(landing, source)
    assert set(out.quarantined_by_rule) == {rule}
    check = ingest.check_source(con, source, DAY)
    assert not check.passed and check.metadata["awaiting_registry"] == 0, check.description
