"""Publication to each bank: only its products, only authorised firms, masked; readers never see a
partial table; a failed publication leaves the previous one byte-identical."""

import errno
import hashlib
import threading
from datetime import date

import duckdb
import pandas as pd
import pytest

import lending.publish as publishing
from data_contracts.identifiers import mask_name
from data_contracts.personal import mask_sql
from lending.products import load_products
from lending.publish import publish

PRODUCTS = load_products()
DAY1, DAY2 = date(2026, 11, 27), date(2026, 11, 28)


@pytest.fixture(scope="module")
def decided(score_universe, tmp_path_factory):
    work = tmp_path_factory.mktemp("publish")
    night = score_universe(work, (DAY1, DAY2), products=PRODUCTS)
    yield night.con, work / "night.duckdb", work
    night.con.close()


def digest(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_masking_in_sql_is_the_same_as_in_python():
    names = ["张三明", "张三", "张", "欧阳小明", "", None, "司马相如文"]
    con = duckdb.connect()
    got = [con.execute(f"SELECT {mask_sql('$1::VARCHAR')}", [n]).fetchone()[0] for n in names]
    assert got == [mask_name(n) for n in names] == ["张*明", "张*", "*", "欧**明", "", None, "司***文"]


def test_each_bank_gets_only_its_products_authorised_firms_and_no_personal_data(decided):
    con, _, work = decided
    out = work / "out"
    s = publish(con, DAY1, PRODUCTS, out)
    assert s.banks == 17 and sum(s.rows.values()) > 0
    unauthorised = {u for (u,) in con.execute(
        "SELECT DISTINCT uscc FROM decisions.eligibility WHERE as_of = ? AND NOT authorised", [DAY1]).fetchall()}
    ids = {i for (i,) in con.execute("SELECT DISTINCT legal_rep_id FROM staging.registry").fetchall()}
    for bank in PRODUCTS.banks:
        own = {p["product_id"] for p in PRODUCTS.products if p["bank_id"] == bank}
        table = con.execute(f"SELECT * FROM bank_{bank.lower()}.eligibility").df()
        files = out / bank / DAY1.isoformat()
        csv = pd.read_csv(files / "eligibility.csv", encoding="utf-8-sig", dtype=str)
        assert (files / "eligibility.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese
        assert 0 < len(table) == len(csv) == s.rows[bank] and set(table["product_id"]) <= own
        assert not set(table["uscc"]) & unauthorised
        assert table["legal_rep"].str.contains(r"\*").all() and "legal_rep_id" not in table.columns
        assert not set(csv.astype(str).stack()) & ids
        assert table["model_version"].notna().all() and table["snapshot_id"].notna().all()
        assert (out / bank / "LATEST").read_text().strip() == DAY1.isoformat()
        workbook = pd.read_excel(files / "eligibility.xlsx", sheet_name=None)
        assert len(workbook["eligible 可贷"]) == int(table["eligible"].sum())
        near = workbook["near misses 差一步"]  # prospects: one condition short, eligible for none of the bank's products
        assert not set(near["uscc"]) & set(table.loc[table["eligible"], "uscc"])
        assert near["gates"].isna().all() and near["shortfalls"].notna().all() and not near["shortfalls"].str.contains(";").any()
    assert sorted(p.name for p in out.iterdir()) == sorted(PRODUCTS.banks)


def test_a_failed_publication_leaves_the_previous_one_byte_identical(decided, monkeypatch):
    con, _, work = decided
    out = work / "out_fail"
    publish(con, DAY1, PRODUCTS, out)
    before = digest(out)
    tables = {b: con.execute(f"SELECT * FROM bank_{b.lower()}.eligibility ORDER BY ALL").df() for b in ("B01", "B17")}
    written = []
    real = publishing._write_files

    def fail_on_the_fifth_bank(con, schema, folder, *rest):
        written.append(folder)
        if len(written) == 5:
            raise OSError("disk full")
        return real(con, schema, folder, *rest)

    monkeypatch.setattr(publishing, "_write_files", fail_on_the_fifth_bank)
    with pytest.raises(OSError, match="disk full"):
        publish(con, DAY2, PRODUCTS, out)
    assert digest(out) == before  # no partial folder left behind, LATEST unchanged
    for b, t in tables.items():
        pd.testing.assert_frame_equal(t, con.execute(f"SELECT * FROM bank_{b.lower()}.eligibility ORDER BY ALL").df())


def test_a_reader_during_publication_sees_the_old_table_or_the_new_never_a_partial_one(decided):
    con, db, work = decided
    publish(con, DAY1, PRODUCTS, work / "out_read")
    expected = {DAY1: con.execute("SELECT count(*) FROM bank_b03.eligibility").fetchone()[0],
                DAY2: con.execute(f"SELECT count(*) FROM ({publishing.bank_rows_sql(DAY2, 'B03')})").fetchone()[0]}
    seen, stop = [], threading.Event()

    def read():
        reader = con.cursor()  # another connection to the same database, as a bank's session would be
        while not stop.is_set():
            seen.append(reader.execute("SELECT list(DISTINCT as_of), count(*) FROM bank_b03.eligibility").fetchone())
        reader.close()

    t = threading.Thread(target=read)
    t.start()
    try:
        for day in (DAY2, DAY1, DAY2):
            publish(con, day, PRODUCTS, work / "out_read")
    finally:
        stop.set()
        t.join()
    assert len(seen) > 3
    for days, rows in seen:
        assert len(days) == 1 and rows == expected[days[0]]


def test_the_same_night_published_twice_gives_the_same_bytes(decided):
    con, _, work = decided
    publish(con, DAY2, PRODUCTS, work / "once")
    publish(con, DAY2, PRODUCTS, work / "twice")
    once, twice = digest(work / "once"), digest(work / "twice")
    assert len(once) == len(PRODUCTS.banks) * 9  # per bank: 8 files in the date's folder (3 of them the changes), and LATEST
    assert once == twice


class Killed(BaseException):
    """The process dying at this step (not an Exception: nothing may catch it)."""


def contents(folder) -> dict:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


OLD = {"eligibility.csv": "old rows", "early_warnings.csv": "old warnings"}
NEW = {"eligibility.csv": "new rows", "early_warnings.csv": "new warnings"}


def a_bank_folder(root, latest: str, dates: dict[str, dict]):
    bank = root / "B03"
    for day, files in dates.items():
        (bank / day).mkdir(parents=True)
        for name, text in files.items():
            (bank / day / name).write_text(text)
    (bank / "LATEST").write_text(latest + "\n")
    return bank


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "no exchange"])
@pytest.mark.parametrize("kill_at", range(1, 8))
def test_a_crash_at_any_step_of_publishing_a_date_again_leaves_latest_on_a_complete_folder(tmp_path, monkeypatch,
                                                                                          kill_at, exchange):
    """Re-publishing a date swaps its folder: a kill before any step of it (simulated by the step
    raising) leaves LATEST naming a complete folder, old or new; with the atomic exchange, so does
    every instant between two steps. The next publication clears what is left."""
    import os
    import shutil

    d = DAY2.isoformat()
    bank = a_bank_folder(tmp_path, d, {DAY1.isoformat(): OLD, d: OLD})
    partial = bank / f".{d}.partial"
    shutil.copytree(bank / d, partial)
    for name, text in NEW.items():
        (partial / name).write_text(text)
    steps = []

    def latest_is_complete() -> bool:
        named = bank / (bank / "LATEST").read_text().strip()
        return named.is_dir() and contents(named) in (OLD, NEW)

    def step(real):
        def run(*args, **kwargs):
            if exchange:
                assert latest_is_complete()  # at this instant, between two steps
            steps.append(real.__name__)
            if len(steps) == kill_at:
                raise Killed
            return real(*args, **kwargs)
        return run

    def no_exchange(a, b):
        raise OSError(errno.EINVAL, "not supported here")

    monkeypatch.setattr(publishing, "_exchange", step(publishing._exchange if exchange else no_exchange))
    for module, name in ((os, "replace"), (shutil, "rmtree")):
        monkeypatch.setattr(module, name, step(getattr(module, name)))
    monkeypatch.setattr(type(bank), "write_text", step(type(bank).write_text))
    try:
        publishing._put_in_place(bank, partial, DAY2)
        finished = True
    except Killed:
        finished = False
    monkeypatch.undo()
    # the steps: the exchange, deleting the old folder, writing LATEST aside, renaming it into place;
    # without the exchange, two renames take its place
    assert finished == (kill_at > (4 if exchange else 6)), steps
    if exchange or finished:
        assert latest_is_complete()
    publishing._tidy(bank)  # the next publication starts here
    assert latest_is_complete()
    assert sorted(p.name for p in bank.iterdir()) == [DAY1.isoformat(), d, "LATEST"]
    assert contents(bank / d) == NEW if finished or (exchange and kill_at > 1) or (not exchange and kill_at > 3) else OLD
    assert (bank / "LATEST").read_text() == d + "\n"


