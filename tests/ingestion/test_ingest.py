import shutil
from datetime import date

import pandas as pd
import pytest

from data_contracts.contracts import CONTRACTS
from ingestion.ingest import LandingError, check_source, ingest_source, load_manifest
from scoring.sql import PointInTime
from simulate.landing import FILE_FAULTS
from tests.conftest import BUSINESS_DATE, ingest_all, redeliver
from valuecredit.store import connect


def test_every_injected_bad_row_is_quarantined_and_no_good_row(faulty_landing, faulty_store):
    con, _, _ = faulty_store
    faults = pd.read_csv(faulty_landing / "_truth" / "faults.csv")
    expected = faults[faults.row.notna()].astype({"row": int})
    got = con.execute("SELECT file, \"row\", rule FROM quarantine.rows").df()
    merged = expected.merge(got, on=["file", "row"], how="outer", indicator=True)
    missed = merged[merged._merge == "left_only"]
    extra = merged[merged._merge == "right_only"]
    assert missed.empty, f"injected but not quarantined:\n{missed.head()}"
    assert extra.empty, f"quarantined good rows:\n{extra.head()}"
    both = merged[merged._merge == "both"]
    # per fault class, the reason is the fault itself
    assert (both.fault == both.rule).all(), both[both.fault != both.rule].groupby(["fault", "rule"]).size()
    assert set(both.rule) >= {"uscc_invalid", "firm_unknown", "key_null", "amount_negative", "amount_absurd",
                              "period_future", "duplicate_exact", "duplicate_conflict"}


def test_quarantine_keeps_the_row_as_delivered(faulty_store):
    con, _, _ = faulty_store
    rule, detail, record = con.execute("SELECT rule, detail, record FROM quarantine.rows "
                                       "WHERE source = 'tax_monthly' AND rule = 'amount_negative' LIMIT 1").fetchone()
    assert "revenue_fen=-" in detail and "negative" in detail
    assert '"revenue_fen":"-' in record


def test_missing_months_are_absent_not_invented(faulty_landing, faulty_store):
    con, _, _ = faulty_store
    faults = pd.read_csv(faulty_landing / "_truth" / "faults.csv")
    missing = faults[(faults.fault == "missing_month") & (faults.source == "tax_monthly")]
    assert len(missing)
    for detail in missing.detail:
        kv = dict(part.split("=") for part in detail.split())
        assert con.execute("SELECT count(*) FROM staging.tax_monthly WHERE uscc = ? AND period = ?",
                           [kv["uscc"], kv["period"]]).fetchone()[0] == 0


def test_unreadable_files_fail_their_source_check_by_name(faulty_landing, faulty_store):
    con, outcomes, _ = faulty_store
    faults = pd.read_csv(faulty_landing / "_truth" / "faults.csv")
    file_faults = faults[faults.fault.isin(FILE_FAULTS)]
    assert len(file_faults) == len(FILE_FAULTS)
    failing = set(file_faults.source)
    for c in CONTRACTS:
        result = check_source(con, c.source, BUSINESS_DATE)
        if c.source in failing:
            bad_file = file_faults[file_faults.source == c.source].file.iloc[0]
            assert not result.passed and bad_file in result.description
            assert [f.file for f in outcomes[c.source].rejected] == [bad_file]
        else:
            assert result.passed, result.description
    reasons = {f.reason.split(":")[0] for o in outcomes.values() for f in o.rejected}
    assert reasons == {"file_truncated", "column_mismatch", "wrong_encoding"}


def test_staging_has_one_row_per_key(faulty_store):
    con, _, _ = faulty_store
    for c in CONTRACTS:
        key = ", ".join(c.key)
        total, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({key})) FROM staging.{c.source}").fetchone()
        assert total == distinct, c.source


def _snapshot(con):
    out = {}
    for c in CONTRACTS:
        out[c.source] = con.execute(f"SELECT * FROM staging.{c.source} ORDER BY ALL").df()
    out["quarantine"] = con.execute("SELECT * FROM quarantine.rows ORDER BY ALL").df()
    out["files"] = con.execute("SELECT * FROM meta.ingested_files ORDER BY ALL").df()
    return out


def test_rerunning_a_day_leaves_identical_tables(clean_landing, tmp_path):
    con, _ = ingest_all(clean_landing, tmp_path / "a.duckdb")
    first = _snapshot(con)
    for c in CONTRACTS:
        ingest_source(con, clean_landing, c.source, BUSINESS_DATE)
    second = _snapshot(con)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)


