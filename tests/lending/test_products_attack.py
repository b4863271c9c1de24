"""Hostile and careless input to the product kinds: draft catalogues an operator gets wrong, a
receivables file that lies, a bank reading another bank's loans in its publication, and limits that
must be exact in fen. Each case failed before its fix."""

import copy
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from data_contracts.contracts import contract_for
from data_contracts.identifiers import USCC_SQL_MACROS
from data_contracts.rules import checked_sql
from lending.eligibility import pairs_sql, products_sql
from lending.products import ProductError, load_products
from lending.publish import bank_rows_sql, published_rows_sql
from tests.lending.test_eligibility import OPEN_LOANS, PRODUCT, PROGRAMME, D, decide, firm
from valuecredit.sqltext import lit

CATALOGUE = yaml.safe_load(load_products().path.read_text(encoding="utf-8"))


def _draft(tmp_path: Path, change) -> Path:
    doc = copy.deepcopy(CATALOGUE)
    change(doc)
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _refused(path, message: str) -> str:
    with pytest.raises(ProductError) as e:
        load_products(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text
    return text


# -- (1) a careless operator's draft -------------------------------------------------------------

def _p0(doc) -> dict:
    return doc["products"][0]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(products=None), "products: expected a list, found None"),
    (lambda d: d.update(products=[]), "products: expected at least one product"),
    (lambda d: d.update(banks=None), "banks: expected a list, found None"),
    (lambda d: d.update(programme=[1]), "programme: expected a mapping of keys, found [1]"),
    (lambda d: d.update(version="two"), "version: expected a whole number, found 'two'"),
    (lambda d: d.update(extra={"a": 1}), "extra: not a known key"),
    # the programme's money: not a number, or not whole RMB (0.5 became 0 and divided by zero)
    (lambda d: d["programme"].update(max_amount_rmb=float("nan")), "programme.max_amount_rmb: expected a whole number, found nan"),
    (lambda d: d["programme"].update(max_amount_rmb=float("inf")), "programme.max_amount_rmb: expected a whole number, found inf"),
    (lambda d: d["programme"].update(limit_rounding_rmb=0.5), "programme.limit_rounding_rmb: expected a whole number, found 0.5"),
    (lambda d: d["programme"].update(limit_rounding_rmb=True), "programme.limit_rounding_rmb: expected a whole number, found True"),
    # a product's shape
    (lambda d: _p0(d).update(product_id=["B01-P1"]), "products[0].product_id: expected text, found ['B01-P1']"),
    (lambda d: d["products"][1].update(product_id=_p0(d)["product_id"] + " "), "products[1].product_id: 'B01-P1 ' must be text"),
    (lambda d: _p0(d).update(conditions=["min_score", 500]), "products[0].conditions: expected a mapping"),
    (lambda d: _p0(d).update(pricing=[400]), "products[0].pricing: expected a mapping"),
    (lambda d: _p0(d).update(limit="big"), "products[0].limit: expected a mapping"),
    (lambda d: _p0(d).update(kind=["renewal"]), "products[0].kind: expected text, found ['renewal']"),
    (lambda d: _p0(d).update(name=12345), "products[0].name: expected text, found 12345"),
    # a misspelt `kind` left a first-loan product a plain credit product, silently
    (lambda d: (_p0(d).pop("kind"), _p0(d).update(Kind="first_loan")), "products[0].Kind: not a known key"),
    # money and days must be whole: 50,000.99 RMB was cut to 50,000; 30.5 days rounded by the database
    (lambda d: _p0(d)["conditions"].update(max_amount_rmb=50_000.99), "products[0].conditions.max_amount_rmb: expected a whole number"),
    (lambda d: _p0(d).update(kind="ip_pledge", terms={"invention_rmb": 500_000.004, "utility_rmb": 1, "trademark_rmb": 1,
                                                      "cap_rmb": 10_000}), "products[0].terms.invention_rmb: must be a whole number (RMB)"),
    (lambda d: _p0(d).update(kind="renewal", terms={"window_days": 30.5}), "products[0].terms.window_days: must be a whole number (days)"),
    # YAML's `yes` is True, which Python counts as 1
    (lambda d: _p0(d)["conditions"].update(min_score=True), "products[0].conditions.min_score: expected a number, found True"),
    (lambda d: _p0(d)["pricing"].update(pd_bands=[["0.1", 5]]), "products[0].pricing.pd_bands[0][0]: expected a number, found '0.1'"),
    (lambda d: _p0(d)["pricing"].update(base_bp=True), "products[0].pricing.base_bp: expected a whole number, found True"),
    # look-alike letters and digits (Greek Κ, full-width Ｋ and ５) passed isupper()/isdigit() and matched no firm
    (lambda d: _p0(d)["conditions"].update(exclude_industries=["Κ"]), "products[0].conditions.exclude_industries: must be a list of GB/T 4754 section letters A to T"),
    (lambda d: _p0(d)["conditions"].update(exclude_industries=["Ｋ"]), "section letters A to T, found ['Ｋ']"),
    (lambda d: _p0(d)["conditions"].update(exclude_industries=["Z"]), "section letters A to T, found ['Z']"),
    (lambda d: _p0(d)["conditions"].update(districts=["５00112"]), "products[0].conditions.districts: must be a list of 6-digit district codes"),
    (lambda d: _p0(d)["pricing"].update(floor_bp=900, base_bp=385), "products[0].pricing.base_bp: the base rate (385 bp) is below its floor (900 bp)"),
])
def test_a_misshapen_draft_is_refused_in_one_line_naming_file_and_field(tmp_path, change, message):
    _refused(_draft(tmp_path, change), message)


