"""Tables kept by validity range (valuecredit.ranges): every night reads back exactly as written,
whatever order nights are written, run again or back-filled in; storage grows with change."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from valuecredit.ranges import ranges_of
from valuecredit.schema import ensure
from valuecredit.store import replace_date, transaction

PAIRS, HITS = "decisions.eligibility_pairs", "scores.negative_hits"
D0 = date(2026, 10, 1)


def pairs_select(rows: list[tuple]) -> str:
    """A night of pairs as a SELECT (uscc, as_of, product_id, unmet, eligible, computed_limit_fen)."""
    values = ", ".join(f"('{u}', DATE '{d}', '{p}', {m}, {e}, {'NULL' if lim is None else lim})"
                       for u, d, p, m, e, lim in rows)
    return (f"SELECT uscc, as_of, product_id, unmet::USMALLINT AS unmet, eligible, computed_limit_fen::BIGINT AS "
            f"computed_limit_fen FROM (VALUES {values}) t(uscc, as_of, product_id, unmet, eligible, computed_limit_fen)"
            if rows else "SELECT 'x' AS uscc, DATE '2000-01-01' AS as_of, 'p' AS product_id, 0::USMALLINT AS unmet, "
                         "true AS eligible, 0::BIGINT AS computed_limit_fen WHERE false")


def read(con, table: str, night: date) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM {table} WHERE as_of = ?", [night]).fetchall(), key=repr)


def write(con, table: str, night: date, select: str, create: bool = False) -> None:
    with transaction(con):
        replace_date(con, table, night, select, create=create)


def night_of_pairs(rng: random.Random, night: date, firms: int, previous: dict) -> dict:
    """Mostly the previous night again: a few firms change a value, leave or arrive."""
    rows = dict(previous)
    for f in range(firms):
        for p in ("P1", "P2"):
            key = (f"F{f:03d}", p)
            if key not in rows or rng.random() < 0.08:
                rows[key] = (rng.randint(0, 3), rng.random() < 0.5, rng.choice([None, 100_000, 250_000]))
    for key in rng.sample(sorted(rows), 2):
        del rows[key]
    return rows


def as_rows(night: date, rows: dict) -> list[tuple]:
    return [(u, night, p, *v) for (u, p), v in sorted(rows.items())]


@pytest.mark.parametrize("pairing_rows", [None, 7], ids=["in one piece", "in parts"])
def test_random_nights_rerun_and_backfilled_read_back_exactly_as_written(monkeypatch, pairing_rows):
    import valuecredit.ranges

    if pairing_rows:  # a night paired in parts by the firm's hash, as at provincial scale
        monkeypatch.setattr(valuecredit.ranges, "PAIRING_ROWS", pairing_rows)
    rng = random.Random(7)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    con.execute("CREATE SCHEMA meta")
    truth: dict[date, list[tuple]] = {}
    previous: dict = {}
    nights = [D0 + timedelta(days=2 * i) for i in range(12)]
    order = nights[::2] + nights[1::2]  # every other night first, the rest back-filled between them
    order += rng.sample(nights, 6)  # then some run again, with other rows
    for night in order:
        previous = night_of_pairs(rng, night, 25, previous)
        truth[night] = sorted(as_rows(night, previous), key=repr)
        write(con, PAIRS, night, pairs_select(truth[night]), create=True)
        for held in truth:
            assert read(con, PAIRS, held) == truth[held], (night, held)
    assert read(con, PAIRS, D0 + timedelta(days=1)) == []  # a night never written shows nothing
    # the same rows again write nothing
    stored = con.execute(f"SELECT * FROM {ranges_of(PAIRS)} ORDER BY ALL").fetchall()
    for night in rng.sample(nights, 4):
        write(con, PAIRS, night, pairs_select(truth[night]))
    assert con.execute(f"SELECT * FROM {ranges_of(PAIRS)} ORDER BY ALL").fetchall() == stored


def test_an_empty_night_and_rows_repeated_within_a_night_are_kept_as_written():
    con = duckdb.connect()
    with transaction(con):
        ensure(con, HITS)
    hit = "('F1', DATE '{d}', 'N04', '经营异常', 'listings', DATE '2026-09-01', 'listed')"
    nights = [D0, D0 + timedelta(days=1), D0 + timedelta(days=2), D0 + timedelta(days=3)]
    copies = [2, 1, 0, 2]  # the same hit twice, once, not at all, twice again
    for night, n in zip(nights, copies):
        rows = ", ".join([hit.format(d=night)] * n) or hit.format(d=night)
        write(con, HITS, night, f"SELECT * FROM (VALUES {rows}) t(uscc, as_of, rule_id, rule, source, evidence_date, "
                                f"detail) {'WHERE false' if n == 0 else ''}")
    assert [len(read(con, HITS, n)) for n in nights] == copies
    write(con, HITS, nights[1], f"SELECT * FROM (VALUES {hit.format(d=nights[1])}, {hit.format(d=nights[1])}, "
                                f"{hit.format(d=nights[1])}) t(uscc, as_of, rule_id, rule, source, evidence_date, detail)")
    assert [len(read(con, HITS, n)) for n in nights] == [2, 3, 0, 2]


def test_storage_grows_with_change_not_with_nights():
    rng = random.Random(3)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    rows: dict = {}
    written = new_or_changed = 0
    for i in range(30):
        night = D0 + timedelta(days=i)
        before, rows = rows, night_of_pairs(rng, night, 200, rows)
        new_or_changed += sum(before.get(key) != value for key, value in rows.items())
        write(con, PAIRS, night, pairs_select(as_rows(night, rows)), create=True)
        written += len(rows)
    # one stored row per row that arrived or changed, however many nights it held for
    assert con.execute(f"SELECT count(*) FROM {ranges_of(PAIRS)}").fetchone()[0] == new_or_changed
    assert written > 8 * new_or_changed  # 30 nights of about 400 rows, about 8 % of them changing each night
    assert con.execute(f"SELECT count(*) FROM {PAIRS}").fetchone()[0] == written


def test_a_per_night_table_of_an_earlier_version_moves_into_ranges():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA scores")
    nights = [D0, D0 + timedelta(days=1), D0 + timedelta(days=5)]
    con.execute("CREATE TABLE scores.explanations (uscc VARCHAR, as_of DATE, feature VARCHAR, contribution DOUBLE)")
    for i, night in enumerate(nights):
        con.execute("INSERT INTO scores.explanations VALUES (?, ?, 'debt_ratio', ?), (?, ?, 'tax_grade', 0.5)",
                    ["F1", night, 0.25 if i < 2 else 0.75, "F1", night])
    before = {n: read(con, "scores.explanations", n) for n in nights}
    with transaction(con):
        ensure(con, "scores.explanations")
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'explanations'").fetchall() \
        == [("VIEW",)]
    # adverse_rank was added since: NULL on the nights written before it
    assert {n: [r[:4] for r in read(con, "scores.explanations", n)] for n in nights} == before
    assert con.execute(f"SELECT count(*) FROM {ranges_of('scores.explanations')}").fetchone()[0] == 3


def test_a_night_that_fails_halfway_leaves_the_ranges_as_they_were():
    table = PAIRS
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    rows = night_of_pairs(random.Random(1), D0, 10, {})
    write(con, table, D0, pairs_select(as_rows(D0, rows)), create=True)
    stored = con.execute(f"SELECT * FROM {ranges_of(table)} ORDER BY ALL").fetchall()
    bad = pairs_select(as_rows(D0 + timedelta(days=1), rows)).replace("unmet::USMALLINT", "(unmet - 9)::USMALLINT")
    with pytest.raises(duckdb.ConversionException):
        write(con, table, D0 + timedelta(days=1), bad)
    assert con.execute(f"SELECT * FROM {ranges_of(table)} ORDER BY ALL").fetchall() == stored
    assert con.execute(f"SELECT DISTINCT as_of FROM {table}").fetchall() == [(D0,)]


def test_a_move_into_ranges_cut_short_leaves_the_per_night_table_whole(monkeypatch):
    """The move runs in a transaction of its own (its callers call `ensure` outside theirs): a
    failure on the second night leaves the earlier layout as it was, and the next try moves it all,
    a column no night writes any more included."""
    import valuecredit.ranges as ranges

    con = duckdb.connect()
    con.execute("CREATE SCHEMA scores")
    con.execute("CREATE TABLE scores.negative_hits (uscc VARCHAR, as_of DATE, rule_id VARCHAR, legacy_flag INTEGER)")
    nights = [D0, D0 + timedelta(days=1), D0 + timedelta(days=2)]
    for i, night in enumerate(nights):
        con.execute("INSERT INTO scores.negative_hits VALUES ('F1', ?, 'N01', ?)", [night, i])
    real, calls = ranges.write_night, []

    def failing_on_the_second(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(ranges, "write_night", failing_on_the_second)
    with pytest.raises(OSError):
        ensure(con, HITS)
    assert con.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'scores'"
                       ).fetchall() == [("negative_hits", "BASE TABLE")]
    assert con.execute("SELECT count(*) FROM scores.negative_hits").fetchone()[0] == 3
    monkeypatch.setattr(ranges, "write_night", real)
    ensure(con, HITS)
    assert con.execute(f"SELECT as_of, rule_id, legacy_flag FROM {HITS} ORDER BY as_of").fetchall() == [
        (n, "N01", i) for i, n in enumerate(nights)]


def test_a_night_without_a_column_the_ranges_hold_reads_it_as_null():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    write(con, PAIRS, D0, "SELECT 'F1' AS uscc, DATE '2026-10-01' AS as_of, 'P1' AS product_id, 400 AS rate_bp",
          create=True)
    later = D0 + timedelta(days=1)
    write(con, PAIRS, later, "SELECT 'F1' AS uscc, DATE '2026-10-02' AS as_of, 'P1' AS product_id")
    assert read(con, PAIRS, D0) == [("F1", D0, "P1", 400)]
    assert read(con, PAIRS, later) == [("F1", later, "P1", None)]


def test_a_double_reads_back_with_the_sign_it_was_written_with():
    import struct

    con = duckdb.connect()
    with transaction(con):
        ensure(con, "scores.explanations")
    bits = []
    for i, value in enumerate(["0.0", "-0.0", "-0.0", "0.0"]):
        night = D0 + timedelta(days=i)
        write(con, "scores.explanations", night, f"SELECT 'F1' AS uscc, DATE '{night}' AS as_of, 'debt_ratio' AS feature, "
                                                 f"{value}::DOUBLE AS contribution, NULL::SMALLINT AS adverse_rank")
        (contribution,) = con.execute("SELECT contribution FROM scores.explanations WHERE as_of = ?", [night]).fetchone()
        bits.append(struct.pack(">d", contribution)[0] >> 7)
    assert bits == [0, 1, 1, 0]
    assert con.execute(f"SELECT count(*) FROM {ranges_of('scores.explanations')}").fetchone()[0] == 3


def test_a_key_written_twice_with_other_values_is_refused():
    from valuecredit.ranges import RepeatedKey

    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    rows = [("F1", D0, "P1", 0, True, 100), ("F2", D0, "P1", 0, True, 100)]
    write(con, PAIRS, D0, pairs_select(rows), create=True)
    later = D0 + timedelta(days=1)
    again = [(u, later, *rest) for u, _, *rest in rows] + [("F2", later, "P1", 1, False, None)]
    with pytest.raises(RepeatedKey, match=r"decisions.eligibility_pairs on 2026-10-02: two rows for \{'uscc': 'F2', "
                                          r"'product_id': 'P1'\}"):
        write(con, PAIRS, later, pairs_select(again))
    assert read(con, PAIRS, later) == []  # nothing of the night was kept


def test_a_night_is_paired_in_the_ranges_types_and_refuses_a_column_they_lack(monkeypatch):
    import valuecredit.ranges

    monkeypatch.setattr(valuecredit.ranges, "PAIRING_ROWS", 3)  # ten rows in four parts
    con = duckdb.connect()
    with transaction(con):
        ensure(con, HITS)
    night = ("SELECT {u} AS uscc, DATE '{d}' AS as_of, 'N01' AS rule_id, 'r' AS rule, 's' AS source, "
             "DATE '2026-09-01' AS evidence_date, 'x' AS detail FROM range(10) t(i)")
    write(con, HITS, D0, night.format(u="CAST(i AS VARCHAR)", d=D0))
    later = D0 + timedelta(days=1)
    write(con, HITS, later, night.format(u="i", d=later))  # the same firms, given as numbers
    assert con.execute(f"SELECT count(*) FROM {ranges_of(HITS)}").fetchone()[0] == 10  # nothing changed
    with pytest.raises(ValueError, match="scores.negative_hits: the night's rows have columns the table does not: extra"):
        write(con, HITS, later, night.format(u="i", d=later).replace(" FROM range", ", 1 AS extra FROM range"))


INDICATORS = "features.indicators"


def firms_select(night: date, firms: dict[str, tuple], snapshot: str | None) -> str:
    """A night of (uscc, as_of, years_in_operation, revenue_12m, snapshot_id): each firm's years are
    counted from its founding date as the indicators count them, unless given as a number."""
    d = f"DATE '{night}'"
    rows = ", ".join(
        f"('{u}', {d}, " + (f"date_diff('day', DATE '{since}', {d}) / 365.25" if isinstance(since, date) else
                            f"CAST('{since}' AS DOUBLE)") + f", CAST({revenue} AS DOUBLE), {'NULL' if snapshot is None else repr(snapshot)})"
        for u, (since, revenue) in sorted(firms.items()))
    return f"SELECT * FROM (VALUES {rows}) t(uscc, as_of, years_in_operation, revenue_12m, snapshot_id)"


def bits(rows: list[tuple]) -> list[tuple]:
    """Rows with each double as its bits: -0.0 and 0.0, or two NaNs, are told apart exactly."""
    import struct

    return [tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in row) for row in rows]


def test_a_table_stamped_per_night_and_counting_years_keeps_a_row_per_firm_while_nothing_changes():
    """The night's snapshot and the years in operation move every night for every firm: they are kept
    beside the night and as the founding date, so an unchanged firm keeps one range, and every night
    reads back bit for bit as written."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    firms = {f"F{i:02d}": (date(2010 + i % 10, 1 + i % 12, 1 + i % 28), 1000.0 * i) for i in range(20)}
    nights = [D0 + timedelta(days=i) for i in range(10)]
    written = {}
    for i, night in enumerate(nights):
        if i == 5:  # one firm's revenue is corrected, another's founding date
            firms["F03"] = (firms["F03"][0], 1.5)
            firms["F04"] = (date(2001, 2, 3), firms["F04"][1])
        written[night] = bits(duckdb.sql(firms_select(night, firms, f"snap-{i}")).fetchall())
        write(con, INDICATORS, night, firms_select(night, firms, f"snap-{i}"), create=True)
    for night in nights:
        assert bits(sorted(con.execute(f"SELECT * FROM {INDICATORS} WHERE as_of = ?", [night]).fetchall())) \
            == written[night], night
    # 20 firms, 2 of which changed once: 22 ranges for 200 rows written
    assert con.execute(f"SELECT count(*) FROM {ranges_of(INDICATORS)}").fetchone()[0] == 22
    assert con.execute(f"SELECT DISTINCT snapshot_id FROM {ranges_of(INDICATORS)}").fetchall() == [(None,)]
    # a past night run again with another snapshot: its rows and every other night's stay as written
    write(con, INDICATORS, nights[2], firms_select(nights[2], firms, "snap-again"))
    assert con.execute(f"SELECT DISTINCT snapshot_id FROM {INDICATORS} WHERE as_of = ?", [nights[2]]).fetchall() \
        == [("snap-again",)]
    assert con.execute(f"SELECT DISTINCT snapshot_id FROM {INDICATORS} WHERE as_of = ?", [nights[3]]).fetchall() \
        == [("snap-3",)]