def test_a_publication_after_a_crash_restores_and_clears_what_the_crash_left(decided):
    """The old swap, killed between its two renames, left LATEST naming a folder set aside as
    `.replaced` (and `bank query` said nothing was published); the next publication puts it back,
    then publishes, and leaves no `.replaced`, `.partial` or `.LATEST.tmp` behind."""
    import os

    con, _, work = decided
    out = work / "out_crashed"
    publish(con, DAY1, PRODUCTS, out)
    before = digest(out)
    d = DAY1.isoformat()
    os.replace(out / "B03" / d, out / "B03" / f".{d}.replaced")  # killed inside the old swap
    (out / "B04" / f".{DAY2.isoformat()}.partial").mkdir()  # killed while writing the next night
    (out / "B04" / f".{DAY2.isoformat()}.partial" / "eligibility.csv.body").write_text("half")
    (out / "B05" / ".LATEST.tmp").write_text("2026-")
    publish(con, DAY1, PRODUCTS, out)
    assert digest(out) == before
    assert not [p for p in out.rglob(".*")]


def test_publishing_an_older_date_again_moves_neither_latest_nor_the_bank_tables_backwards(decided):
    con, _, work = decided
    out = work / "out_backwards"
    publish(con, DAY2, PRODUCTS, out)

    def tables(bank: str) -> dict[str, pd.DataFrame]:
        return {t: con.execute(f"SELECT * FROM bank_{bank.lower()}.{t} ORDER BY ALL").df()
                for t in ("eligibility", "early_warnings")}

    newest = {b: tables(b) for b in PRODUCTS.banks}
    s = publish(con, DAY1, PRODUCTS, out)  # a re-run of the night before: its own folder, rebuilt
    for bank in PRODUCTS.banks:
        assert (out / bank / "LATEST").read_text() == DAY2.isoformat() + "\n"
        assert sorted(p.name for p in (out / bank).iterdir()) == [DAY1.isoformat(), DAY2.isoformat(), "LATEST"]
        older = pd.read_parquet(out / bank / DAY1.isoformat() / "eligibility.parquet")
        assert len(older) == s.rows[bank] and set(older.as_of) <= {DAY1}
        for name, frame in tables(bank).items():
            pd.testing.assert_frame_equal(frame, newest[bank][name])
        assert set(pd.to_datetime(newest[bank]["eligibility"].as_of).dt.date) <= {DAY2}
    assert sum(len(t["eligibility"]) for t in newest.values()) > 0 and sum(s.rows.values()) > 0
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0  # none left over
    publish(con, DAY2, PRODUCTS, out)  # the same date again still replaces
    assert (out / "B03" / "LATEST").read_text() == DAY2.isoformat() + "\n"