@pytest.mark.parametrize("old, new, message", [
    ("base_bp: 385", "base_bp: 5000", "products[0].pricing.base_bp: must lie in [1, 2999], found 5000"),
    # a rule over the whole list (ids once each) names the product that breaks it, on its own line
    ("product_id: B01-P2", "product_id: B01-P1", "products[1].product_id: 'B01-P1' used twice (also products[0])"),
])
def test_a_problem_names_the_line_it_is_on(tmp_path, old, new, message):
    text = load_products().path.read_text(encoding="utf-8")
    line = text[:text.index(old)].count("\n") + 1  # the line edited
    path = tmp_path / "draft.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert _refused(path, message).endswith(f" (line {line})")


def test_a_key_given_twice_is_refused_not_quietly_the_last(tmp_path):
    text = load_products().path.read_text(encoding="utf-8")
    path = tmp_path / "draft.yaml"
    path.write_text(text.replace("    max_pd: 0.04\n", "    max_pd: 0.04\n    max_pd: 0.9\n", 1), encoding="utf-8")
    line = text[:text.index("    max_pd: 0.04\n")].count("\n") + 2
    _refused(path, f"not valid YAML at line {line}, column 5: key 'max_pd' given twice in one mapping")


def test_aliases_that_expand_a_small_file_into_a_huge_document_are_refused_at_once(tmp_path):
    # 33 KB standing for 10^9 values: hashing the catalogue walked them all (minutes and gigabytes)
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    path = tmp_path / "draft.yaml"
    path.write_text(bomb + load_products().path.read_text(encoding="utf-8"), encoding="utf-8")
    started = time.monotonic()
    _refused(path, "its aliases expand to 1,234,571,692 values (at most 1,000,000)")
    assert time.monotonic() - started < 5
    path.write_text("a: &a [1, *a]\n", encoding="utf-8")
    _refused(path, "an alias refers to a value that contains it")


