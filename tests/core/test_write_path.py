"""The one way a date's rows are written: a rerun replaces them, and a table made by an earlier
version gains the columns added since instead of refusing the night."""

from datetime import date

import duckdb
import pytest

from valuecredit.store import replace_date, transaction

D1, D2 = date(2026, 11, 27), date(2026, 11, 28)


def test_a_date_is_replaced_and_a_table_of_an_earlier_layout_gains_the_new_columns():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions")
    old = "SELECT 'A' AS uscc, DATE '2026-11-27' AS as_of, 1 AS n"
    with transaction(con):
        replace_date(con, "decisions.t", D1, old, create=True)
    new = "SELECT 'A' AS uscc, DATE '2026-11-28' AS as_of, 2 AS n, ['N13'] AS gate_rules, 'negative_list: N13' AS why"
    for _ in range(2):  # a rerun of the night replaces its rows
        with transaction(con):
            replace_date(con, "decisions.t", D2, new, create=True)
    assert con.execute("SELECT as_of, n, gate_rules, why FROM decisions.t ORDER BY as_of").fetchall() == [
        (D1, 1, None, None), (D2, 2, ["N13"], "negative_list: N13")]
    # without `create` a table is what its owner declared: a column it lacks is an error, not added
    with pytest.raises(duckdb.BinderException), transaction(con):
        replace_date(con, "decisions.t", D2, "SELECT 'A' AS uscc, DATE '2026-11-28' AS as_of, 3 AS extra")
    assert con.execute("SELECT count(*) FROM decisions.t WHERE as_of = ?", [D2]).fetchone()[0] == 1  # rolled back


def test_a_store_made_before_a_contract_gained_a_column_gets_it(tmp_path):
    """The registry gained `industry_division`: a store made before it holds the column last, NULL in
    the rows it had, and its staging view shows it (ingestion inserts by column name)."""
    from data_contracts.contracts import contract_for
    from valuecredit.store import connect

    db = tmp_path / "old.duckdb"
    con = connect(db)
    con.execute("ALTER TABLE raw.registry DROP COLUMN industry_division")  # the layout before the column
    con.execute("DROP VIEW staging.registry")
    con.execute("CREATE VIEW staging.registry AS SELECT uscc, name, _file, _delivered_on FROM raw.registry "
                "WHERE _superseded_on IS NULL")
    con.execute("INSERT INTO raw.registry (uscc, name, industry, _file, _delivered_on) "
                "VALUES ('A', '旧公司', 'C', 'old.csv', DATE '2026-10-08')")
    con.close()
    con = connect(db)  # the code of today opens it
    names = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'staging' "
                                       "AND table_name = 'registry' ORDER BY column_index").fetchall()]
    assert names == [*contract_for("registry").column_names, "_file", "_delivered_on"]
    assert con.execute("SELECT name, industry, industry_division FROM staging.registry").fetchall() == [("旧公司", "C", None)]
    con.close()


def test_a_staging_view_left_behind_by_an_interrupted_upgrade_is_made_again(tmp_path):
    """The raw table already has the contract's columns but its view was made before them (a crash
    between the two steps of an earlier version's upgrade): the next connection makes the view again."""
    from data_contracts.contracts import contract_for
    from valuecredit.store import connect

    db = tmp_path / "half.duckdb"
    con = connect(db)
    con.execute("CREATE OR REPLACE VIEW staging.registry AS SELECT uscc, name, _file, _delivered_on FROM raw.registry")
    con.close()
    con = connect(db)
    names = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'staging' "
                                       "AND table_name = 'registry' ORDER BY column_index").fetchall()]
    assert names == [*contract_for("registry").column_names, "_file", "_delivered_on"]
    con.close()


def test_a_table_where_the_store_keeps_a_view_is_named_not_replaced(tmp_path):
    from valuecredit.store import StoreLayoutError, connect

    db = tmp_path / "odd.duckdb"
    con = connect(db)
    con.execute("DROP VIEW staging.loans")
    con.execute("CREATE TABLE staging.loans AS SELECT 1 AS kept")
    con.close()
    with pytest.raises(StoreLayoutError, match=r"staging\.loans is a table: the store keeps a view there"):
        connect(db)
    check = duckdb.connect(str(db), read_only=True)
    assert check.execute("SELECT kept FROM staging.loans").fetchall() == [(1,)]  # nothing replaced
    check.close()