@pytest.mark.parametrize("years", ["3.0", "-0.0", "NaN", "inf", "-2.5", "1e300"])
def test_years_not_counted_from_a_date_read_back_as_written(years):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    firms = {"F1": (years, 10.0), "F2": (date(2015, 6, 1), 20.0), "F3": (None, 30.0)}
    for night in (D0, D0 + timedelta(days=1)):
        select = firms_select(night, firms, "s").replace("CAST('None' AS DOUBLE)", "NULL::DOUBLE")
        written = bits(duckdb.sql(select).fetchall())
        write(con, INDICATORS, night, select, create=True)
        assert bits(sorted(con.execute(f"SELECT * FROM {INDICATORS} WHERE as_of = ?", [night]).fetchall())) == written
    # F1's value is kept as written and held on; F2 counted from its founding date; F3 NULL
    assert con.execute(f"SELECT count(*) FROM {ranges_of(INDICATORS)}").fetchone()[0] == 3


def test_a_night_whose_rows_hold_two_snapshots_is_refused_and_writes_nothing():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    firms = {"F1": (date(2015, 6, 1), 1.0), "F2": (date(2016, 6, 1), 2.0)}
    write(con, INDICATORS, D0, firms_select(D0, firms, "s0"), create=True)
    later = D0 + timedelta(days=1)
    mixed = f"{firms_select(later, {'F1': firms['F1']}, 's1')} UNION ALL {firms_select(later, {'F2': firms['F2']}, 's2')}"
    with pytest.raises(ValueError, match="features.indicators on 2026-10-02: column snapshot_id holds 2 values"):
        write(con, INDICATORS, later, mixed)
    half = f"{firms_select(later, {'F1': firms['F1']}, 's1')} UNION ALL {firms_select(later, {'F2': firms['F2']}, None)}"
    with pytest.raises(ValueError, match="holds 1 values and NULL"):
        write(con, INDICATORS, later, half)
    assert con.execute(f"SELECT count(*) FROM {INDICATORS} WHERE as_of = ?", [later]).fetchone()[0] == 0
    assert len(read(con, INDICATORS, D0)) == 2