def test_a_date_published_again_after_newer_ones_holds_no_firm_that_has_withdrawn_since(decided, monkeypatch):
    """A re-run of an older night rebuilt its folder with the firms authorised then, including those
    that have revoked since: the files themselves, not only the bank's sandbox, must leave them out."""
    con, _, work = decided
    out = work / "out_withdrawn"
    publish(con, DAY2, PRODUCTS, out)
    firm = pd.read_parquet(out / "B03" / DAY2.isoformat() / "eligibility.parquet")["uscc"].min()
    import lending.gate
    rule = lending.gate.authorised_on

    def revoked_since(as_of):  # `firm` withdrew its authorisation on DAY2
        return rule(as_of) if as_of < DAY2 else f"SELECT uscc FROM ({rule(as_of)}) WHERE uscc <> '{firm}'"

    monkeypatch.setattr(lending.gate, "authorised_on", revoked_since)
    publish(con, DAY1, PRODUCTS, out)
    folder = out / "B03" / DAY1.isoformat()
    # without the revocation the firm would be in that folder: it was decided, authorised, on DAY1
    assert con.execute("SELECT count(*) FROM decisions.eligibility_firms WHERE as_of = ? AND uscc = ? AND authorised",
                       [DAY1, firm]).fetchone()[0] == 1
    for name in ("eligibility.csv", "early_warnings.csv"):
        assert firm not in (folder / name).read_text(encoding="utf-8-sig")
    assert firm not in set(pd.read_parquet(folder / "eligibility.parquet").uscc)
    assert len(pd.read_parquet(folder / "eligibility.parquet")) > 0


