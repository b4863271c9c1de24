"""Access: a bank's DuckDB connection sees its own publication and nothing else; a revoked
authorisation takes the firm out of every bank's next publication; every read of personal data is
logged with its purpose, and no module but data_contracts/personal.py names a personal column."""

import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from data_contracts.contracts import CONTRACTS
from data_contracts.personal import PERSONAL_COLUMNS, PURPOSES, reads
from lending.access import DEFAULT_MEMORY, TIMEOUT_ENV, AccessError, bank_connection
from lending.delta import load_table
from lending.products import UnknownBank, load_products
from lending.publish import publish
from pipelines.cli import main
from pipelines.run import run_nightly
from tests.conftest import redeliver

DAY1, DAY2 = date(2026, 11, 27), date(2026, 11, 28)  # DAY1: the first_clean_night fixture's
ROOT = Path(__file__).parents[2]


def revoke(landing: Path, firm: str, on: date, delivered: date) -> None:
    """Redeliver the authorisation file holding the firm's grant, with the grant revoked."""
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    for file in manifest[manifest.source == "authorisations"].file:
        frame = pd.read_csv(landing / file, dtype=str, keep_default_na=False)
        if firm in set(frame.uscc):
            frame.loc[frame.uscc == firm, "revoked_on"] = on.isoformat()
            redeliver(landing, file, frame, delivered)
            return
    raise AssertionError(f"{firm} has no authorisation to revoke")


def in_publication(store: Path, day: date) -> dict[str, set[str]]:
    """Each bank's firms on `day`: in its files (the full table's Parquet and CSV on a full-table night,
    else the last full table and the change files since) and in its table in the store (all agree)."""
    con = duckdb.connect(str(store / "night.duckdb"), read_only=True)
    firms = {}
    for bank in sorted(p.name for p in (store / "publish").iterdir()):
        folder = store / "publish" / bank / day.isoformat()
        published = set(bank_table(store / "publish", bank, day)["uscc"])
        if (folder / "eligibility.parquet").is_file():
            assert published == set(pd.read_csv(folder / "eligibility.csv", encoding="utf-8-sig", dtype=str)["uscc"])
        if (store / "publish" / bank / "LATEST").read_text().strip() == day.isoformat():
            table = {u for (u,) in con.execute(f"SELECT uscc FROM bank_{bank.lower()}.eligibility").fetchall()}
            assert table == published
        firms[bank] = published
    con.close()
    return firms


def bank_table(publish: Path, bank: str, day: date) -> pd.DataFrame:
    """The bank's table of `day` as its files give it: the full table, or the last one and the change files since."""
    con = duckdb.connect()
    try:
        load_table(con, "t", publish / bank, day)
        return con.execute("SELECT * FROM t").df()
    finally:
        con.close()


def gate_flips(store: Path) -> tuple[set[str], set[str]]:
    """From the delivered authorisations themselves, not from what the nights decided: the firms whose
    grant expires on the second night (grants last three years, so a few lapse on any day; each firm
    holds one grant in the simulated universe) and those whose grant starts on it."""
    con = duckdb.connect(str(store / "night.duckdb"), read_only=True)
    rows = "SELECT DISTINCT uscc FROM raw.authorisations WHERE "
    lapsing = {u for (u,) in con.execute(rows + "expires_on > ? AND expires_on <= ?", [DAY1, DAY2]).fetchall()}
    granted = {u for (u,) in con.execute(rows + "granted_on > ? AND granted_on <= ?", [DAY1, DAY2]).fetchall()}
    con.close()
    return lapsing, granted


def withdrawn(store: Path, firm: str) -> set[str]:
    """The revoked firm and every firm whose grant ran out between the two nights."""
    return gate_flips(store)[0] | {firm}