def test_an_earlier_versions_night_of_mixed_snapshots_moves_in_as_written():
    """An earlier version wrote 'None' beside NULL when a night had no snapshot: moved in, its rows
    keep their own stamps (nothing it holds is lost), and the next night's one value is kept beside
    the night again."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    firms = {"F1": (date(2015, 6, 1), 1.0), "F2": (date(2016, 6, 1), 2.0)}
    nights = [D0 + timedelta(days=i) for i in range(4)]
    selects = [
        firms_select(nights[0], firms, "s0"),
        f"{firms_select(nights[1], {'F1': firms['F1']}, 's1')} UNION ALL {firms_select(nights[1], {'F2': firms['F2']}, 's2')}",
        f"{firms_select(nights[2], {'F1': firms['F1']}, 'None')} UNION ALL {firms_select(nights[2], {'F2': firms['F2']}, None)}",
        firms_select(nights[3], firms, None).replace("NULL)", "NULL::VARCHAR)"),
    ]
    con.execute(f"CREATE TABLE {INDICATORS} AS {' UNION ALL '.join(selects)}")
    with transaction(con):
        ensure(con, INDICATORS)
    columns = "uscc, as_of, years_in_operation, revenue_12m, snapshot_id"
    for night, select in zip(nights, selects):
        assert bits(con.execute(f"SELECT {columns} FROM {INDICATORS} WHERE as_of = ? ORDER BY uscc", [night]).fetchall()) \
            == bits(sorted(duckdb.sql(select).fetchall())), night
    # each night's rows are new ranges, but F2's on the last night: NULL on its row the night before,
    # NULL beside the night after, it reads the same and its range holds on
    assert con.execute(f"SELECT count(*) FROM {ranges_of(INDICATORS)}").fetchone()[0] == 2 + 2 + 2 + 1
    write(con, INDICATORS, nights[3] + timedelta(days=1), firms_select(nights[3] + timedelta(days=1), firms, "s4"))
    assert con.execute(f"SELECT DISTINCT snapshot_id FROM {INDICATORS} WHERE as_of = ?",
                       [nights[3] + timedelta(days=1)]).fetchall() == [("s4",)]


def test_a_night_with_a_snapshot_typed_null_is_written():
    """A night without a snapshot: the column is a bare NULL, whose type DuckDB names "NULL"."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    write(con, INDICATORS, D0, firms_select(D0, {"F1": (date(2015, 6, 1), 1.0)}, "s0"), create=True)
    write(con, INDICATORS, D0 + timedelta(days=1),
          "SELECT 'F1' AS uscc, DATE '2026-10-02' AS as_of, 1.0::DOUBLE AS revenue_12m, NULL AS snapshot_id")
    assert con.execute(f"SELECT revenue_12m, snapshot_id FROM {INDICATORS} ORDER BY as_of").fetchall() == [
        (1.0, "s0"), (1.0, None)]


