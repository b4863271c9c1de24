"""Product kinds by hand (first loan, renewal, IP pledge, receivables; the programme cap on a firm's
total across kinds), their validation, and the read-only preview of a draft catalogue."""

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from lending.ledger.config import load_pool_config
from lending.products import ProductError, load_products
from tests.lending.test_eligibility import PRODUCT, D, decide, firm, lacks
from tests.night_tables import update_night

PREVIEW_DAY = date(2026, 11, 28)


def loan(bank="B01", days=30, outstanding_rmb=800_000, classification="正常", dpd=0) -> dict:
    return dict(maturity_on=D + timedelta(days=days), bank_id=bank, outstanding_fen=outstanding_rmb * 100,
                classification=classification, dpd=dpd)


def test_first_loan_only_for_a_firm_without_a_loan_before():
    p = PRODUCT | {"kind": "first_loan"}
    new, known = decide([firm(uscc="A"), firm(uscc="B", prior_loans=2)], [p]).to_dict("records")
    assert new["eligible"] and new["limit_fen"] == 2_000_000 * 100 and new["match_degree"] == 1.0
    assert not known["eligible"] and lacks(known) == {
        "first_loan": ("2 programme loans before the date", "no programme loan from any bank before")}
    assert known["match_degree"] == round(1 - 1 / 12, 4)  # 9 conditions, limit, price and the kind's own


def test_renewal_needs_a_performing_loan_of_the_same_bank_maturing_in_the_window():
    p = PRODUCT | {"kind": "renewal", "renewal_window_days": 90}
    firms = [firm(uscc="A", open_loans=[loan()], loans_outstanding_fen=800_000 * 100),
             firm(uscc="B", open_loans=[loan(bank="B02")], loans_outstanding_fen=800_000 * 100),
             firm(uscc="C", open_loans=[loan(days=120)], loans_outstanding_fen=800_000 * 100),
             firm(uscc="D", open_loans=[loan(classification="关注", dpd=95)], loans_outstanding_fen=800_000 * 100),
             firm(uscc="E", open_loans=[loan(classification="关注", dpd=60)], loans_outstanding_fen=800_000 * 100)]
    a, b, c, d, e = decide(firms, [p]).to_dict("records")
    # the renewal is no larger than what it renews: 800,000 rather than the credit limit 2,000,000
    assert a["eligible"] and a["limit_fen"] == 800_000 * 100
    assert e["eligible"] and e["limit_fen"] == 800_000 * 100  # 关注 under 90 days past due still performs
    required = "a loan from B01 maturing by 2027-02-26, 正常 or 关注, dpd < 90"
    assert lacks(b) == {"renewal": ("no outstanding loan from B01", required)}  # B02's loan is B02's business
    assert lacks(c) == {"renewal": ("B01 2027-03-28 正常 dpd 0", required)}
    assert lacks(d) == {"renewal": ("B01 2026-12-28 关注 dpd 95", required)}
    assert not any(r["limit_fen"] for r in (b, c, d))


def test_ip_pledge_values_the_ip_by_the_documented_rule():
    terms = dict(ip_invention_fen=500_000 * 100, ip_utility_fen=100_000 * 100, ip_trademark_fen=50_000 * 100,
                 ip_cap_fen=1_500_000 * 100)
    p = PRODUCT | {"kind": "ip_pledge"} | terms
    rows = decide([firm(uscc="A", invention_patents=2, utility_models=3, valid_trademarks=1),
                   firm(uscc="B", invention_patents=0, utility_models=5, valid_trademarks=0),
                   firm(uscc="C", invention_patents=0, utility_models=0, valid_trademarks=2),
                   firm(uscc="D", invention_patents=4, utility_models=0, valid_trademarks=0)], [p]).to_dict("records")
    # 2 x 500,000 + 3 x 100,000 + 1 x 50,000 = 1,350,000; 2 trademarks 100,000; 4 inventions 2,000,000 -> cap 1,500,000
    assert [r["limit_fen"] for r in rows] == [1_350_000 * 100, 0, 100_000 * 100, 1_500_000 * 100]
    assert lacks(rows[1]) == {"ip_pledge": ("0 invention patents, 0 trademarks",
                                            ">= 1 valid invention patent or registered trademark")}


def test_receivables_lend_a_share_of_confirmed_unpaid_receivables():
    p = PRODUCT | {"kind": "receivables", "receivables_share": 0.7}
    rows = decide([firm(uscc="A", receivables_fen=1_234_567 * 100), firm(uscc="B")], [p]).to_dict("records")
    assert rows[0]["eligible"] and rows[0]["limit_fen"] == 860_000 * 100  # 0.7 x 1,234,567 = 864,196.9, rounded down
    assert lacks(rows[1]) == {"receivables": ("0", "> 0 (confirmed by a core firm, unpaid, not yet due)")}


