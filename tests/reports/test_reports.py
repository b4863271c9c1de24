"""The firm's score report and a bank's batch: opened in headless Chromium (screenshot, no console
errors, charts drawn), printed to PDF with the Chinese text intact, personal data masked."""

import html
import json
import re
import shutil
from datetime import date

import pandas as pd
import pypdf
import pytest
import yaml
from markupsafe import escape

from lending.gate import authorised_firms_sql
from lending.products import load_products
from reports.audit import audit_pack, replay_decision, segment_outcomes
from reports.browser import cut_text, load, to_pdf
from reports.firm import ReportError, bank_batch, write_firm_report
from reports.portfolio import portfolio, write_portfolio
from reports.vocabulary import VOCABULARY, evidence, load_vocabulary, money_fen
from scoring.catalogue import load_catalogue
from valuecredit.configfile import ConfigError

CAT, PRODUCTS = load_catalogue(), load_products()
DAY, MONTH_BEFORE = date(2026, 11, 28), date(2026, 10, 23)


@pytest.fixture(scope="module")
def night(score_universe, tmp_path_factory):
    work = tmp_path_factory.mktemp("reports")
    scored = score_universe(work, (MONTH_BEFORE, DAY), products=PRODUCTS)
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
        words, delivered = evidence(detail, "en")  # the evidence, not just the verdict: worded in English, ids as delivered
        assert rule_id in text and html.escape(words) in text and html.escape(delivered) in text and words + delivered
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
    # the bank sees its own products only, and on a later night only its new leads
    own = {p["name"] for p in PRODUCTS.products if p["bank_id"] == "B03"}
    others = {p["name"] for p in PRODUCTS.products if p["bank_id"] != "B03"} - own
    sample = (folder / f"{min(expected)}.html").read_text(encoding="utf-8")
    assert any(n in sample for n in own) and not any(n in sample for n in others)
    before = {u for (u,) in con.execute("""
        SELECT DISTINCT uscc FROM decisions.eligibility WHERE as_of = ? AND bank_id = 'B03' AND eligible""",
                                        [MONTH_BEFORE]).fetchall()}
    leads = bank_batch(con, "B03", DAY, CAT, tmp_path / "leads", new_since=MONTH_BEFORE)
    assert 0 < leads.reports == len(expected - before) < len(expected)


def test_a_report_for_a_bank_not_in_the_catalogue_is_refused_in_one_line_and_writes_nothing(night, tmp_path, capsys):
    """`report bank B99` (or `b03`) once wrote an empty batch and exited 0; `../../x` wrote outside --out."""
    from pipelines.cli import main

    con, _ = night
    out = tmp_path / "deep" / "out"
    for args in (["bank", "B99"], ["bank", "b03"], ["bank", "../../x"], ["bank", str(tmp_path / "x")],
                 ["portfolio", "--bank", "../../x"], ["portfolio", "--bank", "b03"]):
        # the store is never opened: the id is refused first (an unopened store would say "does not exist")
        assert main(["report", *args, "--db", str(tmp_path / "no-store.duckdb"), "--out", str(out)]) == 2
        said = capsys.readouterr().err.strip()
        assert "is not in the product catalogue" in said and "(its banks: B01, B02" in said
        assert len(said.splitlines()) == 1 and "Traceback" not in said
    assert list(tmp_path.iterdir()) == []  # nothing written, inside --out or out of it
    # below the command line too, a path built from a bank id stays inside the folder given
    for bank in ("../../x", "..", str(tmp_path / "x")):
        with pytest.raises(ReportError, match="would write outside"):
            bank_batch(con, bank, DAY, CAT, out)
    assert list(tmp_path.iterdir()) == []


def test_audit_replay_reproduces_a_night_and_reports_a_changed_catalogue_as_differences(night, tmp_path):
    con, work = night
    uscc, *_ = a_firm(con)
    # an earlier night, replayed after a later one was decided, and the latest one
    for night_of in (MONTH_BEFORE, DAY):
        same = replay_decision(con, uscc, night_of, work / "models")
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