@pytest.fixture(scope="module")
def two_nights(clean_landing, first_clean_night, tmp_path_factory):
    """Night 1 (the session's first_clean_night); then an authorisation revoked, delivered for night 2."""
    work = tmp_path_factory.mktemp("access")
    landing = work / "landing"
    shutil.copytree(clean_landing, landing)
    store = work / "store"
    shutil.copytree(first_clean_night, store)
    first = in_publication(store, DAY1)
    firm = sorted(first["B03"])[0]
    revoke(landing, firm, DAY1, DAY2)
    summary = run_nightly(DAY2, landing, store / "night.duckdb")
    assert summary.succeeded, (summary.errors, summary.failed_checks)
    # night 2 is not a full-table night (a Saturday): what a full publication of it gives, for reference
    shutil.copy(store / "night.duckdb", work / "copy.duckdb")
    with duckdb.connect(str(work / "copy.duckdb")) as con:
        publish(con, DAY2, load_products(), work / "full_publication")
    (work / "copy.duckdb").unlink()
    return store, firm, first, in_publication(store, DAY2)


def test_a_revoked_authorisation_takes_the_firm_out_of_every_banks_next_publication(two_nights):
    store, firm, first, second = two_nights
    banks_before = {b for b, firms in first.items() if firm in firms}
    assert len(banks_before) >= 2  # published to several banks the night before
    assert all(firm not in firms for firms in second.values())
    # the other firms stay, but for those whose authorisation ran out between the two nights; a firm
    # may also arrive, its authorisation granted in between. The revocation file is a month's file
    # delivered again: a firm it holds that revoked since, in a later file, stays revoked
    gone, granted = withdrawn(store, firm), gate_flips(store)[1]
    assert firm not in granted
    for bank, firms in first.items():
        assert firms - second[bank] == firms & gone and second[bank] - firms <= granted, bank
    con = duckdb.connect(str(store / "night.duckdb"), read_only=True)
    gates = con.execute("SELECT gates FROM decisions.eligibility_firms WHERE uscc = ? AND as_of = ?", [firm, DAY2]).fetchone()[0]
    con.close()
    assert "no_authorisation" in gates