def test_the_programme_cap_is_on_the_firms_total_across_banks_and_kinds():
    credit = PRODUCT | {"product_id": "P1"}
    renewal = PRODUCT | {"product_id": "P2", "kind": "renewal", "renewal_window_days": 90}
    owing = [loan(outstanding_rmb=900_000), loan(bank="B05", days=300, outstanding_rmb=1_700_000)]
    rows = decide([firm(open_loans=owing, loans_outstanding_fen=2_600_000 * 100)], [credit, renewal]).to_dict("records")
    # 3,000,000 - 2,600,000 owed = 400,000 for new credit; a renewal replaces its 900,000: 3,000,000 - 1,700,000
    assert [r["limit_fen"] for r in rows] == [400_000 * 100, 900_000 * 100]
    full = decide([firm(loans_outstanding_fen=3_000_000 * 100)], [credit]).iloc[0]
    assert not full["eligible"] and lacks(full)["limit"] == ("0", ">= 10000")


def test_the_catalogue_offers_every_kind_at_several_banks():
    kinds = {}
    for p in load_products().products:
        kinds.setdefault(p["kind"], set()).add(p["bank_id"])
    assert {k: len(v) for k, v in kinds.items()} == {"credit": 17, "first_loan": 4, "renewal": 8, "ip_pledge": 4,
                                                     "receivables": 4}


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(kind="mortgage"), r"products\[0\]\.kind: 'mortgage' is not a product kind"),
    (lambda p: p.update(kind="renewal"), r"products\[0\]\.terms\.window_days: a renewal product needs a number"),
    (lambda p: p.update(kind="receivables", terms={"share": 1.5}), r"products\[0\]\.terms\.share: a receivables product"),
    (lambda p: p.update(terms={"window_days": 30}), r"products\[0\]\.terms\.window_days: not a term of a credit product"),
    (lambda p: p.update(kind="ip_pledge", terms={"invention_rmb": 1, "utility_rmb": 1, "trademark_rmb": 1}),
     r"products\[0\]\.terms\.cap_rmb: a ip_pledge product needs"),
])
def test_kinds_and_terms_are_validated_naming_file_product_and_field(tmp_path, change, message):
    doc = yaml.safe_load(load_products().path.read_text(encoding="utf-8"))
    change(doc["products"][0])
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProductError, match="^" + re.escape(f"{path}: ") + message) as e:
        load_products(path)
    assert "\n" not in str(e.value)


# -- the preview, on a decided night of the 800-firm universe ------------------------------------

@pytest.fixture(scope="module")
def night(score_universe, tmp_path_factory):
    work = tmp_path_factory.mktemp("preview")
    scored = score_universe(work, (PREVIEW_DAY,), products=load_products())
    scored.con.execute("CHECKPOINT")
    scored.con.close()
    return work / "night.duckdb"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checksums(db: Path) -> dict:
    from valuecredit.store import connect
    con = connect(db, read_only=True)
    try:
        names = [f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                                                   "ORDER BY ALL").fetchall()]
        return {n: con.execute(f"SELECT count(*), sum(hash(t)) FROM {n} t").fetchone() for n in names}
    finally:
        con.close()


def _preview(db: Path, products: Path, out: Path, *extra: str) -> dict:
    from pipelines.cli import main
    assert main(["products", "preview", "--products", str(products), "--db", str(db), "--out", str(out), *extra]) == 0
    return json.loads((out / f"preview-{PREVIEW_DAY}.json").read_text(encoding="utf-8"))


def test_previewing_the_catalogue_in_force_changes_nothing(night, tmp_path):
    from valuecredit.store import connect
    figures = _preview(night, load_products().path, tmp_path / "out", "--lang", "en")
    con = connect(night, read_only=True)
    stored = dict(con.execute("SELECT product_id, count(*) FILTER (eligible) FROM decisions.eligibility_pairs "
                              "WHERE as_of = ? GROUP BY ALL", [PREVIEW_DAY]).fetchall())
    con.close()
    assert sum(stored.values()) > 100  # a night where the products do reach firms
    assert {p["product_id"]: p["reached"] for p in figures["products"]} == stored
    assert all(p["newly_reached"] == 0 and p["no_longer_reached"] == 0 for p in figures["products"])
    assert figures["pool"]["banks"] == [] and figures["removed_products"] == []
    assert (tmp_path / "out" / f"preview-{PREVIEW_DAY}-changes.csv").read_text() == "product_id,uscc,change\n"
    html = (tmp_path / "out" / f"preview-{PREVIEW_DAY}.html").read_text(encoding="utf-8")
    assert "No product reaches other firms" in html