def test_a_past_night_published_again_keeps_the_next_nights_table_outside_every_bank_folder(decided):
    """The next night's full table, rebuilt before its base is replaced, is the programme's own copy:
    written after that night, it could hold a firm that has withdrawn since, so no bank's folder gets
    it; a bank's sandbox still reads that night."""
    from lending.access import bank_connection
    from lending.delta import kept_root

    con, _, work = decided
    out = work / "out_kept"
    publish(con, DAY1, PRODUCTS, out)
    publish(con, DAY2, PRODUCTS, out)  # a Saturday: change files alone for the banks of Mondays
    sent = digest(out)
    publish(con, DAY1, PRODUCTS, out)  # the night before published again
    after = digest(out)
    changed = {p for p in set(sent) | set(after) if sent.get(p) != after.get(p)}
    assert all(p.split("/")[1] == DAY1.isoformat() for p in changed)  # the re-run's own folders at most
    kept = kept_root(out)
    assert not kept.is_relative_to(out)
    changes_only = [b for b in PRODUCTS.banks if not (out / b / DAY2.isoformat() / "eligibility.parquet").exists()]
    assert changes_only and sorted(p.name for p in kept.iterdir()) == sorted(changes_only)
    for bank in changes_only:
        view = bank_connection(out, bank, DAY2, PRODUCTS)
        assert view.con.execute("SELECT count(*) FROM eligibility").fetchone()[0] > 0
        view.con.close()
    assert not [p for p in kept.rglob(".*")]  # nothing left aside


def test_a_bank_folder_explains_its_columns_to_people_and_keeps_them_for_machines(decided):
    """The files had English machine names only, PDs to 17 digits and the date as text in the workbook."""
    import openpyxl

    con, _, work = decided
    publish(con, DAY2, PRODUCTS, work / "readable")
    files = work / "readable" / "B03" / DAY2.isoformat()
    raw = (files / "data_dictionary.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    dictionary = pd.read_csv(files / "data_dictionary.csv", encoding="utf-8-sig", dtype=str)
    assert list(dictionary.columns) == ["column", "中文名", "unit", "meaning"]
    csv = pd.read_csv(files / "eligibility.csv", encoding="utf-8-sig", dtype=str)
    warnings = pd.read_csv(files / "early_warnings.csv", encoding="utf-8-sig", dtype=str)
    assert set(csv.columns) | set(warnings.columns) <= set(dictionary["column"])  # every column explained
    assert dictionary.set_index("column").loc["limit_fen", "中文名"] == "预授信额度"
    assert list(csv.columns)[:4] == ["uscc", "firm_name", "legal_rep", "district_code"]  # machine columns unchanged
    known = csv["pd"].dropna()
    assert len(known) and known.map(lambda t: len(t.split(".")[-1]) <= 6).all()
    book = openpyxl.load_workbook(files / "eligibility.xlsx")
    sheet = book["eligible 可贷"]
    header = [c.value for c in sheet[1]]
    assert "预授信额度 (分" in sheet.cell(1, header.index("limit_fen") + 1).comment.text  # the Chinese name on the header
    assert sheet.max_row > 1  # the bank has firms: the date cells are there to look at
    cell = sheet.cell(2, header.index("as_of") + 1)
    assert cell.is_date and cell.value.date() == DAY2 and cell.number_format == "yyyy-mm-dd"
    assert "字段说明 columns" in book.sheetnames