def test_a_banks_connection_holds_its_publication_and_can_read_nothing_else(two_nights):
    store, firm, first, second = two_nights
    view = bank_connection(store / "publish", "B03")
    assert view.business_date == DAY2
    assert {u for (u,) in view.con.execute("SELECT uscc FROM eligibility").fetchall()} == second["B03"]
    assert {t for (t,) in view.con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == \
        {"eligibility", "early_warnings"}
    other = store / "publish" / "B04" / DAY1.isoformat()
    for sql in (f"SELECT * FROM read_parquet('{other / 'eligibility.parquet'}')",
                f"SELECT * FROM read_parquet('{other.parent / DAY2.isoformat() / 'changes.parquet'}')",
                f"SELECT * FROM read_csv('{store / 'publish' / 'B03' / '..' / 'B04' / DAY1.isoformat() / 'eligibility.csv'}')",
                f"ATTACH '{store / 'night.duckdb'}' AS store (READ_ONLY)",
                f"COPY eligibility TO '{store / 'publish' / 'B03' / 'copy.csv'}'"):
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            view.con.execute(sql)
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        view.con.execute("SET enable_external_access = true")
    view.con.close()
    assert not (store / "publish" / "B03" / "copy.csv").exists()
    # an earlier date on request (without the firm revoked since); an unknown bank or date says so
    assert bank_connection(store / "publish", "B03", DAY1).con.execute(
        "SELECT count(DISTINCT uscc) FROM eligibility").fetchone()[0] == len(first["B03"] - withdrawn(store, firm))
    with pytest.raises(UnknownBank, match="bank 'B99' is not in the product catalogue .*B01, B02"):
        bank_connection(store / "publish", "B99")
    with pytest.raises(AccessError, match="nothing published for 2026-11-01"):
        bank_connection(store / "publish", "B03", date(2026, 11, 1))


def test_a_past_publication_opened_by_a_bank_holds_no_firm_that_has_withdrawn_since(two_nights, capsys):
    store, firm, first, second = two_nights
    past = store / "publish" / "B03" / DAY1.isoformat()
    on_file = pd.read_csv(past / "early_warnings.csv", encoding="utf-8-sig", dtype=str)
    assert firm in first["B03"] and firm not in second["B03"]
    view = bank_connection(store / "publish", "B03", DAY1)
    assert view.business_date == DAY1
    assert {u for (u,) in view.con.execute("SELECT uscc FROM eligibility").fetchall()} == first["B03"] - withdrawn(store, firm)
    warned = {u for (u,) in view.con.execute("SELECT uscc FROM early_warnings").fetchall()}
    assert warned == set(on_file.uscc) & second["B03"] and not warned - second["B03"]
    view.con.close()
    db = str(store / "night.duckdb")
    for table in ("eligibility", "early_warnings"):
        assert main(["bank", "query", "--bank", "B03", "--db", db, "--date", DAY1.isoformat(),
                     f"SELECT DISTINCT uscc FROM {table}"]) == 0
        assert firm not in capsys.readouterr().out


def test_the_bank_query_command_answers_from_the_sandbox_and_refuses_the_rest(two_nights, capsys):
    store, *_ = two_nights
    db = str(store / "night.duckdb")
    assert main(["bank", "query", "--bank", "B03", "--db", db, "SELECT count(*) AS n FROM eligibility"]) == 0
    n = int(capsys.readouterr().out.splitlines()[1])
    assert n == len(bank_table(store / "publish", "B03", DAY2))
    assert main(["bank", "query", "--bank", "B03", "--db", db, f"SELECT * FROM '{db}'"]) == 2
    assert "bank B03, publication of 2026-11-28: Permission Error" in capsys.readouterr().err


def test_every_read_of_personal_data_is_logged_with_its_purpose(two_nights, tmp_path):
    store, *_ = two_nights
    log = reads(store / "night.duckdb")
    by = {(r["business_date"], r["purpose"], r["source"]) for r in log}
    # night 1 loaded both sources with personal columns, night 2 the redelivered authorisations only; both published
    assert {(DAY1.isoformat(), "ingest", s) for s in PERSONAL_COLUMNS} <= by
    assert not {(DAY2.isoformat(), "ingest", s) for s in PERSONAL_COLUMNS} & by
    assert {(DAY1.isoformat(), "publication", "registry"), (DAY2.isoformat(), "publication", "registry")} <= by
    assert all(r["purpose"] in PURPOSES and r["why"] == PURPOSES[r["purpose"]] and r["records"] > 0 for r in log)
    unmasked = ("ingest", "contract_check")  # loading a delivery, and the contract check of a sample of it
    assert all(r["masked"] for r in log if r["purpose"] not in unmasked)
    assert all(r["columns"] == ["legal_rep_name"] for r in log if r["purpose"] not in unmasked)
    assert {(DAY1.isoformat(), "contract_check", s) for s in PERSONAL_COLUMNS} <= by  # the sample read is logged too
    # a report asked for on the command line, on a read-only store, is logged too
    firm = bank_table(store / "publish", "B03", DAY2)["uscc"].iloc[0]
    assert main(["report", "firm", firm, "--db", str(store / "night.duckdb"), "--out", str(tmp_path), "--no-pdf"]) == 0
    last = reads(store / "night.duckdb")[-1]
    assert len(reads(store / "night.duckdb")) == len(log) + 1
    assert (last["business_date"], last["purpose"], last["source"], last["records"], last["masked"]) == \
        (DAY2.isoformat(), "firm_report", "registry", 1, True)


def test_no_module_but_the_personal_data_one_names_a_personal_column():
    """Any other code reading these columns would bypass the log: a new reader must go through it."""
    names = {col.name for c in CONTRACTS for col in c.columns if col.personal}
    assert names == {"legal_rep_name", "legal_rep_id", "person_id"}
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
    allowed = {ROOT / "data_contracts" / "personal.py", ROOT / "data_contracts" / "contracts.py"}
    offenders = [f"{p.relative_to(ROOT)}:{n}" for folder in ("valuecredit", "ingestion", "scoring", "lending", "reports",
                                                              "models", "pipelines", "benchmarks", "data_contracts")
                 for p in sorted((ROOT / folder).rglob("*.py")) if p not in allowed
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_a_reader_and_the_nightly_run_wait_for_each_other_with_a_clear_message(two_nights, capsys):
    """DuckDB has one writing process or many reading ones: a report asked for while the run writes
    says so (no stack trace); a run that starts while a reader has the store open waits for it."""
    import subprocess
    import sys

    store, firm, *_ = two_nights
    db = store / "night.duckdb"

    def hold(read_only: bool, seconds: float) -> subprocess.Popen:
        """Another process with the store open, as the nightly run or a report would have it."""
        p = subprocess.Popen([sys.executable, "-c", "import duckdb, time\n"
                              f"con = duckdb.connect({str(db)!r}, read_only={read_only})\nprint('open', flush=True)\n"
                              f"time.sleep({seconds})"], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "open"
        return p

    writer = hold(False, 20)
    try:
        assert main(["report", "firm", firm, "--db", str(db), "--no-pdf", "--out", str(store / "r")]) == 2
        out = capsys.readouterr().err
        assert "is open in another process" in out and "the nightly run is writing it" in out and "Traceback" not in out
    finally:
        writer.kill()
        writer.wait()
    holder = hold(True, 3)
    assert holder.poll() is None  # the reader still has the store open as the run starts
    summary = run_nightly(DAY2, store.parent / "landing", db)
    holder.wait()
    assert summary.succeeded, summary.errors  # it waited for the reader, then ran


def test_a_bank_id_not_in_the_catalogue_is_refused_before_any_path_is_built(two_nights, capsys):
    """`B03/../B04` or an absolute path once opened another bank's publication; `b03` is not B03."""
    store, *_ = two_nights
    publish = store / "publish"
    for bank in ("B03/../B04", str(publish / "B04"), "../publish/B04", "b03", "B99", ""):
        with pytest.raises(UnknownBank, match=r"is not in the product catalogue .*\(its banks: B01, B02, .*B17\)"):
            bank_connection(publish, bank)
        assert main(["bank", "query", "--bank", bank, "--publish", str(publish), "SELECT * FROM eligibility"]) == 2
        out, err = capsys.readouterr()
        assert "is not in the product catalogue" in err and "uscc" not in out + err and len(err.strip().splitlines()) == 1


def test_the_sandbox_has_no_temporary_directory_open_to_the_banks_sql(two_nights, tmp_path, monkeypatch):
    """DuckDB's default temporary directory (`./.tmp`) stayed readable and writable with file access
    off: another bank's file put there could be listed, read and copied out."""
    store, *_ = two_nights
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    shutil.copy(store / "publish" / "B04" / DAY1.isoformat() / "eligibility.csv", tmp_path / ".tmp" / "b04.csv")
    view = bank_connection(store / "publish", "B03")
    settings = dict(view.con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                     "('temp_directory', 'max_temp_directory_size', 'enable_external_access', "
                                     "'lock_configuration', 'memory_limit')").fetchall())
    assert settings == {"temp_directory": "", "max_temp_directory_size": "0 bytes", "enable_external_access": "false",
                        "lock_configuration": "true", "memory_limit": "953.6 MiB"}  # 1GB
    for sql in ("SELECT * FROM glob('.tmp/*')", f"SELECT * FROM glob('{tmp_path}/.tmp/*')",
                "SELECT * FROM read_csv('.tmp/b04.csv')", "COPY eligibility TO '.tmp/out.csv'",
                "SELECT * FROM read_text('.tmp/b04.csv')"):
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            view.con.execute(sql)
    for sql in ("SET temp_directory = '.tmp'", "SET memory_limit = '20GB'", "SET max_temp_directory_size = '10GB'"):
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            view.con.execute(sql)
    view.con.close()
    assert sorted(p.name for p in (tmp_path / ".tmp").iterdir()) == ["b04.csv"]


def test_a_banks_query_is_stopped_at_its_time_and_memory_limits(two_nights, capsys, monkeypatch):
    import time

    store, *_ = two_nights
    db = str(store / "night.duckdb")
    endless = "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"
    view = bank_connection(store / "publish", "B03")
    started = time.monotonic()
    with pytest.raises(AccessError, match="bank B03: the query ran longer than 0.5 s and was stopped"):
        view.query(endless, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert view.query("SELECT count(*) AS n FROM eligibility", timeout_s=5)["n"][0] > 0  # the connection goes on
    view.con.close()
    assert main(["bank", "query", "--bank", "B03", "--db", db, "--timeout", "0.5", endless]) == 2
    assert "ran longer than 0.5 s and was stopped" in capsys.readouterr().err
    monkeypatch.setenv(TIMEOUT_ENV, "0.4")
    assert main(["bank", "query", "--bank", "B03", "--db", db, endless]) == 2
    assert "ran longer than 0.4 s" in capsys.readouterr().err
    # no limit can be switched off: infinite, absurd or NaN times and sizes are refused in one line
    for flags in (["--timeout", "inf"], ["--timeout", "1e300"], ["--timeout", "nan"], ["--memory", "9000GB"]):
        try:
            code = main(["bank", "query", "--bank", "B03", "--db", db, *flags, "SELECT 1"])
        except SystemExit as exit_:  # argparse refuses the flag itself
            code = exit_.code
        assert code == 2, flags
        assert "at most" in capsys.readouterr().err
    monkeypatch.setenv(TIMEOUT_ENV, "inf")
    assert main(["bank", "query", "--bank", "B03", "--db", db, "SELECT 1"]) == 2
    assert f"{TIMEOUT_ENV}='inf' must be more than 0 and at most" in capsys.readouterr().err
    monkeypatch.delenv(TIMEOUT_ENV)
    # no disk to spill to: a query larger than the memory limit fails, where it once had 18.8 GiB and 90 % of the disk
    big = "SELECT count(*) FROM (SELECT DISTINCT i FROM range(50000000) t(i))"
    assert main(["bank", "query", "--bank", "B03", "--db", db, "--memory", "64MB", big]) == 2
    err = capsys.readouterr().err
    assert "Out of Memory" in err and len(err.strip().splitlines()) == 1
    # one huge value escapes DuckDB's buffer manager (it once peaked at 6 GB under a 1 GB limit): the
    # process itself is bounded
    assert main(["bank", "query", "--bank", "B03", "--db", db, "--memory", "200MB",
                 "SELECT length(repeat('abc', 1000000000)) AS n"]) == 2
    err = capsys.readouterr().err
    assert ("Out of Memory" in err or "more memory than its limit" in err) and len(err.strip().splitlines()) == 1
    assert DEFAULT_MEMORY == "1GB"


def test_a_catalogue_bank_id_that_is_not_a_plain_name_is_refused(tmp_path):
    import yaml

    from lending.products import DEFAULT_PRODUCTS, ProductError, load_products

    for bad in ("../B04", "B 03", "B03/x", ""):
        doc = yaml.safe_load(DEFAULT_PRODUCTS.read_text(encoding="utf-8"))
        doc["banks"][0]["bank_id"] = bad
        path = tmp_path / "products.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ProductError, match=re.escape(f"{path}: banks[0].bank_id: {bad!r} must be 1 to 32 letters, "
                                                         "digits or underscores")):
            load_products(path)


def test_a_past_night_read_again_keeps_out_every_firm_withdrawn_since(two_nights):
    """The one gate for a past night read again (a re-publication, a bank's batch or portfolio report of
    that night): authorised then and still authorised on the later night."""
    from lending.gate import authorised_firms_sql
    store, firm, _, _ = two_nights
    con = duckdb.connect(str(store / "night.duckdb"), read_only=True)
    on = {d: {u for (u,) in con.execute(authorised_firms_sql(d)).fetchall()} for d in (DAY1, DAY2)}
    again = {u for (u,) in con.execute(authorised_firms_sql(DAY1, still_on=DAY2)).fetchall()}
    con.close()
    assert firm in on[DAY1] and firm not in again and again == on[DAY1] & on[DAY2]
    assert on[DAY1] - on[DAY2] <= withdrawn(store, firm)  # what left is what the deliveries say


def test_each_bank_learns_the_same_night_what_changed_and_why_and_the_changes_rebuild_its_table(two_nights, tmp_path,
                                                                                                 capsys):
    """Each night's folder holds the pairs inserted, updated and withdrawn since the bank's previous
    publication; a revoked authorisation is a withdrawal with its reason and nothing of the firm but
    its key; the first table and the changes give the second (a night without the full table), byte for
    byte as a full publication of that night."""
    import json

    store, firm, first, _ = two_nights
    key = lambda f: set(zip(f["uscc"], f["product_id"]))  # noqa: E731
    stamps = ("uscc", "product_id", "as_of", "snapshot_id")
    for bank in sorted(first):
        folder = store / "publish" / bank / DAY2.isoformat()
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        old = pd.read_parquet(store / "publish" / bank / DAY1.isoformat() / "eligibility.parquet")
        new = bank_table(store / "publish", bank, DAY2)
        assert manifest["full_table"] is None and not (folder / "eligibility.parquet").exists()  # a Saturday
        changes = pd.read_parquet(folder / "changes.parquet")
        assert list(changes.columns) == ["change", "reason", *new.columns]
        assert manifest["base"] == DAY1.isoformat() and manifest["rows"] == len(new)
        assert manifest["stamps"]["as_of"] == DAY2.isoformat() and manifest["stamps"]["snapshot_id"] == new["snapshot_id"].iloc[0]
        out = changes[changes["change"] == "withdraw"]
        assert key(out) == key(old) - key(new) and key(changes[changes["change"] == "insert"]) == key(new) - key(old)
        both = old.merge(new, on=["uscc", "product_id"], suffixes=("_old", ""))
        differs = np.zeros(len(both), dtype=bool)
        for c in (c for c in new.columns if c not in stamps):
            a, b = both[c + "_old"], both[c]
            differs |= ((a != b) & ~(a.isna() & b.isna())).to_numpy()
        updated = changes[changes["change"] == "update"]
        assert key(updated) == key(both[differs])
        lost = both[both["eligible_old"] & ~both["eligible"]]
        assert key(updated[updated["reason"].notna()]) == key(lost)
        assert set(updated["reason"].dropna()) <= {"vetoed", "no_longer_eligible"}
        # a withdrawn authorisation: its reason, and nothing of the firm but its key
        for u in set(out["uscc"]) & withdrawn(store, firm):
            rows = out[out["uscc"] == u]
            assert (rows["reason"] == "authorisation_ended").all()
            assert rows.drop(columns=["change", "reason", "uscc", "product_id"]).isna().all().all()
        if firm in first[bank]:
            assert key(out[out["uscc"] == firm]) == key(old[old["uscc"] == firm])
        assert manifest["changes"] == {k: int((changes["change"] == k).sum()) for k in ("insert", "update", "withdraw")}
        # the first night's changes are its whole table
        day1 = json.loads((store / "publish" / bank / DAY1.isoformat() / "manifest.json").read_text(encoding="utf-8"))
        assert day1["base"] is None and day1["changes"] == {"insert": len(old), "update": 0, "withdraw": 0}

        assert main(["bank", "rebuild", "--bank", bank, "--from", DAY1.isoformat(), "--out", str(tmp_path / bank),
                     "--db", str(store / "night.duckdb")]) == 0
        full = store.parent / "full_publication" / bank / DAY2.isoformat()  # night 2 published whole
        for name in ("eligibility.parquet", "eligibility.csv"):
            assert (tmp_path / bank / name).read_bytes() == (full / name).read_bytes(), (bank, name)
    assert main(["bank", "rebuild", "--bank", "B01", "--date", DAY1.isoformat(), "--from", DAY2.isoformat(),
                 "--out", str(tmp_path / "x"), "--db", str(store / "night.duckdb")]) == 2
    assert "--from 2026-11-28 is after the date to rebuild, 2026-11-27" in capsys.readouterr().err
