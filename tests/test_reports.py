"""The firm's score report and a bank's batch: opened in headless Chromium (screenshot, no console
errors, charts drawn), printed to PDF with the Chinese text intact, personal data masked."""

import html
from datetime import date

import pypdf
import pytest
import yaml

from lending.products import load_products
from reports.audit import replay_decision
from reports.browser import load, to_pdf
from reports.firm import ReportError, bank_batch, write_firm_report
from valuecredit.scoring.catalogue import load_catalogue

CAT, PRODUCTS = load_catalogue(), load_products()
DAY = date(2026, 11, 28)


@pytest.fixture(scope="module")
def night(score_loan_book, tmp_path_factory):
    work = tmp_path_factory.mktemp("reports")
    scored = score_loan_book(work, (DAY,), products=PRODUCTS)
    yield scored.con, work
    scored.con.close()


def a_firm(con, eligible: bool = True, hit: bool = False) -> tuple[str, str, str]:
    uscc = con.execute(f"""
        SELECT min(uscc) FROM decisions.eligibility_firms f WHERE as_of = ? AND authorised
          AND {'' if eligible else 'NOT'} EXISTS (SELECT 1 FROM decisions.eligibility_pairs p
                                                  WHERE p.uscc = f.uscc AND p.as_of = f.as_of AND p.eligible)
          AND {'' if hit else 'NOT'} EXISTS (SELECT 1 FROM scores.negative_hits h WHERE h.uscc = f.uscc AND h.as_of = f.as_of)
    """, [DAY]).fetchone()[0]
    name, rep = con.execute("SELECT any_value(name), any_value(legal_rep_name) FROM staging.registry WHERE uscc = ?",
                            [uscc]).fetchone()
    return uscc, name, rep


def test_a_firm_report_renders_in_chromium_and_prints_to_pdf_with_chinese_text(night, tmp_path):
    con, _ = night
    uscc, name, rep = a_firm(con)
    html = write_firm_report(con, uscc, DAY, CAT, tmp_path)
    text = html.read_text(encoding="utf-8")
    assert name in text and "商业价值信用评价报告" in text and text.count("<svg") >= 5  # dimensions, 3 trends, waterfall
    assert rep not in text and f"{rep[0]}*" in text  # the legal representative masked
    ids = {i for (i,) in con.execute("SELECT legal_rep_id FROM staging.registry WHERE uscc = ?", [uscc]).fetchall()}
    assert not any(i in text for i in ids)
    for code in [i.id for i in CAT.indicators]:  # all 19 indicators
        assert f"<td>{code}</td>" in text
    page = load(html, tmp_path / "shot.png")
    assert page.errors == [] and (tmp_path / "shot.png").stat().st_size > 20_000
    pdf = to_pdf(html, tmp_path / "r.pdf")
    extracted = "".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages)
    assert name in extracted and "违约概率" in extracted  # real glyphs, mapped back to the right characters


def test_the_english_report_and_the_negative_list_evidence(night, tmp_path):
    con, _ = night
    uscc, name, _ = a_firm(con, eligible=False, hit=True)
    text = write_firm_report(con, uscc, DAY, CAT, tmp_path, lang="en").read_text(encoding="utf-8")
    assert "Commercial-value score report" in text and "Negative list" in text and "商业价值信用评价报告" not in text
    for rule_id, detail in con.execute("SELECT rule_id, detail FROM scores.negative_hits WHERE uscc = ? AND as_of = ?",
                                       [uscc, DAY]).fetchall():
        assert rule_id in text and html.escape(detail) in text  # the evidence, not just the verdict
    assert "Eligible for no product" in text and "Lacks" in text


def test_a_report_on_an_unknown_firm_or_date_says_so(night, tmp_path):
    con, _ = night
    uscc, *_ = a_firm(con)
    with pytest.raises(ReportError, match=f"2020-01-01 for {uscc}"):
        write_firm_report(con, uscc, date(2020, 1, 1), CAT, tmp_path)


def test_a_bank_batch_has_a_report_for_every_eligible_firm_and_an_index(night, tmp_path):
    con, _ = night
    s = bank_batch(con, "B03", DAY, CAT, tmp_path)
    expected = {u for (u,) in con.execute("""
        SELECT DISTINCT uscc FROM decisions.eligibility WHERE as_of = ? AND bank_id = 'B03' AND eligible""", [DAY]).fetchall()}
    folder = tmp_path / "B03" / DAY.isoformat()
    assert s.reports == len(expected) > 0
    assert {p.stem for p in folder.glob("9*.html")} == expected
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{u}.html"' in index for u in expected)
    page = load(folder / "index.html", tmp_path / "index.png")
    assert page.errors == []


def test_audit_replay_reproduces_a_night_and_reports_a_changed_catalogue_as_differences(night, tmp_path):
    con, work = night
    uscc, *_ = a_firm(con)
    same = replay_decision(con, uscc, DAY, work / "models")
    assert same.identical and same.compared == len(PRODUCTS.products) and same.model_version
    # the operator tightens every product's PD ceiling to 0.001 (a different catalogue, same night)
    doc = yaml.safe_load(PRODUCTS.path.read_text(encoding="utf-8"))
    doc["version"] += 1
    for p in doc["products"]:
        p["conditions"]["max_pd"] = 0.001
    changed = tmp_path / "products.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    diff = replay_decision(con, uscc, DAY, work / "models", load_products(changed))
    eligible = {p for (p,) in con.execute("SELECT product_id FROM decisions.eligibility_pairs WHERE as_of = ? AND uscc = ? "
                                          "AND eligible", [DAY, uscc]).fetchall()}
    flipped = {d["product_id"] for d in diff.differences if d["what"] == "eligible"}
    assert flipped == eligible and all(d["decided"] is True and d["replayed"] is False
                                       for d in diff.differences if d["what"] == "eligible")
    assert all("max_pd" in d["replayed"] for d in diff.differences if d["what"] == "unmet")