def test_a_per_night_table_keeps_its_own_column_types_and_its_timestamped_nights_when_moved_in():
    """An earlier version wrote the PD inputs from a DataFrame (nights as timestamps) and the scores in
    the DECIMAL scale of the catalogue's weights of their first night: moved in, every night reads
    back as it was, and later nights are cast into those types as its inserts by name cast them."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA scores")
    con.execute("CREATE TABLE scores.commercial_value AS SELECT 'F1' AS uscc, TIMESTAMP '2026-10-01' AS as_of, "
                "12.375::DECIMAL(8,3) AS innovation, 55.55555555555556::DOUBLE AS operations, 's0' AS snapshot_id")
    con.execute("INSERT INTO scores.commercial_value VALUES ('F1', TIMESTAMP '2026-10-02', 12.375, 55.55555555555556, 's1'),"
                " ('F2', TIMESTAMP '2026-10-02', 1.5, 2.5, 's1')")
    before = con.execute("SELECT uscc, CAST(as_of AS DATE), innovation, operations, snapshot_id FROM scores.commercial_value "
                         "ORDER BY ALL").fetchall()
    tonight = ("SELECT 'F1' AS uscc, DATE '2026-10-03' AS as_of, 12.38::DECIMAL(7,2) AS innovation, "
               "55.5::DOUBLE AS operations, 's2' AS snapshot_id")
    write(con, "scores.commercial_value", D0 + timedelta(days=2), tonight, create=True)
    after = con.execute("SELECT * FROM scores.commercial_value ORDER BY as_of, uscc").fetchall()
    assert sorted(after[:3]) == before
    assert after[3] == ("F1", D0 + timedelta(days=2), Decimal("12.380"), 55.5, "s2")
    assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'commercial_value_ranges' "
                       "AND column_name = 'innovation'").fetchone() == ("DECIMAL(8,3)",)


def test_a_store_whose_nights_held_no_stamps_gains_them_and_its_per_night_indicators_move_in():
    """A store of the previous version: ranges already kept for the pairs (`meta.nights_held` without
    the stamp), and the indicators a table per night."""
    con = duckdb.connect()
    for schema in ("features", "decisions", "meta"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute("CREATE TABLE meta.nights_held (table_name VARCHAR, as_of DATE)")
    write(con, PAIRS, D0, pairs_select([("F1", D0, "P1", 0, True, 100)]), create=True)
    firms = {"F1": (date(2015, 6, 1), 1.0), "F2": (date(2016, 6, 1), 2.0)}
    nights = [D0, D0 + timedelta(days=1), D0 + timedelta(days=2)]
    con.execute(f"CREATE TABLE {INDICATORS} AS {firms_select(D0, firms, 's0')}")
    for i, night in enumerate(nights[1:], 1):
        con.execute(f"INSERT INTO {INDICATORS} {firms_select(night, firms, f's{i}')}")
    columns = "uscc, as_of, years_in_operation, revenue_12m, snapshot_id"
    before = {n: bits(con.execute(f"SELECT {columns} FROM {INDICATORS} WHERE as_of = ? ORDER BY uscc", [n]).fetchall())
              for n in nights}
    with transaction(con):
        ensure(con, INDICATORS)  # the declared shape: the other indicators are NULL on these nights
    assert {n: bits(con.execute(f"SELECT {columns} FROM {INDICATORS} WHERE as_of = ? ORDER BY uscc", [n]).fetchall())
            for n in nights} == before
    assert con.execute(f"SELECT count(*) FROM {ranges_of(INDICATORS)}").fetchone()[0] == 2  # a range per firm
    assert read(con, PAIRS, D0) == [("F1", D0, "P1", 0, True, 100)]


def test_a_view_an_earlier_version_made_is_made_again_by_a_writer():
    """A store made by an earlier release holds its view (here: stamps read from the nights held
    alone, as b82a5c4 made it); the next writer to ensure the table makes the view of this release,
    so an earlier store's night of mixed stamps moved in reads back as written."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA features")
    firms = {"F1": (date(2015, 6, 1), 1.0), "F2": (date(2016, 6, 1), 2.0)}
    mixed = f"{firms_select(D0, {'F1': firms['F1']}, 's1')} UNION ALL {firms_select(D0, {'F2': firms['F2']}, 's2')}"
    con.execute(f"CREATE TABLE {INDICATORS} AS {mixed}")
    with transaction(con):
        ensure(con, INDICATORS)
    shown = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {INDICATORS})").fetchall()]
    old_view = ", ".join("n.snapshot_id" if c == "snapshot_id" else "n.as_of" if c == "as_of" else
                         "NULL::DOUBLE AS years_in_operation" if c == "years_in_operation" else f"r.{c}" for c in shown)
    con.execute(f"CREATE OR REPLACE VIEW {INDICATORS} AS SELECT {old_view} FROM {ranges_of(INDICATORS)} r JOIN "
                "meta.nights_held n ON n.table_name = 'features.indicators' AND n.as_of >= r.valid_from AND n.as_of < r.valid_to")
    assert con.execute(f"SELECT DISTINCT snapshot_id FROM {INDICATORS}").fetchall() == [(None,)]
    with transaction(con):
        ensure(con, INDICATORS)
    assert con.execute(f"SELECT uscc, snapshot_id FROM {INDICATORS} ORDER BY uscc").fetchall() == [("F1", "s1"), ("F2", "s2")]