def test_the_portfolio_report_counts_the_book_migrates_grades_and_renders(night, tmp_path):
    con, _ = night
    whole = portfolio(con, DAY)
    scored = con.execute("SELECT count(*) FROM scores.commercial_value WHERE as_of = ?", [DAY]).fetchone()[0]
    assert whole["firms"] == scored == sum(whole["grades"].values())
    # the mean PD of each grade beside its count
    assert set(whole["grade_pd"]) == set(whole["grades"])
    assert all((whole["grade_pd"][g] is None) == (whole["grades"][g] == 0) for g in whole["grades"])
    # migration from the night four weeks or more before: every firm scored on both nights, once
    assert whole["previous"] == MONTH_BEFORE
    both = con.execute("""SELECT count(*) FROM scores.commercial_value a JOIN scores.commercial_value b USING (uscc)
                          WHERE a.as_of = ? AND b.as_of = ?""", [MONTH_BEFORE, DAY]).fetchone()[0]
    assert int(whole["migration"].to_numpy().sum()) == both
    assert whole["score_psi"]["n"] == scored and 0 <= whole["score_psi"]["psi"] < 10
    assert {r["item"] for r in whole["feature_psi"]} >= {"pd", "revenue_12m"}
    bank = portfolio(con, DAY, "B03")
    # a bank's report is bank-facing: its borrowers authorised on the date, through the one gate
    borrowers = con.execute(f"""SELECT count(DISTINCT uscc) FROM staging.loans WHERE bank_id = 'B03' AND disbursed_on <= ?
                                AND uscc IN ({authorised_firms_sql(DAY)})""", [DAY]).fetchone()[0]
    assert 0 < bank["firms"] == borrowers and bank["applications"]["approved"] <= bank["applications"]["decided"]
    nobody = portfolio(con, DAY, "B_NO_BORROWERS")  # a bank with no borrowers yet gets an empty book, not a failure
    assert nobody["firms"] == 0 and sum(nobody["grades"].values()) == 0 and "score_psi" not in nobody
    page = load(write_portfolio(con, DAY, tmp_path, "B03"), tmp_path / "p.png")
    assert page.errors == []


def test_a_segment_is_flagged_only_when_its_outcomes_differ_materially(night):
    con, _ = night
    firms = [u for (u,) in con.execute("SELECT uscc FROM staging.registry ORDER BY uscc LIMIT 400").fetchall()]
    district = dict(con.execute("SELECT uscc, any_value(district_code) FROM staging.registry GROUP BY uscc").fetchall())
    # every loan predicted at 2 %; one district defaults at 30 %, the others at 2 %
    worst = district[firms[0]]
    frame = pd.DataFrame({"uscc": firms, "defaulted": [(i % 10 < 3) if district[u] == worst else (i % 50 == 0)
                                                       for i, u in enumerate(firms)]})
    rows = {(r["segment"], r["value"]): r for r in segment_outcomes(frame, [0.02] * len(firms), con)}
    flagged = {k for k, r in rows.items() if r["material"]}
    assert ("district_code", worst) in flagged
    assert all(r["loans"] < 30 or abs(r["observed"] - 0.02) > 0.02 for k, r in rows.items() if k in flagged)