def test_lowering_a_minimum_grade_reaches_exactly_the_firms_between_the_thresholds(night, tmp_path):
    from valuecredit.store import connect
    doc = yaml.safe_load(load_products().path.read_text(encoding="utf-8"))
    target = next(p for p in doc["products"] if p["conditions"].get("min_grade") == "BBB" and p["kind"] == "credit")
    target["conditions"]["min_grade"] = "B"  # BBB -> B: the firms graded BB and B now pass the grade
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    publish = night.parent / "publish"
    publish.mkdir(exist_ok=True)
    before = (_sha(night), _checksums(night), sorted(p.name for p in night.parent.iterdir()), list(publish.iterdir()))

    figures = _preview(night, draft, tmp_path / "out")

    # what the store shows: no gate, and the grade the only unmet condition (bit 0), graded BB or B
    con = connect(night, read_only=True)
    expected = sorted(u for (u,) in con.execute("""
        SELECT e.uscc FROM decisions.eligibility_pairs e JOIN decisions.eligibility_firms f USING (uscc, as_of)
        WHERE e.as_of = ? AND e.product_id = ? AND e.unmet = 1 AND len(f.gates) = 0 AND f.grade IN ('BB', 'B')""",
        [PREVIEW_DAY, target["product_id"]]).fetchall())
    con.close()
    assert len(expected) > 0
    changes = (tmp_path / "out" / f"preview-{PREVIEW_DAY}-changes.csv").read_text().splitlines()[1:]
    assert changes == [f"{target['product_id']},{u},newly_reached" for u in expected]
    changed = {p["product_id"]: p for p in figures["products"] if p["newly_reached"] or p["no_longer_reached"]}
    assert list(changed) == [target["product_id"]] and changed[target["product_id"]]["newly_reached"] == len(expected)
    by_grade = changed[target["product_id"]]["breakdown"]["grade"]
    assert sum(v["newly_reached"] for v in by_grade.values()) == len(expected)
    assert set() < {g for g, v in by_grade.items() if v["newly_reached"]} <= {"BB", "B"}  # only the grades let in
    # the pool: 2 % of the new lending's programme share per bank, within 4 % of the balance after it
    pool = figures["pool"]
    assert [b["bank_id"] for b in pool["banks"]] == [target["bank_id"]]
    bank = pool["banks"][0]
    assert bank["firms"] == len(expected) and 0 < bank["accrued_fen"] <= bank["accrual_due_fen"]
    assert bank["accrual_due_fen"] == pytest.approx(bank["programme_amount_fen"] * 0.02, abs=len(expected))
    # read-only: the store's bytes, every table's checksum, the folder and the publication unchanged
    after = (_sha(night), _checksums(night), sorted(p.name for p in night.parent.iterdir()), list(publish.iterdir()))
    assert after == before


def test_a_firm_newly_reached_at_several_banks_borrows_once_in_the_pool(night, tmp_path):
    """The programme's cap is on a firm's total across banks: the preview's new lending counts each
    newly reached firm once, at the bank that offers it most, never at every bank that would."""
    doc = yaml.safe_load(load_products().path.read_text(encoding="utf-8"))
    lowered = [p for p in doc["products"] if p["conditions"].get("min_grade") == "BBB" and p["kind"] == "credit"]
    assert len({p["bank_id"] for p in lowered}) >= 2
    for p in lowered:
        p["conditions"]["min_grade"] = "B"
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    figures = _preview(night, draft, tmp_path / "out")
    rows = [line.split(",") for line in (tmp_path / "out" / f"preview-{PREVIEW_DAY}-changes.csv").read_text().splitlines()[1:]]
    newly = {u for _, u, change in rows if change == "newly_reached"}
    banks = figures["pool"]["banks"]
    reached_twice = len(rows) > len(newly)  # some firm is newly reached by more than one product
    assert reached_twice and sum(b["firms"] for b in banks) == len(newly)
    cap = load_pool_config().loan_cap(PREVIEW_DAY, True)
    assert sum(b["programme_amount_fen"] for b in banks) <= len(newly) * cap


def test_a_preview_without_a_champion_says_so(night, tmp_path):
    import shutil

    from reports.preview import preview
    from valuecredit.store import connect
    con = connect(night, read_only=True)
    try:  # the night has a champion: expected default rate and loss of every product that reaches a firm
        figures, _ = preview(con, load_products(), PREVIEW_DAY, load_pool_config())
    finally:
        con.close()
    reached = [p for p in figures["products"] if p["reached"]]
    assert figures["has_pd"] and figures["pd_note"] is None
    assert reached and all(0 < p["expected_default_rate"] < 1 and p["expected_loss_fen"] > 0 for p in reached)
    # the same night as a store without a model decided it: no PD, and the preview says so
    bare = tmp_path / "bare.duckdb"
    shutil.copy(night, bare)
    con = connect(bare)
    update_night(con, "decisions.eligibility_firms", PREVIEW_DAY, "pd = NULL")
    try:
        figures, _ = preview(con, load_products(), PREVIEW_DAY, load_pool_config())
    finally:
        con.close()
    assert not figures["has_pd"]
    assert figures["pd_note"] == f"no champion PD model on {PREVIEW_DAY}: no expected default rate or loss"
    assert all(p["expected_default_rate"] is None and p["expected_loss_fen"] is None for p in figures["products"])


def test_the_loan_books_product_kinds_are_the_catalogues():
    """A kind the catalogue offers must be one the loan book's contract accepts, or its loans would be quarantined."""
    from data_contracts.contracts import LOAN_KINDS
    from lending.products import KINDS
    assert tuple(KINDS) == LOAN_KINDS