def test_files_are_ingested_once_and_by_delivery_date(clean_landing, tmp_path):
    con = connect(tmp_path / "b.duckdb")
    ingest_source(con, clean_landing, "registry", BUSINESS_DATE)
    early = ingest_source(con, clean_landing, "tax_monthly", pd.Timestamp("2026-09-30").date())
    periods = con.execute("SELECT max(period) FROM staging.tax_monthly").fetchone()[0]
    assert periods == "2026-08"  # August's filing arrives on 15 September; September's on 15 October
    later = ingest_source(con, clean_landing, "tax_monthly", BUSINESS_DATE)
    assert {f.file for f in early.files}.isdisjoint({f.file for f in later.files})
    assert [f.file.rsplit("_", 1)[1] for f in later.files] == ["2026-09.parquet", "2026-10.parquet"]
    again = ingest_source(con, clean_landing, "tax_monthly", pd.Timestamp("2026-11-29").date())
    assert again.files == []


def social_insurance_store(clean_landing, tmp_path):
    """A copy of the landing zone, and a store with its registry and social insurance ingested."""
    landing = tmp_path / "landing"
    shutil.copytree(clean_landing, landing)
    con = connect(tmp_path / "c.duckdb")
    ingest_source(con, landing, "registry", BUSINESS_DATE)
    ingest_source(con, landing, "social_insurance", BUSINESS_DATE)
    return landing, con


def correct_first_headcount(landing, delivered_on: date):
    """The October social-insurance file delivered again, its first row's headcount now 4321:
    (the manifest entry, the firm, the headcount first delivered)."""
    entry = load_manifest(landing).query("source == 'social_insurance' and period == '2026-10'").iloc[0]
    frame = pd.read_csv(landing / entry.file, dtype=str)
    firm, first = frame.uscc.iloc[0], frame.insured_headcount.iloc[0]
    frame.loc[0, "insured_headcount"] = "4321"
    redeliver(landing, entry.file, frame, delivered_on)
    return entry, firm, first


def test_a_redelivered_file_corrects_staging(clean_landing, tmp_path):
    landing, con = social_insurance_store(clean_landing, tmp_path)
    entry, firm, entry_headcount = correct_first_headcount(landing, date(2026, 11, 29))
    out = ingest_source(con, landing, "social_insurance", pd.Timestamp("2026-11-29").date())
    assert [f.file for f in out.files] == [entry.file]
    assert con.execute("SELECT insured_headcount FROM staging.social_insurance WHERE uscc = ? AND period = '2026-10'",
                       [firm]).fetchone()[0] == 4321
    # point in time: the day before the correction still sees what was known then
    for as_of, expected in ((BUSINESS_DATE, int(entry_headcount)), (pd.Timestamp("2026-11-29").date(), 4321)):
        rows = PointInTime("", as_of).rows("social_insurance")
        assert con.execute(f"SELECT insured_headcount FROM {rows} WHERE uscc = ? AND period = '2026-10'",
                           [firm]).fetchall() == [(expected,)]
    # a store written before rows carried _valid_to gets it back, the same, when next opened
    versions = "SELECT uscc, period, _file, _row, _valid_to FROM raw.social_insurance ORDER BY ALL"
    before = con.execute(versions).fetchall()
    assert sum(v[4] is not None for v in before) >= 1
    con.execute("DROP VIEW staging.social_insurance")
    con.execute("ALTER TABLE raw.social_insurance DROP COLUMN _valid_to")
    con.close()
    con = connect(tmp_path / "c.duckdb")
    assert con.execute(versions).fetchall() == before


def test_missing_manifest_is_a_clear_error(tmp_path):
    con = connect(tmp_path / "d.duckdb")
    with pytest.raises(LandingError, match="no manifest"):
        ingest_source(con, tmp_path, "tax_monthly", BUSINESS_DATE)


def test_the_key_check_finds_a_repeated_key_on_a_full_night_and_on_a_night_of_corrections(clean_landing, tmp_path):
    landing, con = social_insurance_store(clean_landing, tmp_path)
    assert check_source(con, "social_insurance", BUSINESS_DATE).passed

    def repeat_a_row(where: str) -> None:  # what a bug in superseding would leave: a second current row
        con.execute(f"INSERT INTO raw.social_insurance SELECT * FROM raw.social_insurance "
                    f"WHERE _superseded_on IS NULL AND {where} LIMIT 1")

    repeat_a_row("period = '2024-01'")  # the first night loaded everything: every key is counted
    out = check_source(con, "social_insurance", BUSINESS_DATE)
    assert not out.passed and "staging.social_insurance holds 1 repeated keys" in out.description
    con.execute("DELETE FROM raw.social_insurance WHERE rowid = (SELECT max(rowid) FROM raw.social_insurance)")
    assert check_source(con, "social_insurance", BUSINESS_DATE).passed

    # a later night takes one corrected file: the keys it loaded are checked, in a table that is mostly old
    later = date(2026, 11, 29)
    entry, _, _ = correct_first_headcount(landing, later)
    ingest_source(con, landing, "social_insurance", later)
    assert check_source(con, "social_insurance", later).passed
    repeat_a_row(f"_file = '{entry.file}'")
    out = check_source(con, "social_insurance", later)
    assert not out.passed and "holds 1 repeated keys" in out.description
    con.close()