def test_a_directory_a_huge_file_and_text_not_in_utf8_are_refused_before_reading(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    _refused(tmp_path / "dir.yaml", "a directory, not a product catalogue file")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# " + b"x" * (5 << 20) + b"\n")
    _refused(huge, "larger than 4 MiB: not a product catalogue file")
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(load_products().path.read_text(encoding="utf-8").encode("gb18030"))
    _refused(gbk, "not UTF-8 text (byte ")


def test_the_cli_refuses_a_bad_draft_in_one_line_before_opening_the_store(tmp_path, capsys):
    from pipelines.cli import main
    (tmp_path / "dir.yaml").mkdir()
    assert main(["products", "preview", "--products", str(tmp_path / "dir.yaml"), "--db", str(tmp_path / "none.duckdb"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"valuecredit products preview: error: {tmp_path / 'dir.yaml'}: a directory, not a product catalogue file\n"
    assert not (tmp_path / "out").exists()


# -- (5) limits exact in fen ---------------------------------------------------------------------

@pytest.mark.parametrize("share, receivables_rmb, limit_rmb", [
    (0.29, 1_000_000, 290_000),  # doubles: 28,999,999.999... fen, rounded down to 280,000
    (0.57, 2_000_000, 1_140_000),
    (0.35, 1_800_000, 630_000),
    (0.7, 1_234_567, 860_000),
])
def test_a_receivables_limit_is_the_share_computed_exactly(share, receivables_rmb, limit_rmb):
    p = PRODUCT | {"kind": "receivables", "receivables_share": share, "max_amount_fen": 3_000_000 * 100}
    r = decide([firm(receivables_fen=receivables_rmb * 100)], [p]).iloc[0]
    assert r["eligible"] and r["limit_fen"] == limit_rmb * 100


# -- (3) one bank reading another bank's loans ---------------------------------------------------

def _loan(bank, days, classification="正常", dpd=0, outstanding_rmb=500_000) -> dict:
    return dict(maturity_on=D + timedelta(days=days), bank_id=bank, outstanding_fen=outstanding_rmb * 100,
                classification=classification, dpd=dpd)


def test_a_banks_publication_shows_none_of_another_banks_loans():
    """A renewal product's shortfall spelled the firm's loans at every bank, with their maturity,
    classification and days past due, in each renewal bank's publication."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA decisions; CREATE SCHEMA raw")
    owing = [_loan("B02", 30, "关注", 45), _loan("B01", 200)]  # B01's own loan matures outside the window
    firms = pd.DataFrame([firm(uscc="U1", open_loans=owing, loans_outstanding_fen=1_000_000 * 100)
                          | {"products_version": 2, "products_hash": "h"}])
    products = pd.DataFrame([PRODUCT | {"product_id": "B01-P3", "kind": "renewal", "renewal_window_days": 90}])
    for col in ("industries", "exclude_industries", "districts", "required_status"):
        products[col] = products[col].astype(object)
    con.register("f", firms)
    con.register("p", products)
    con.execute(f"CREATE TABLE decisions.eligibility_firms AS SELECT * REPLACE (CAST(gates AS VARCHAR[]) AS gates, "
                f"CAST(open_loans AS {OPEN_LOANS}) AS open_loans) FROM f")
    con.execute("""CREATE TABLE p2 AS SELECT * REPLACE (CAST(industries AS VARCHAR[]) AS industries,
                   CAST(exclude_industries AS VARCHAR[]) AS exclude_industries, CAST(districts AS VARCHAR[]) AS districts,
                   CAST(required_status AS VARCHAR[]) AS required_status) FROM p""")
    con.execute(f"CREATE TABLE decisions.eligibility_products AS {products_sql('p2', PROGRAMME, f'DATE {lit(str(D))}')}")
    con.execute("CREATE TABLE decisions.eligibility_pairs AS "
                + pairs_sql("decisions.eligibility_firms", "decisions.eligibility_products"))
    con.execute("CREATE TABLE raw.registry AS SELECT 'U1' AS uscc, '某某公司' AS name, '张三明' AS legal_rep_name, "
                "'500112' AS district_code, 'C' AS industry, DATE '2020-01-01' AS _delivered_on, NULL::DATE AS _valid_to")
    published = "(" + published_rows_sql(D, "(SELECT 'U1' AS uscc)") + ")"
    (shortfalls,) = con.execute(bank_rows_sql(D, "B01", published)).df()["shortfalls"]
    assert "renewal: B01 2027-06-16 正常 dpd 0 (needs a loan from B01 maturing by 2027-02-26" in shortfalls
    assert "B02" not in shortfalls and "关注 dpd" not in shortfalls and "dpd 45" not in shortfalls


# -- (2) a hostile receivables file ---------------------------------------------------------------

SUPPLIER, OTHER, CORE = "91110000600037341L", "91110108551385082Q", "91350100M000100Y43"


def _rules(rows: list[dict]) -> dict[str, str | None]:
    """The rule each receivable breaks (None: loaded), as ingestion judges a file delivered 2026-11-18."""
    con = duckdb.connect()
    con.execute(USCC_SQL_MACROS)
    con.execute("CREATE SCHEMA staging; CREATE TABLE staging.registry (uscc VARCHAR)")
    con.execute("INSERT INTO staging.registry VALUES (?), (?)", [SUPPLIER, OTHER])
    good = dict(uscc=SUPPLIER, core_uscc=CORE, core_name="重庆某集团有限公司", issued_on="2026-10-02",
                due_on="2027-01-30", amount_fen="50000000", confirmed_on="2026-10-10", paid_on="")
    batch = pd.DataFrame([good | r for r in rows], dtype=str).assign(_f=0, _row=range(1, len(rows) + 1))
    con.register("b", batch)
    con.execute("CREATE TABLE files AS SELECT 0 AS _f, DATE '2026-11-18' AS delivered_on")
    return dict(con.execute(f"SELECT receivable_id, _rule FROM ({checked_sql(contract_for('receivables'), 'b', 'files')})")
                .fetchall())


def test_a_receivable_that_cannot_be_true_is_quarantined():
    assert _rules([
        dict(receivable_id="ok"),
        dict(receivable_id="core not a USCC", core_uscc="NOTAUSCC"),
        dict(receivable_id="core check character", core_uscc=CORE[:-1] + "4"),
        dict(receivable_id="confirmed by itself", core_uscc=SUPPLIER),
        dict(receivable_id="confirmed before issued", confirmed_on="2020-01-01"),
        dict(receivable_id="due before issued", due_on="2026-09-01"),
        dict(receivable_id="paid before issued", paid_on="2026-09-30"),
        dict(receivable_id="negative", amount_fen="-100"),
        dict(receivable_id="zero", amount_fen="0"),
        dict(receivable_id="issued in the future", issued_on="2026-12-01", confirmed_on="2026-12-02"),
        dict(receivable_id="unknown supplier", uscc="91500000MA5U7K8X0P"),
    ]) == {
        "ok": None, "core not a USCC": "uscc_invalid", "core check character": "uscc_invalid",
        "confirmed by itself": "self_reference", "confirmed before issued": "date_order", "due before issued": "date_order",
        "paid before issued": "date_order", "negative": "amount_negative", "zero": "value_out_of_range",
        "issued in the future": "date_future", "unknown supplier": "firm_unknown",
    }


def test_an_amount_that_is_not_whole_fen_is_refused():
    assert _rules([dict(receivable_id="half", amount_fen="12.5"), dict(receivable_id="hex", amount_fen="0x10"),
                   dict(receivable_id="whole", amount_fen="12.0"), dict(receivable_id="exponent", amount_fen="1e3"),
                   dict(receivable_id="fifth decimal", amount_fen="12.00004"),
                   dict(receivable_id="a hair below zero", amount_fen="-0.00001"),
                   dict(receivable_id="beyond a BIGINT", amount_fen="1000000000000000000000")]) == {
        "half": "type_invalid", "hex": "type_invalid", "whole": None, "exponent": None,
        "fifth decimal": "type_invalid", "a hair below zero": "type_invalid", "beyond a BIGINT": "type_invalid"}


def test_the_receivables_limit_counts_only_confirmed_unpaid_receivables_not_yet_due():
    from lending.eligibility import RECEIVABLE_OPEN
    con = duckdb.connect()
    rows = [("confirmed, open", "2026-10-10", None, "2027-01-30", 100),
            ("unconfirmed", None, None, "2027-01-30", 1_000),
            ("confirmed after the date", "2026-11-29", None, "2027-01-30", 10_000),
            ("paid", "2026-10-10", "2026-11-20", "2027-01-30", 100_000),
            ("paid after the date", "2026-10-10", "2026-12-01", "2027-01-30", 1_000_000),
            ("due on the date", "2026-10-10", None, "2026-11-28", 10_000_000)]
    con.execute("CREATE TABLE r (id VARCHAR, confirmed_on DATE, paid_on DATE, due_on DATE, amount_fen BIGINT)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?)", rows)
    got = con.execute(f"SELECT sum(amount_fen) FROM (SELECT *, DATE '{date(2026, 11, 28)}' AS as_of FROM r) "
                      f"WHERE {RECEIVABLE_OPEN}").fetchone()[0]
    assert got == 100 + 1_000_000