def test_the_audit_pack_documents_the_model_that_decided_the_night(night, tmp_path):
    con, work = night
    path = audit_pack(con, DAY, work / "models", CAT, tmp_path)
    text = path.read_text(encoding="utf-8")
    version = con.execute("SELECT any_value(model_version) FROM scores.pd WHERE as_of = ?", [DAY]).fetchone()[0]
    snapshot = json.loads((work / "models" / version / "metadata.json").read_text())["training_data"]["snapshot_sha256"]
    assert version in text and snapshot in text  # the model and the data it was trained on
    for must in ("模型说明", "样本外表现", "单调约束", "局限", "全局重要性", "依赖图", "分群结果与校准", "版本历史",
                 "全体企业上的样本外表现", "各等级的平均PD与实际发生率"):
        assert must in text
    # the promotion verdict against the 4+19+1 score, and every grade's observed rate beside its mean PD
    validation = json.loads((work / "models" / version / "validation.json").read_text(encoding="utf-8"))
    assert str(escape(validation["decision"]["reason"])) in text
    assert len(validation["population"]["by_grade"]) >= 5 and len(validation["by_grade_loans"]) >= 4
    # the loans that set the PD's level (the latest year of training loans), named with their span
    base_rate = validation["train"]["base_rate_loans"]
    assert f"{base_rate['from']} 至 {base_rate['to']} 发放的 {base_rate['loans']:,} 笔贷款" in text
    assert ("训练贷款中最近一年" in text) == (base_rate["days"] <= 365)
    assert text.count("<svg") >= 4  # calibration, importance, dependence plots
    assert str(MONTH_BEFORE) in text and str(DAY) in text  # the nights the version decided
    page = load(path, tmp_path / "a.png")
    assert page.errors == []


def test_the_audit_packs_loan_book_validation_is_computed_once_per_model_and_loan_book(night, tmp_path, monkeypatch):
    """The pack's most expensive part, the model's outcomes by segment on the loan book: a second pack
    of the same night reads them from the cache and is the same page; a new loan-book file computes
    them again, and so does a file of another source delivered before the last loan."""
    import reports.audit as audit

    con, work = night
    first = audit_pack(con, DAY, work / "models", CAT, tmp_path / "a").read_text(encoding="utf-8")
    cached = list((tmp_path / "a" / "audit" / audit.VALIDATION_CACHE).iterdir())
    assert len(cached) == 1 and json.loads(cached[0].read_text())[0]["segment"] == "district_code"
    computed = []
    real = audit.segment_outcomes
    monkeypatch.setattr(audit, "segment_outcomes", lambda *a: computed.append(1) or real(*a))
    shutil.copytree(tmp_path / "a" / "audit" / audit.VALIDATION_CACHE, tmp_path / "b" / "audit" / audit.VALIDATION_CACHE)
    again = audit_pack(con, DAY, work / "models", CAT, tmp_path / "b").read_text(encoding="utf-8")
    assert again == first and computed == []
    # an edited or damaged cache file is computed again, never shown
    kept = cached[0].read_text()
    for damaged in ("null", "[]", '[{"segment": "district_code"}]', kept.replace('"material": false', '"material": 0', 1)):
        cached[0].write_text(damaged)
        assert audit_pack(con, DAY, work / "models", CAT, tmp_path / "a").read_text(encoding="utf-8") == first
        assert cached[0].read_text() == kept
    assert len(computed) == 4
    computed.clear()
    version = con.execute("SELECT any_value(model_version) FROM scores.pd WHERE as_of = ?", [DAY]).fetchone()[0]
    before = audit.loan_book_snapshot(con, version, CAT)
    last_loan = con.execute("SELECT max(disbursed_on) FROM staging.loans").fetchone()[0]
    con.execute("CREATE TEMP TABLE _kept AS SELECT * FROM meta.ingested_files")
    try:
        later = "INSERT INTO meta.ingested_files (source, file, sha256, delivered_on, partition_date, status) VALUES "
        con.execute(later + "('power', 'later.parquet', 'x', ?, ?, 'loaded')", [DAY, DAY])  # after the last loan
        assert audit.loan_book_snapshot(con, version, CAT) == before
        con.execute(later + "('power', 'early.parquet', 'y', ?, ?, 'loaded')", [last_loan, DAY])
        assert audit.loan_book_snapshot(con, version, CAT) != before
        con.execute("DELETE FROM meta.ingested_files WHERE file = 'early.parquet'")
        con.execute(later + "('loan_status', 'new.csv', 'z', ?, ?, 'loaded')", [DAY, DAY])
        assert audit.loan_book_snapshot(con, version, CAT) != before
        assert audit_pack(con, DAY, work / "models", CAT, tmp_path / "b").read_text(encoding="utf-8") == first
        assert computed == [1] and len(list((tmp_path / "b" / "audit" / audit.VALIDATION_CACHE).iterdir())) == 2
    finally:
        con.execute("DELETE FROM meta.ingested_files")
        con.execute("INSERT INTO meta.ingested_files SELECT * FROM _kept")
        con.execute("DROP TABLE _kept")


