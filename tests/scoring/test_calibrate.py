"""Sample testing on a simulated universe: labels, point-in-time features, bounded weights, adoption."""

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from models.train import training_sample
from pipelines.cli import main
from scoring.calibrate import calibrate, outcome_sample, sample_points, write_report
from scoring.catalogue import DEFAULT_CATALOGUE, load_catalogue
from scoring.score import build_indicators
from scoring.sql import INDICATOR_KEYS, indicators_sql
from tests.conftest import BUSINESS_DATE, trained_version, validation_report
from valuecredit.store import replace_date, transaction

CAT = load_catalogue()


def test_outcome_labels_match_the_simulators_truth(loan_book):
    con, landing, _ = loan_book
    sample = outcome_sample(con)
    truth = pd.read_parquet(landing / "_truth" / "loans.parquet")
    merged = sample.merge(truth, on="loan_id", validate="one_to_one")
    assert len(merged) == len(sample) > 1000
    assert (merged["defaulted"] == merged["defaulted_12m"]).all()
    # only loans whose 12-month window has closed by the last loan-status period (2026-10)
    assert sample["disbursed_on"].max() < pd.Timestamp("2025-11-01")


def test_sample_features_are_the_nightly_indicators_of_the_disbursement_date(loan_book):
    con, _, _ = loan_book
    loans = outcome_sample(con).iloc[150::400].head(4)  # past the first month, before the register arrived
    per_loan = sample_points(con, loans, CAT)
    for _, loan in loans.iterrows():
        as_of = loan["disbursed_on"].date()
        build_indicators(con, as_of)
        nightly = con.execute(f"SELECT {', '.join(INDICATOR_KEYS)} FROM features.indicators WHERE uscc = ? AND as_of = ?",
                              [loan["uscc"], as_of]).df()
        with transaction(con):  # the night emptied again
            replace_date(con, "features.indicators", as_of, "SELECT * FROM features.indicators WHERE false")
        con.execute("CREATE OR REPLACE TEMP TABLE _t AS SELECT ? AS uscc, ?::DATE AS as_of", [loan["uscc"], as_of])
        joined = con.execute(f"SELECT {', '.join(INDICATOR_KEYS)} FROM ({indicators_sql('_t')})").df()
        pd.testing.assert_frame_equal(nightly, joined)
    assert len(per_loan) == len(loans)


def test_calibration_respects_bounds_and_reports_out_of_time(loan_book, tmp_path):
    con, landing, _ = loan_book
    report = calibrate(con, CAT, BUSINESS_DATE, landing / "_truth" / "loans.parquet")
    assert report.train["to"] < report.out_of_time["from"]
    total = report.train["loans"] + report.out_of_time["loans"]
    assert report.out_of_time["loans"] == pytest.approx(0.3 * total, abs=0.02 * total)
    fitted = np.array([w["fitted_share"] for w in report.weights])
    expert = np.array([w["expert_share"] for w in report.weights])
    assert fitted.sum() == pytest.approx(1.0, abs=1e-3)
    assert (fitted >= -1e-9).all() and (fitted <= 3.0 * expert + 1e-4).all()
    for d in report.dimensions:
        assert 0.5 * d["expert"] - 1e-4 <= d["fitted"] <= 2.0 * d["expert"] + 1e-4
    oot = report.metrics["out_of_time"]
    for name in ("expert", "fitted"):  # 10,000 firms give too few defaults to expect much: check the arithmetic
        assert 0 < oot[name]["auc"] < 1 and oot[name]["gini"] == pytest.approx(2 * oot[name]["auc"] - 1, abs=1e-3)
        assert oot[name]["defaults"] == report.out_of_time["defaults"]
    ceiling = report.ceiling["observable"]["auc"]
    assert ceiling > 0.5 and f"a gap of {ceiling - oot['fitted']['auc']:.4f}" in report.gap
    # the fit explains the training outcomes at least as well as the expert weights (their best scaling)
    sample = sample_points(con, outcome_sample(con), CAT)
    train = sample[sample["disbursed_on"] <= pd.Timestamp(report.train["to"])]
    pts, y = train[[f"pts_{k}" for k in INDICATOR_KEYS]].to_numpy(float), train["defaulted"].to_numpy()

    def best_log_loss(weights: np.ndarray) -> float:
        total = (pts @ weights).reshape(-1, 1)
        model = LogisticRegression(C=1e6).fit(total, y)
        return log_loss(y, model.predict_proba(total)[:, 1])

    assert best_log_loss(fitted) <= best_log_loss(expert) + 1e-4
    md, js = write_report(report, tmp_path)
    text = md.read_text(encoding="utf-8")
    assert "simulator pd_12m_observable" in text and "研发投入占营业收入比例" in text


def test_adopting_writes_a_new_version_and_keeps_the_old(loan_book, tmp_path, capsys):
    con, landing, store = loan_book
    con.execute("CHECKPOINT")  # the CLI opens its own connection: give it a copy of the file
    db = tmp_path / "copy.duckdb"
    shutil.copy(store, db)
    cat_path = tmp_path / "config" / "catalogue.yaml"
    cat_path.parent.mkdir()
    shutil.copy(DEFAULT_CATALOGUE, cat_path)
    args = ["score", "calibrate", "--db", str(db), "--catalogue", str(cat_path), "--truth", str(landing / "_truth" / "loans.parquet"),
            "--out", str(tmp_path / "reports"), "--date", "2026-11-28"]
    assert main(args) == 0
    assert load_catalogue(cat_path).content_hash == CAT.content_hash  # a report alone changes nothing
    assert main(args + ["--adopt"]) == 0
    new = load_catalogue(cat_path)
    assert new.version == CAT.version + 1 and new.content_hash != CAT.content_hash
    assert new.raw["derived_from"] == {"version": CAT.version, "content_hash": CAT.content_hash}
    archived = cat_path.parent / "history" / "catalogue.v1.yaml"
    assert archived.read_bytes() == DEFAULT_CATALOGUE.read_bytes()
    assert "adopted" in capsys.readouterr().out


def test_too_few_loans_is_a_clear_refusal(clean_store, tmp_path, capsys):
    shutil.copy(clean_store, tmp_path / "small.duckdb")
    code = main(["score", "calibrate", "--db", str(tmp_path / "small.duckdb"), "--out", str(tmp_path / "r"),
                 "--date", date(2026, 11, 28).isoformat()])
    assert code == 2 and "defaults are needed" in capsys.readouterr().err



def test_pd_training_sample_has_every_feature_as_of_disbursement(loan_book):
    from models.features import FEATURES
    from models.train import fit_champion_and_challenger, out_of_time_split, validate

    con, _, _ = loan_book
    sample = training_sample(con, CAT)
    loans = outcome_sample(con)
    assert len(sample) == len(loans) and set(FEATURES) <= set(sample.columns)
    later = sample[sample["disbursed_on"] >= pd.Timestamp("2024-12-01")]  # a year of history behind them
    assert later["revenue_trend_6m"].notna().mean() > 0.9 and later["industry"].notna().all()
    # the trend is the log ratio of the last six months' revenue to the six before, as of disbursement
    assert ((later["filing_gap_6m"] - (later["revenue_trend_6m"] - later["power_trend_6m"])).abs().max()) < 1e-9
    train, test = out_of_time_split(sample)
    gbm, card = fit_champion_and_challenger(train)
    for model in (gbm, card):
        v = validate(test["defaulted"].astype(int).to_numpy(), model.predict_proba(test[list(FEATURES)])[:, 1])
        assert 0 <= v["ece"] <= 1 and sum(r["n"] for r in v["reliability"]) == len(test)


def test_model_train_registers_a_validated_champion(trained_on):
    from models.registry import champion, load_model

    # `valuecredit model train --date 2026-11-28 --truth ...` on the loan book, as the session ran it (conftest.trained)
    folder = trained_on(BUSINESS_DATE)
    out = " ".join((folder / "stdout.txt").read_text(encoding="utf-8").split())
    version = out.split("registered ")[1].split()[0]
    assert champion(folder / "models") == version and "promoted to champion (no champion yet; out-of-time AUC" in out
    report = validation_report(folder)
    # the PD models and the simulator's ceiling, with the 4+19+1 score's own ranking beside them (a
    # score is no probability: it has an AUC, not a calibration error)
    assert set(report["out_of_time"]) == {"gbm", "scorecard", "ceiling_pd_12m_observable", "score_4_19_1"}
    for name, m in report["out_of_time"].items():
        if name != "score_4_19_1":
            assert 0 <= m["ece"] <= 1 and m["loans"] == report["out_of_time"]["gbm"]["loans"]
    assert 0 <= report["out_of_time"]["score_4_19_1"]["auc"] <= 1
    gap = report["gap_to_ceiling"]
    assert f"gbm AUC {gap['auc_gap']:.4f} below the simulator's ceiling" in out
    model = load_model(folder / "models", version)
    # fitted on the population's firm-months, or on the loans, whichever ranked the population better
    fitted_on = {"population": report["train"]["population_rows"], "loans": report["train"]["loans"]}
    assert model.metadata["training_data"]["rows"] == fitted_on[report["method"]]
    assert model.metadata["monotone"]["debt_ratio"] == 1 and len(model.metadata["training_data"]["snapshot_sha256"]) == 64