# what a reader's text may hold: visible text only, without what is kept as delivered (names, ids,
# versions in <code>) and without a record quoted in the other language (<details lang=..>)
ALLOWED_ASCII_ZH = {"PD", "SHAP", "AUC", "KS", "ECE", "PSI", "Brier", "AAA", "AA", "BBB", "BB", "GB", "kWh"}


def _reader_text(page: str, lang: str) -> str:
    page = re.sub(r"<(style|title)>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<code>.*?</code>", " ", page, flags=re.S)
    page = re.sub(rf'<details lang="{"en" if lang == "zh" else "zh"}">.*?</details>', " ", page, flags=re.S)
    page = re.sub(r'<(span|td|a)\b[^>]*class="[^"]*\b(?:name|id)\b[^"]*"[^>]*>.*?</\1>', " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def unreadable(page: str, lang: str) -> list[str]:
    """Everything in a rendered report a reader could not read: raw codes, snake_case, scientific
    notation, words of the other language."""
    voc, text = load_vocabulary(), _reader_text(page, lang)
    found = [f"scientific notation {m}" for m in re.findall(r"\d\.?\d*e[+-]\d+", text, flags=re.I)]
    found += [f"snake_case {m}" for m in re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", text)]
    for code in re.findall(r"\b\d{6}\b", text):  # a division code only beside its name
        if f"{voc.name('districts', code, lang)} ({code})" not in text:
            found.append(f"district code without its name {code}")
    for letter in re.findall(r"(?<![A-Za-z/&])([D-LN-T])(?![A-Za-z0-9&])", text):  # a section letter only with its name
        found += [] if f"{letter} {voc.name('industries', letter, lang)}" in text else [f"industry letter alone {letter}"]
    if lang == "zh":
        found += [f"English {m}" for m in re.findall(r"[A-Za-z]{2,}", text) if m not in ALLOWED_ASCII_ZH]
    else:
        found += [f"Chinese {m}" for m in re.findall(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+", text)]
    return found


def test_the_unreadable_text_check_finds_what_it_is_for():
    page = ('<td>M (需 C,D)</td><td>500112</td><td>min_years: 2.7</td><td>1.235e+07</td><td>opening_quota</td>'
            '<td>Excluded sector</td><td class="name">重庆某某科技有限公司</td>')
    said = " | ".join(unreadable(page, "zh"))
    for must in ("industry letter alone", "district code without its name 500112", "snake_case min_years",
                 "scientific notation 1.235e+07", "English Excluded"):
        assert must in said
    assert unreadable("<p>渝北区 (500112) · M 科学研究和技术服务业 · 1,234.00万元</p>", "zh") == []
    assert unreadable('<p>Revenue 存续</p><span class="name">重庆某某科技有限公司</span>', "en") == ["Chinese 存续"]


def test_the_layout_check_finds_a_clipped_box_and_a_label_outside_its_chart(tmp_path):
    page = tmp_path / "cut.html"
    page.write_text('<html><body><div style="width:50px;overflow:hidden;white-space:nowrap">一段被截断的很长的文字</div>'
                    '<svg width="100" height="20"><text x="90" y="15">营业收入规模</text></svg>'
                    '<svg width="300" height="20"><text x="4" y="15">完整</text></svg></body></html>', encoding="utf-8")
    assert cut_text(page) == ["div clips its text: 一段被截断的很长的文字", "a chart label runs outside its picture: 营业收入规模"]
    page.write_text('<html><body><div style="width:2000px">宽</div></body></html>', encoding="utf-8")
    assert cut_text(page, 800) == ["the page is 2008 px wide in a 800 px window"]
    # a firm's name is page text: written like the check's answer, it is still not taken for it
    page.write_text('<html><head><title>某公司 data-cut="[]"</title></head><body><p>data-cut="[]"</p>'
                    '<div style="width:50px;overflow:hidden;white-space:nowrap">一段被截断的很长的文字</div></body></html>',
                    encoding="utf-8")
    assert cut_text(page) == ["div clips its text: 一段被截断的很长的文字"]


def test_every_report_reads_in_its_own_language_with_every_code_named(night, tmp_path):
    """Industries as letters, districts as codes, `min_years: 2.7 (需 >= 3.0)`, `zhuanjingtexin`,
    `opening_quota`, `1.235e+07` and English sentences in the Chinese audit pack were what readers saw."""
    con, work = night
    pages = []
    for eligible, hit in ((True, False), (False, True)):
        uscc, *_ = a_firm(con, eligible=eligible, hit=hit)
        pages += [(write_firm_report(con, uscc, DAY, CAT, tmp_path / lang, lang=lang), lang) for lang in ("zh", "en")]
    pages += [(write_portfolio(con, DAY, tmp_path / lang, bank, lang), lang) for lang in ("zh", "en") for bank in (None, "B03")]
    batch = bank_batch(con, "B03", DAY, CAT, tmp_path / "batch", limit=30)
    pages += [(p, "zh") for p in sorted((tmp_path / "batch" / "B03" / DAY.isoformat()).glob("*.html"))]
    pages.append((audit_pack(con, DAY, work / "models", CAT, tmp_path, "zh"), "zh"))
    assert len(pages) == 8 + batch.reports + 1 + 1
    problems = {str(p): unreadable(p.read_text(encoding="utf-8"), lang) for p, lang in pages}
    assert {p: found for p, found in problems.items() if found} == {}
    # laid out by Chromium at a desktop and a narrow width, nothing a reader looks at is cut: the firm
    # reports, the portfolios, the batch's index (its firm reports are the firm report's template) and the pack
    laid_out = [p for p, _ in pages if "batch" not in p.parts or p.name == "index.html"]
    assert len(laid_out) == 10
    cut = {f"{p} at {width} px": found for p in laid_out for width in (1100, 800) if (found := cut_text(p, width))}
    assert cut == {}
    # the names themselves, where the codes were
    firm = pages[0][0].read_text(encoding="utf-8")
    district, industry = con.execute("SELECT any_value(district_code), any_value(industry) FROM staging.registry "
                                     "WHERE uscc = ?", [pages[0][0].name.split(".")[0]]).fetchone()
    voc = load_vocabulary()
    assert f"{voc.name('districts', district, 'zh')} ({district})" in firm
    assert f"{industry} {voc.name('industries', industry, 'zh')}" in firm
    best = con.execute("SELECT max(computed_limit_fen) FROM decisions.eligibility_pairs WHERE uscc = ? AND as_of = ? "
                       "AND eligible", [pages[0][0].name.split(".")[0], DAY]).fetchone()[0]
    assert best and money_fen(best, "zh") in firm  # its limit in 元/万元 as a reader writes it


def test_the_batch_index_is_sorted_by_best_limit_and_says_so(night, tmp_path):
    con, _ = night
    bank_batch(con, "B03", DAY, CAT, tmp_path, limit=25)
    index = (tmp_path / "B03" / DAY.isoformat() / "index.html").read_text(encoding="utf-8")
    assert "按最高额度从高到低排列" in index
    order = re.findall(r'href="(\w+)\.html"', index)
    limits = dict(con.execute("""SELECT uscc, max(computed_limit_fen) FROM decisions.eligibility_pairs p
                                 JOIN decisions.eligibility_products USING (as_of, product_id)
                                 WHERE p.as_of = ? AND bank_id = 'B03' AND p.eligible GROUP BY uscc""", [DAY]).fetchall())
    assert len(order) == 25 and [limits[u] for u in order] == sorted((limits[u] for u in order), reverse=True)
    assert min(limits[u] for u in order) >= sorted(limits.values(), reverse=True)[24]  # the 25 largest


def test_the_waterfall_fits_its_longest_label():
    from reports.charts import text_width, waterfall

    long = "Industry's share of firms in social-insurance arrears, against the city's: 12.3%"
    svg = waterfall(-3.0, [(long, 0.4), ("短", -0.2)], "the firm's log-odds = PD 4.00%")
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    label_end = float(re.search(r'<text x="([\d.]+)"[^>]*text-anchor="end"', svg).group(1))
    assert label_end - text_width(long, 11) >= 0 and width >= label_end + 300  # nothing starts left of the picture
    assert "+0.400" in svg and "-0.200" in svg


@pytest.mark.parametrize("old, new, message", [
    ("  C: [制造业, Manufacturing]\n", "  C: 制造业\n", "industries.C: expected a list, found '制造业'"),
    ("  B: [采矿业, Mining]\n", "  B: [采矿业, 42]\n", "industries.B[1]: expected text, found 42: put it in quotes"),
    ("  M: [科学研究和技术服务业, Scientific research and technical services]\n", "  M: [科学研究和技术服务业]\n",
     "industries.M: expected [Chinese name, English name], found ['科学研究和技术服务业']"),
    ('  "500112": [渝北区, Yubei District]\n', "  500112: [渝北区, Yubei District]\n",
     "districts.500112: as a key, expected text, found 500112: put it in quotes"),
    # a misspelt kind of code: its codes would show as unknown in every report
    ("\nsegments:\n", "\nsegment:\n", "segment: not a known key (a misspelling?)"),
])
def test_a_malformed_vocabulary_is_refused_naming_file_field_and_line(tmp_path, old, new, message):
    text = VOCABULARY.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    bad = text.replace(old, new)
    path = tmp_path / "vocabulary.yaml"
    path.write_text(bad, encoding="utf-8")
    line = next(n for n, written in enumerate(bad.splitlines(), 1) if written == new.strip("\n"))
    with pytest.raises(ConfigError) as e:
        load_vocabulary(path)
    assert f"{path}: {message} (line {line})" in str(e.value).splitlines()  # a misspelt key: also the one missing


def test_the_product_kinds_conditions_read_in_each_language():
    """What eligibility spells for a first loan, a renewal, an IP pledge and receivables, for a reader."""
    from reports.vocabulary import shortfall
    cases = [("first_loan", "2 programme loans before the date", "no programme loan from any bank before"),
             ("renewal", "B03 2027-07-31 关注 dpd 12", "a loan from B03 maturing by 2026-12-29, 正常 or 关注, dpd < 90"),
             ("renewal", "no outstanding loan from B04", "a loan from B04 maturing by 2026-12-29, 正常 or 关注, dpd < 90"),
             ("ip_pledge", "0 invention patents, 0 trademarks", ">= 1 valid invention patent or registered trademark"),
             ("receivables", "0", "> 0 (confirmed by a core firm, unpaid, not yet due)")]
    said = {lang: [shortfall(*c, lang) for c in cases] for lang in ("zh", "en")}
    assert all(unreadable(f"<p>{t}</p>", lang) == [] for lang, texts in said.items() for t in texts), said
    assert said["zh"][1] == "续贷 B03 2027-07-31到期 关注 逾期12天 (需 B03贷款于2026-12-29前到期, 分类正常或关注, 逾期少于90天)"
    assert said["en"][0] == "First loan: 2 programme loans before (needs no loan from any bank before)"