def test_model_train_over_a_champion_records_its_decision_beside_the_champions(trained_on):
    from models.registry import champion

    # `model train --date 2026-11-05` into the registry of the champion trained as of 2026-11-28
    held = champion(trained_on(BUSINESS_DATE) / "models")
    folder = trained_on(date(2026, 11, 5), over=BUSINESS_DATE)
    out = " ".join((folder / "stdout.txt").read_text(encoding="utf-8").split())
    version = trained_version(folder)
    decisions = [json.loads(d) for d in (folder / "models" / "decisions.jsonl").read_text(encoding="utf-8").splitlines()]
    # the same rows, another decision date: another reference population, so another version, registered
    assert version != held and (folder / "models" / version / "model.txt").is_file()
    # judged against the champion on the same out-of-time firm-months, and held: the log keeps both verdicts
    assert [(d["version"], d["promoted"]) for d in decisions] == [(held, True), (version, False)]
    assert decisions[1]["champion"] == held and decisions[1]["reason"].startswith(
        f"out-of-time AUC {decisions[1]['candidate']['auc']} on the population does not beat the champion's "
        f"{decisions[1]['champion_metrics']['auc']}")
    assert champion(folder / "models") == held and f"not promoted; the champion stays {held}" in out


def test_sector_arrears_is_the_industrys_excess_share_as_delivered_before_the_month(loan_book):
    from models.features import SECTOR_MIN_FIRMS, sector_arrears_sql

    con, _, _ = loan_book
    month_start, data_period = pd.Timestamp("2025-03-01"), "2025-01"
    # the reference, by hand: rows visible on the last day of February, social insurance of January
    eve = month_start - pd.Timedelta(days=1)

    def visible(table: str) -> pd.DataFrame:
        rows = con.execute(f"SELECT * FROM raw.{table}").df()
        delivered, valid_to = pd.to_datetime(rows["_delivered_on"]), pd.to_datetime(rows["_valid_to"])
        return rows[(delivered <= eve) & (valid_to.isna() | (valid_to > eve))]

    si = visible("social_insurance")
    si = si[si["period"] == data_period].merge(visible("registry")[["uscc", "industry"]], on="uscc")
    city = (si["arrears_months"] > 0).mean()
    by_industry = si.groupby("industry").agg(firms=("uscc", "size"), share=("arrears_months", lambda a: (a > 0).mean()))
    expected = (by_industry["share"] - city).where(by_industry["firms"] >= SECTOR_MIN_FIRMS)

    for day in (date(2025, 3, 1), date(2025, 3, 28)):  # the same all month
        got = con.execute(f"SELECT industry, sector_arrears_excess FROM ({sector_arrears_sql('', day)})").df()
        got = got.set_index("industry")["sector_arrears_excess"].sort_index()
        assert list(got.index) == list(expected.index)
        assert np.allclose(got.to_numpy(dtype=float), expected.to_numpy(dtype=float), atol=1e-12, equal_nan=True)
    assert expected.isna().any() and expected.notna().sum() >= 8  # small industries have none
    # the simulator's property and construction downturn (industries K and E) shows; no other industry
    # is more often in arrears than the city
    assert expected["K"] > 0.02 and expected["E"] > 0.02
    assert expected.drop(["K", "E"]).dropna().max() < 0.01
    # and the training sample carries it for each loan, from its disbursement month
    loans = training_sample(con, CAT)
    march = loans[(loans["disbursed_on"] >= month_start) & (loans["disbursed_on"] < "2025-04-01")]
    assert len(march) >= 50
    assert np.allclose(march["sector_arrears_excess"].to_numpy(dtype=float),
                       march["industry"].map(expected).to_numpy(dtype=float), atol=1e-12, equal_nan=True)
