"""`valuecredit model evaluate` on real public credit data nobody here wrote, and on bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.estimators import MonotoneGBM, WoEScorecard
from models.evaluate import EvaluationInputError, prepare
from pipelines.cli import main

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
GERMAN, TAIWAN = DATA / "german_credit.csv", DATA / "taiwan_default.csv"
needs_data = pytest.mark.skipif(not GERMAN.exists(), reason=f"{DATA} is absent: real-data checks skipped")


def run_json(args, capsys) -> dict:
    assert main(["model", "evaluate", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0  # exactly one JSON object, on one line
    return json.loads(out)


@needs_data
def test_german_credit_meets_the_reference(capsys):
    r = run_json(["--data", str(GERMAN), "--target", "creditability", "--bad", "bad", "--folds", "5", "--seed", "42"],
                 capsys)
    assert (r["rows"], r["bad_rate"]) == (1000, 0.3)
    # with every setting chosen inside the folds; the blend of the two ranks better than either and than
    # the tuned LightGBM of the benchmark (0.7899; the benchmark's blend, 0.7955, meets issue 24's 0.795:
    # benchmarks/RESULTS.md)
    assert max(r["gbm"]["auc_mean"], r["scorecard"]["auc_mean"]) >= 0.785
    assert r["better"] == "blend" and r["blend"]["auc_mean"] >= 0.79
    assert all(f["gbm"]["candidates_tried"] >= 1 and f["scorecard"]["params"] for f in r["per_fold"])
    # optbinning's plain BinningProcess + LogisticRegression on the same folds
    from optbinning import BinningProcess

    frame = pd.read_csv(GERMAN)
    y = (frame.pop("creditability") == "bad").astype(int).to_numpy()
    cat = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    frame[cat] = frame[cat].astype(object)
    aucs = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=42).split(frame, y):
        bp = BinningProcess(list(frame.columns), categorical_variables=cat).fit(frame.iloc[train], y[train])
        lr = LogisticRegression(max_iter=1000).fit(bp.transform(frame.iloc[train]), y[train])
        aucs.append(roc_auc_score(y[test], lr.predict_proba(bp.transform(frame.iloc[test]))[:, 1]))
    assert r["scorecard"]["auc_mean"] >= round(float(np.mean(aucs)), 4)


@needs_data
def test_taiwan_default_meets_the_literature(capsys):
    # three folds and an eighth of the search budget, not the benchmark's five folds and 100 s
    # (benchmarks/RESULTS.md): the first candidate alone is at the level, in a quarter of the time
    r = run_json(["--data", str(TAIWAN), "--target", "default.payment.next.month", "--bad", "1", "--drop", "ID",
                  "--folds", "3", "--budget", "12"], capsys)
    assert r["rows"] == 30000 and max(r["gbm"]["auc_mean"], r["scorecard"]["auc_mean"]) >= 0.78


def test_an_id_column_is_found_and_text_categoricals_and_gaps_are_handled(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    frame = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "x": np.where(rng.random(n) < 0.1, np.nan, x),
                          "sector": rng.choice(["制造业", "retail", None], n),
                          "bad": (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), "--target", "bad", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "customer_id" in out and "gbm" in out
    r = run_json(["--data", str(tmp_path / "t.csv"), "--target", "bad", "--folds", "3"], capsys)
    assert r["gbm"]["auc_mean"] > 0.75  # x carries the signal


@pytest.mark.parametrize("args,message", [
    (["--target", "nope"], "no column 'nope'"),
    (["--target", "x"], "must have exactly two values"),
    (["--target", "bad", "--bad", "yes"], "--bad 'yes' is not a value"),
    (["--target", "rare"], "at least 20 of each are needed"),
    (["--target", "bad", "--drop", "ghost"], "--drop 'ghost': no such column"),
])
def test_bad_input_is_refused_with_a_clear_message(tmp_path, capsys, args, message):
    n = 200
    pd.DataFrame({"x": np.arange(n) * 0.5, "bad": np.arange(n) % 2, "rare": (np.arange(n) < 5).astype(int)}).to_csv(
        tmp_path / "t.csv", index=False)
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), *args]) == 2
    assert message in capsys.readouterr().err


def test_estimators_follow_the_sklearn_contract():
    for est in (MonotoneGBM(n_estimators=20, monotone={"x": -1}), WoEScorecard(pdo=30)):
        twin = clone(est)
        assert twin.get_params() == est.get_params()
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=500), "z": rng.normal(size=500)})
    y = (rng.random(500) < 1 / (1 + np.exp(2 * X.x))).astype(int)
    gbm = MonotoneGBM(n_estimators=50, monotone={"x": -1}).fit(X, y)
    grid = pd.DataFrame({"x": np.linspace(-3, 3, 50), "z": 0.0})
    raw = gbm.raw_score(grid)
    assert np.all(np.diff(raw) <= 1e-12)  # more x never raises the risk
    p = gbm.predict_proba(grid)[:, 1]
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) <= 1e-12)


AWKWARD = ["[(cash + short-term securities + receivables - short-term liabilities) / (operating expenses - depreciation)] * 365",
           'a "quoted", {braced}: name', "营业收入 (万元)", "1st col", "a b", "a_b", "x/y", "column_0"]


def awkward_table(tmp_path, target_values=(0.0, 1.0), n=500):
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({AWKWARD[0]: x, AWKWARD[1]: z, AWKWARD[2]: rng.normal(size=n),
                          AWKWARD[3]: np.where(rng.random(n) < 0.2, -9, z * 2), AWKWARD[4]: rng.normal(size=n),
                          AWKWARD[5]: rng.normal(size=n), AWKWARD[6]: rng.choice(["甲", "b"], n),
                          AWKWARD[7]: rng.normal(size=n),
                          "target": np.where(rng.random(n) < 1 / (1 + np.exp(-(1.5 * x - z))), *target_values[::-1])})
    frame.to_csv(tmp_path / "awkward.csv", index=False)
    return tmp_path / "awkward.csv"


def test_any_column_name_works_and_reports_keep_the_original_names(tmp_path, capsys):
    path = awkward_table(tmp_path)
    r = run_json(["--data", str(path), "--target", "target", "--bad", "1", "--folds", "3",
                  "--monotone", f"{AWKWARD[0]}:+1,{AWKWARD[1]}:-1", "--special-codes", "-9"], capsys)
    assert r["gbm"]["auc_mean"] > 0.7 and r["scorecard"]["auc_mean"] > 0.7
    assert r["monotone"] == {AWKWARD[0]: 1, AWKWARD[1]: -1} and r["special_codes"] == [-9.0]
    frame = pd.read_csv(path)
    y = frame.pop("target").to_numpy().astype(int)
    frame[AWKWARD[6]] = frame[AWKWARD[6]].astype("string")
    gbm = MonotoneGBM(n_estimators=30, calibration=None, cv_folds=0, monotone={AWKWARD[0]: 1}).fit(frame, y)
    contributions = gbm.contributions(frame.head(5))
    assert list(contributions.columns) == [*AWKWARD, "base_value"]  # the table's own names, not LightGBM's
    grid = frame.head(1).loc[[0] * 20].reset_index(drop=True)
    grid[AWKWARD[0]] = np.linspace(-3, 3, 20)
    assert np.all(np.diff(gbm.raw_score(grid)) >= -1e-12)  # the constraint reached the named column


@pytest.mark.parametrize("values,bad", [((0, 1), "1"), ((0.0, 1.0), "1"), ((0.0, 1.0), "1.0"), ((False, True), "1"),
                                        ((False, True), "True"), (("0", "1"), "1.0")])
def test_the_bad_value_is_matched_by_value_not_spelling(tmp_path, capsys, values, bad):
    path = awkward_table(tmp_path, values, n=300)
    expected = pd.read_csv(path)["target"].astype(str).isin(["1", "1.0", "True"]).to_numpy().astype(int)
    assert 0 < expected.sum() < len(expected)
    assert np.array_equal(prepare(path, "target", bad, []).y, expected)  # what the evaluation is given
    if isinstance(values[0], float) and bad == "1":  # and once through the command, end to end
        r = run_json(["--data", str(path), "--target", "target", "--bad", bad, "--folds", "2"], capsys)
        assert r["bad_rate"] == round(float(expected.mean()), 4)


def test_identifiers_are_dropped_by_name_only_and_always_said(tmp_path, capsys):
    rng = np.random.default_rng(5)
    n = 300
    amount = rng.permutation(n) * 10 + 7  # an integer feature with a distinct value on every row
    frame = pd.DataFrame({"loan_id": np.arange(n), "amount": amount,
                          "bad": (rng.random(n) < 1 / (1 + np.exp(-(amount - amount.mean()) / amount.std() * 2))).astype(int)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    r = run_json(["--data", str(tmp_path / "t.csv"), "--target", "bad", "--folds", "3"], capsys)
    assert r["dropped_identifiers"] == ["loan_id"]
    assert r["gbm"]["auc_mean"] > 0.75  # the unique integer column stayed a feature
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), "--target", "bad", "--folds", "3"]) == 0
    assert "identifier columns not used as features (by name): loan_id" in capsys.readouterr().out.replace("\n", " ")


def test_a_scorecard_that_did_not_converge_says_so(tmp_path, capsys, monkeypatch):
    import models.estimators as est

    class Stubborn(LogisticRegression):  # one iteration: scikit-learn warns that it did not converge
        def __init__(self, C=1.0, max_iter=1000):
            super().__init__(C=C, max_iter=1)

    monkeypatch.setattr(est, "LogisticRegression", Stubborn)
    path = awkward_table(tmp_path, n=300)
    r = run_json(["--data", str(path), "--target", "target", "--folds", "2"], capsys)
    assert any(w.startswith("ConvergenceWarning") for w in r["warnings"])


def test_json_mode_prints_one_object_or_nothing(tmp_path, capsys):
    pd.DataFrame({"x": np.arange(100), "bad": np.arange(100) % 3}).to_csv(tmp_path / "t.csv", index=False)
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), "--target", "bad", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "exactly two values" in captured.err


def test_each_fold_chooses_its_settings_on_its_training_rows_alone(tmp_path, capsys, monkeypatch):
    import models.evaluate as ev

    seen: list[tuple[str, set]] = []
    sized: list[int | None] = []
    for name in ("tune_gbm", "tune_scorecard"):
        real = getattr(ev, name)

        def spy(X, *args, _real=real, _name=name, **kwargs):
            seen.append((_name, set(X.index)))
            if _name == "tune_gbm":
                sized.append(kwargs.get("table_rows"))
            return _real(X, *args, **kwargs)

        monkeypatch.setattr(ev, name, spy)
    path = awkward_table(tmp_path, n=300)
    r = run_json(["--data", str(path), "--target", "target", "--folds", "3", "--budget", "12"], capsys)
    y = pd.read_csv(path)["target"].to_numpy().astype(int)
    tests = [set(test) for _, test in StratifiedKFold(3, shuffle=True, random_state=42).split(np.zeros(len(y)), y)]
    assert [name for name, _ in seen] == ["tune_gbm", "tune_scorecard"] * 3
    # every fold's GBM search sized by the whole table, as the report's model on all rows is: one procedure
    assert sized == [len(y)] * 3
    for i, (_, rows) in enumerate(seen):
        assert rows and not rows & tests[i // 2] and rows | tests[i // 2] == set(range(len(y)))
    assert len(r["per_fold"]) == 3
    for fold, auc in zip(r["per_fold"], r["gbm"]["auc_folds"]):
        assert set(fold["gbm"]["params"]) == {"num_leaves", "min_child_samples", "reg_lambda", "learning_rate",
                                              "n_estimators", "inner_folds"}
        assert fold["gbm"]["candidates_tried"] >= 1 and fold["gbm"]["auc"] == auc
        assert set(fold["scorecard"]["params"]) == {"min_bin_size", "C"}


def test_the_validation_report_holds_what_the_models_computed(tmp_path, capsys):
    import re

    from models.evaluate import prepare
    from models.tuning import tune_scorecard

    path = awkward_table(tmp_path, n=400)
    out = tmp_path / "report"
    assert main(["model", "evaluate", "--data", str(path), "--target", "target", "--folds", "3", "--budget", "3",
                 "--special-codes", "-9", "--report", str(out), "--lang", "en"]) == 0
    html = (out / "validation_report.html").read_text(encoding="utf-8")
    assert "Model validation report" in html and '<html lang="en">' in html
    assert html.count("<polyline") == 3 * 3  # a ROC curve per fold for each model (the GBM, the scorecard, their blend)
    binning = pd.read_csv(out / "binning.csv", encoding="utf-8-sig", keep_default_na=False)
    points = pd.read_csv(out / "points.csv", encoding="utf-8-sig", keep_default_na=False)
    assert set(binning["variable"]) == set(AWKWARD)  # every feature under its own name
    # the same procedure on the same rows gives the same card: its IVs are the report's
    data = prepare(path, "target", None, [], [-9.0])
    card, _ = tune_scorecard(data.X, data.y, [-9.0], None, 42)
    process = card.scorecard_.binning_process_
    for name in AWKWARD:
        iv = float(process.get_binned_variable(name).binning_table.iv)
        assert binning.loc[binning["variable"] == name, "iv"].astype(float).sum() == pytest.approx(iv, abs=1e-5)
        assert f">{iv:.4f}<" in html
    # a bank that places each value by points.csv alone (special code, missing, numeric bounds with
    # the lower one included, or categories) and adds up the points gets the card's score
    def points_of(variable: str, value) -> float:
        rows = points[points["variable"] == variable]
        if pd.isna(value):
            row = rows[rows["bin"] == "Missing"]
        elif isinstance(value, float) and value == -9.0:
            row = rows[rows["bin"] == "Special"]
        elif isinstance(value, str):
            row = rows[rows["categories"].map(lambda c: value in c.split(" | "))]
        else:
            lower, upper = rows["lower"].replace("", np.nan).astype(float), rows["upper"].replace("", np.nan).astype(float)
            row = rows[(lower <= value) & (value < upper)]
        assert len(row) == 1, (variable, value)
        return float(row["points"].iloc[0])

    scores = card.points(data.X)
    for i in range(0, len(data.X), 7):
        total = sum(points_of(v, data.X[v].iloc[i]) for v in card.used_columns_)
        assert total == pytest.approx(scores[i], abs=1e-4 * len(card.used_columns_))
    assert (data.X[AWKWARD[3]] == -9).sum() > 50  # special codes among the rows checked
    importance = pd.read_csv(out / "shap_importance.csv", encoding="utf-8-sig")
    assert set(importance["feature"]) == set(AWKWARD) and importance["share"].sum() == pytest.approx(1.0, abs=1e-3)
    calibration = pd.read_csv(out / "calibration.csv", encoding="utf-8-sig")
    assert calibration.groupby("model")["n"].sum().to_dict() == {"gbm": 400, "scorecard": 400, "blend": 400}
    for name in ("binning.csv", "points.csv", "folds.csv", "calibration.csv", "shap_importance.csv"):
        assert not re.search(r"\d[eE][+-]?\d", (out / name).read_text(encoding="utf-8-sig")), name  # plain decimals
    assert not re.search(r"<td[^>]*>[^<]*\d[eE][+-]?\d[^<]*</td>", html)  # no cell in scientific notation
    assert main(["model", "evaluate", "--data", str(path), "--target", "target", "--folds", "2", "--budget", "5",
                 "--report", str(tmp_path / "zh")]) == 0
    zh = (tmp_path / "zh" / "validation_report.html").read_text(encoding="utf-8")
    assert "模型验证报告" in zh and "评分卡分值表" in zh and AWKWARD[2] in zh  # Chinese by default


def test_the_reports_csvs_never_hand_a_spreadsheet_a_formula(tmp_path):
    """A bank's own column names and categories reach its spreadsheet as text; numeric bounds stay numbers."""
    rng = np.random.default_rng(5)
    n = 300
    x = rng.normal(size=n)
    pd.DataFrame({"=HYPERLINK(\"http://x\")": x, "kind": rng.choice(["+cmd", "@sum", "plain"], n),
                  "target": (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "report"
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), "--target", "target", "--folds", "3",
                 "--budget", "10", "--report", str(out)]) == 0
    for name in ("binning.csv", "points.csv"):
        frame = pd.read_csv(out / name, encoding="utf-8-sig", keep_default_na=False, dtype=str)
        cells = [c for col in frame.columns for c in frame[col]]
        assert not [c for c in cells if c.startswith(("=", "+", "@"))], name
        assert "'=HYPERLINK(\"http://x\")" in set(frame["variable"]), name
    assert any(b.startswith("-") for b in pd.read_csv(out / "points.csv", dtype=str, keep_default_na=False)["lower"])


def messy_table(n: int = 400) -> pd.DataFrame:
    """What real extracts hold: an empty column, one of special codes only, infinities, numbers
    written as text, a key under a bank's own spelling and a flag that only looks like one."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=n)
    bad = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 1)))).astype(int)
    ratio = np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n))
    amount = [f"{v:,.0f}" for v in rng.integers(500, 5_000_000, n)]
    amount[3] = "#DIV/0!"
    return pd.DataFrame({"x": x, "empty": np.nan, "no_record": rng.choice([-7, -8, -9], n), "ratio": ratio,
                         "amount": amount, "share": [f"{v:.1f}%" for v in rng.uniform(0, 100, n)],
                         "[bank] id": np.arange(n), "CustomerID": np.arange(n), "客户编号": np.arange(n),
                         "guarantee_yes_no": rng.integers(0, 2, n), "bad": bad})


def test_a_messy_extract_finishes_and_says_what_was_read_how(tmp_path, capsys):
    messy_table().to_csv(tmp_path / "messy.csv", index=False)
    assert main(["model", "evaluate", "--data", str(tmp_path / "messy.csv"), "--target", "bad", "--folds", "3",
                 "--budget", "5", "--special-codes", "-7,-8,-9"]) == 0
    out = capsys.readouterr().out
    infinite = int(np.isinf(messy_table()["ratio"]).sum())
    # the keys are named as the bank wrote them (a bracket is not console markup); the flag is kept
    assert "identifier columns not used as features (by name): [bank] id, CustomerID, 客户编号" in out
    assert f"input: ratio: {infinite} infinite or out-of-range value(s) read as missing" in out
    assert "input: amount: numbers written as text read as numbers; 1 value(s) that are not numbers read as missing" in out
    assert "input: share: numbers written as text read as numbers" in out
    data = prepare(tmp_path / "messy.csv", "bad", None, [], [-9.0, -8.0, -7.0])
    assert list(data.X.columns) == ["x", "empty", "no_record", "ratio", "amount", "share", "guarantee_yes_no"]
    assert data.X["amount"].dtype.kind == "f" and data.X["amount"].isna().sum() == 1
    assert 0 < infinite == data.X["ratio"].isna().sum() and np.isfinite(data.X["ratio"].dropna()).all()


def test_a_gbk_or_semicolon_export_reads_as_its_utf8_comma_twin(tmp_path):
    frame = pd.DataFrame({"行业": ["制造业", "批发零售"] * 30, "x": np.arange(60) * 0.5, "bad": [0, 1, 1] * 20})
    frame.to_csv(tmp_path / "utf8.csv", index=False)
    frame.to_csv(tmp_path / "gbk.csv", index=False, encoding="gbk")
    frame.to_csv(tmp_path / "semicolon.csv", index=False, sep=";")
    expected = prepare(tmp_path / "utf8.csv", "bad", None, [])
    for name in ("gbk.csv", "semicolon.csv"):
        got = prepare(tmp_path / name, "bad", None, [])
        pd.testing.assert_frame_equal(got.X, expected.X)
        assert (got.y == expected.y).all()


@pytest.mark.parametrize("header,args,message", [
    ("x1,x2,bad,x1,bad", [], "the header names 'bad', 'x1' more than once"),
    ("x1,txt,bad", ["--monotone", "txt:+1"], "--monotone 'txt': not a numeric column"),
    ("x1,customer_id,bad", ["--monotone", "customer_id:+1"],
     "--monotone 'customer_id': dropped as an identifier by its name, not a feature"),
    ("x1,x2,bad", ["--drop", "x2", "--monotone", "x1:+1,x2:-1"], "--monotone 'x2': dropped by --drop, not a feature"),
    ("x1,x2,bad", ["--special-codes", "nan"], "--special-codes 'nan': expected finite numbers"),
    ("x1,x2,bad", ["--budget", "inf"], "--budget inf: expected a number of seconds above 0"),
    ("x1,x2,bad", ["--seed", "-1"], "--seed -1: expected a whole number"),
    ("x1,x2,bad", ["--report", "{file}/sub"], "cannot be made"),
])
def test_refusals_come_before_any_model_in_one_line_and_json_stays_clean(tmp_path, capsys, header, args, message):
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal():.3f},{'abc'[i % 3] if 'txt' in header else rng.normal()},{i % 2}"
            + (f",{rng.normal():.3f},{i % 2}" if header.count(",") == 4 else "") for i in range(200)]
    (tmp_path / "t.csv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    args = [a.replace("{file}", str(tmp_path / "t.csv")) for a in args]
    assert main(["model", "evaluate", "--data", str(tmp_path / "t.csv"), "--target", "bad", *args, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.strip().count("\n") == 0


def test_the_gbm_refuses_a_direction_on_a_categorical_column():
    with pytest.raises(ValueError, match="categories have no direction"):  # LightGBM itself would abort the process
        MonotoneGBM(n_estimators=5, monotone={"t": 1}, calibration=None).fit(
            pd.DataFrame({"t": ["a", "b"] * 50, "x": np.arange(100.0)}), np.arange(100) % 2)


def test_drop_and_monotone_name_columns_with_commas_and_spaces(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c,d": rng.normal(size=100), " x2": rng.normal(size=100), "x1 ": rng.normal(size=100),
                          "bad": np.arange(100) % 2})
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = prepare(tmp_path / "t.csv", "bad", None, "c,d, x2", monotone="x1 :+1")
    assert list(data.X.columns) == ["x1 "] and data.monotone == {"x1 ": 1}


def test_a_feature_named_base_value_keeps_its_shap_importance():
    from reports.validation import shap_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"base_value": rng.normal(size=300), "x": rng.normal(size=300)})
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * X["base_value"]))).astype(int)
    rows = shap_importance(MonotoneGBM(n_estimators=30, calibration=None).fit(X, y), X)
    assert [r["feature"] for r in rows] == ["base_value", "x"]


def test_what_banks_export_reads_as_they_meant_it(tmp_path):
    """Files as spreadsheets and old systems write them (found by a hostile review of the reader)."""
    rng = np.random.default_rng(0)
    n = 200
    base = pd.DataFrame({"a": rng.normal(size=n).round(3), "b": rng.integers(0, 9, n), "bad": np.arange(n) % 2})

    def read(name: str, text: str | None = None, target: str = "bad", drop=None, **frame):
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8", newline="")
        else:
            base.assign(**frame).to_csv(path, index=False)
        return prepare(path, target, None, drop if drop is not None else [])

    csv_text = base.to_csv(index=False)
    assert list(read("cr.csv", csv_text.replace("\n", "\r")).X.columns) == ["a", "b"]  # old Mac line endings
    trailing = read("trail.csv", "".join(line + ",,\n" for line in csv_text.splitlines()))  # Excel's empty columns
    assert list(trailing.X.columns) == ["a", "b"] and trailing.dropped_ids == ["Unnamed: 3", "Unnamed: 4"]
    base.to_csv(tmp_path / "b.csv.gz", index=False)
    assert list(prepare(tmp_path / "b.csv.gz", "bad", None, []).X.columns) == ["a", "b"]
    codes = read("cn.csv", 行业编码=rng.choice(["C13", "F51"], n), 是否有身份证=rng.integers(0, 2, n), 合同编号=np.arange(n))
    assert list(codes.X.columns) == ["a", "b", "行业编码", "是否有身份证"] and codes.dropped_ids == ["合同编号"]
    wide = read("fw.csv", 金额=["１２３４５", "６７８"] * 100)  # full-width digits stay text, never all missing
    assert wide.X["金额"].notna().all() and not wide.notes
    assert list(read("x.csv", drop="a,,", 列=1.0).X.columns) == ["b", "列"]  # empty pieces name nothing
    spaced = read("sp.csv", "a, b, bad\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(n)), drop="b")
    assert list(spaced.X.columns) == ["a"] and spaced.y.sum() == n // 2  # ` bad` named by `bad`, ` b` by `b`
    both = pd.DataFrame({"a": rng.normal(size=n), "a,b": rng.normal(size=n), "c": rng.normal(size=n), "bad": base["bad"]})
    both.to_csv(tmp_path / "g.csv", index=False)
    assert list(prepare(tmp_path / "g.csv", "bad", None, "a,b").X.columns) == ["a", "c"]  # the longest name wins
    semi = read("sq.csv", '"Betrag (EUR, netto)";Alter;Ausfall\n' + "".join(f"{i}.5;{i % 50};{i % 2}\n" for i in range(n)),
                target="Ausfall")
    assert list(semi.X.columns) == ["Betrag (EUR, netto)", "Alter"]
    blanks = read("bl.csv", amt=[f"{v:,}" if i % 20 else " " for i, v in enumerate(rng.integers(1000, 10**6, n))],
                  pct=["12.5 %"] * n)
    assert blanks.X["amt"].isna().sum() == 10 and (blanks.X["pct"] == 12.5).all()
    with pytest.raises(EvaluationInputError, match="the header names 'bad' more than once"):
        read("nd.csv", "a,b,bad,bad \n" + "".join(f"{i},{i % 3},{i % 2},{i % 2}\n" for i in range(n)))
    pd.DataFrame({"Ort": ["Köln", "Bonn"] * 100, "Größe": rng.normal(size=n), "Ausfall": np.arange(n) % 2}).to_csv(
        tmp_path / "latin1.csv", index=False, encoding="latin-1")
    with pytest.raises(EvaluationInputError, match="holds no Chinese text"):  # not read as GB18030 nonsense
        prepare(tmp_path / "latin1.csv", "Ausfall", None, [])


def test_a_decimal_comma_export_reads_as_the_numbers_it_means(tmp_path):
    """A European export: `;` between cells, `,` before the decimals, `.` between thousands. Read as
    thousands, 0,125 would become 125; in a comma-separated file `1,234` stays a thousand and more."""
    rng = np.random.default_rng(0)
    n = 200
    amount, share = (rng.normal(size=n) * 10_000).round(2), rng.uniform(0, 1, n).round(3)

    def german(value: float, decimals: int) -> str:
        return f"{value:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")

    rows = [f"{german(a, 2)};{german(s, 3)};{german(s * 100, 1)} %;{i % 2}" for i, (a, s) in enumerate(zip(amount, share))]
    (tmp_path / "de.csv").write_text("Betrag;Quote;Anteil;Ausfall\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = prepare(tmp_path / "de.csv", "Ausfall", None, [])
    assert np.allclose(data.X["Betrag"], amount) and np.allclose(data.X["Quote"], share)
    assert np.allclose(data.X["Anteil"], (share * 100).round(1))
    assert "Quote: numbers written as text read as numbers (with a decimal comma)" in data.notes
    # quoted in a comma-separated file, a decimal comma shows itself by what no thousands group can be
    pd.DataFrame({"rate": [german(s, 3) for s in share], "bad": np.arange(n) % 2}).to_csv(tmp_path / "q.csv", index=False)
    assert np.allclose(prepare(tmp_path / "q.csv", "bad", None, []).X["rate"], share)
    whole = rng.integers(1000, 10**6, n)
    pd.DataFrame({"amt": [f"{v:,}" for v in whole], "bad": np.arange(n) % 2}).to_csv(tmp_path / "th.csv", index=False)
    assert (prepare(tmp_path / "th.csv", "bad", None, []).X["amt"] == whole).all()


def test_exports_as_banks_dress_their_numbers_read_as_the_numbers(tmp_path):
    """Found by a hostile review: each of these read as text categories (every AUC 0.50), or shifted
    every column by one, or misread thousands, or took 1 of a 1/2 target as bad, all with exit 0."""
    rng = np.random.default_rng(1)
    n = 300
    income, bad = rng.integers(1000, 90_000, n), np.arange(n) % 2

    def read(name: str, text: str, target: str = "bad", **kw):
        (tmp_path / name).write_text(text, encoding="utf-8")
        return prepare(tmp_path / name, target, kw.get("bad"), kw.get("drop", []))

    def table(cells, header="income,bad", sep=","):
        return header + "\n" + "".join(f"{c}{sep}{b}\n" for c, b in zip(cells, bad))

    for name, cells in {"space": [f"{v:,}".replace(",", " ") for v in income],
                        "nbsp": [f"{v:,}".replace(",", "\u202f") for v in income],
                        "apostrophe": [f"{v:,}".replace(",", "'") for v in income],
                        "dollar": [f'"${v:,}"' for v in income], "yen": [f'"¥{v:,}"' for v in income],
                        "negative": [f'"({v:,})"' for v in income]}.items():
        got = read(f"{name}.csv", table(cells))
        expected = -income if name == "negative" else income
        assert (got.X["income"] == expected).all(), name
        assert got.notes[0] == "income: numbers written as text read as numbers", name
    marks = ["#DIV/0!", ".", "?", "#VALUE!", "NA"]
    cells = [marks[(i // 10) % 5] if i % 10 == 3 else str(v) for i, v in enumerate(income)]  # every mark in turn
    got = read("marks.csv", table(cells))
    assert got.X["income"].isna().sum() == n // 10 and (got.X["income"].dropna() == income[np.arange(n) % 10 != 3]).all()
    # NA is missing as the file is read (pandas' own marker): the note counts the values it turned into missing
    turned = sum(1 for c in cells if c in marks[:4])
    assert 0 < turned < n // 10
    assert got.notes[0] == f"income: numbers written as text read as numbers; {turned} value(s) that are not numbers read as missing"
    # a `;` file: the style its columns agree on decides the thousands of the others (9.463 and 9,463 are both 9463)
    x = rng.normal(size=n).round(2)
    comma = read("c.csv", "amount;x;bad\n" + "".join(f"{v:,};{str(w).replace('.', ',')};{b}\n".replace(",", "~", 1)
                                                          .replace("~", ".") for v, w, b in zip(income, x, bad)))
    assert (comma.X["amount"] == income).all() and np.allclose(comma.X["x"], x)
    point = read("p.csv", "amount;x;bad\n" + "".join(f"{v:,};{w};{b}\n" for v, w, b in zip(income, x, bad)))
    assert (point.X["amount"] == income).all() and np.allclose(point.X["x"], x)
    # rows one field longer than the header: a trailing separator is ignored, anything else refused
    trailing = read("t.csv", "age,x,bad\n" + "".join(f"{i % 50},{w},{b},\n" for i, (w, b) in enumerate(zip(x, bad))))
    assert list(trailing.X.columns) == ["age", "x"] and np.allclose(trailing.X["x"], x) and (trailing.y == bad).all()
    with pytest.raises(EvaluationInputError, match="rows hold up to 4 fields where the header names 3"):
        read("u.csv", "age,x,bad\n" + "".join(f"{i % 50},{str(w).replace('.', ',')},{b}\n" for i, (w, b) in
                                               enumerate(zip(np.abs(x) + 1, bad))))
    with pytest.raises(EvaluationInputError, match=r"say which of \['1', '2'\] is the bad outcome"):
        read("g.csv", table(income).replace(",0\n", ",2\n"))
    assert read("g.csv", table(income).replace(",0\n", ",2\n"), bad="2").y.sum() == n - bad.sum()
    copies = read("d.csv", "a,b,bad\n" + "".join(f"{i % 7},{i % 5},{b}\n" for i, b in enumerate(bad)))
    assert copies.notes[-1].startswith(f"{n - 70} row(s) of the file repeat another one in every column")
    keyed = read("k.csv", "loan_id,a,b,bad\n" + "".join(f"{i},{i % 7},{i % 5},{b}\n" for i, b in enumerate(bad)))
    assert not [note for note in keyed.notes if "repeat" in note]  # distinct loans that look alike are no copies
    accounts = read("acct.csv", table([f'"{f.format(f"{v:,}.00")}"' for v, f in zip(income, ["(${})", "-${}", "$({})"] * n)]))
    assert (accounts.X["income"] == -income).all()  # Excel's negative currency, the mark inside or out
    flags = read("f.csv", "flag;x;bad\n" + "".join(f"{['True', 'TRUE', 'false'][i % 3]};{i};{b}\n" for i, b in enumerate(bad)))
    assert flags.X["flag"].tolist() == [[1.0, 1.0, 0.0][i % 3] for i in range(n)]
    # a `;` file: a date's dots say nothing of the decimals; with no value to show them, the comma convention, said
    dated = read("dd.csv", "betrag;zins;datum;bad\n" + "".join(f"{v:,}".replace(",", ".") + f";{i % 9},5;0{i % 9 + 1}.03.2024;{b}\n"
                                                              for i, (v, b) in enumerate(zip(income, bad))))
    assert (dated.X["betrag"] == income).all() and dated.X["zins"].max() == 8.5
    whole = read("w.csv", "betrag;bad\n" + "".join(f"{v:,};{b}\n".replace(",", ".", 1) for v, b in zip(income, bad)))
    assert (whole.X["betrag"] == income).all() and whole.notes[0].startswith("the file is separated by semicolons and no")
    mostly = read("m.csv", table([str(v) if i % 40 else "n/a code" for i, v in enumerate(income)]))
    share = sum(1 for i in range(n) if i % 40 == 0) / n
    assert mostly.notes[0].startswith(f"income: read as text categories: {share:.1%} of its values are not numbers "
                                      "(such as 'n/a code')")


def test_a_text_column_of_rare_categories_is_left_out_of_the_card_and_said(tmp_path, capsys):
    """A postcode or a date written as text: no category holds a bin's minimum share, so the card
    would place each by its own few rows' bad rate (noise: a 700-level column took the scorecard from
    0.67 to 0.57 in a hostile review); rare categories of a useful column are pooled instead."""
    rng = np.random.default_rng(3)
    n = 900
    x = rng.normal(size=n)
    sector = rng.choice(["A", "B", "C", *[f"rare{i}" for i in range(30)]], n, p=[0.3, 0.3, 0.1, *[0.3 / 30] * 30])
    bad = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x + (sector == "A") - 1)))).astype(int)
    frame = pd.DataFrame({"x": x, "sector": sector, "bad": bad})
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.assign(postcode=[f"P{v:04d}" for v in rng.integers(0, 700, n)]).to_csv(tmp_path / "noise.csv", index=False)
    runs = {}
    for name in ("plain", "noise"):
        assert main(["model", "evaluate", "--data", str(tmp_path / f"{name}.csv"), "--target", "bad", "--folds", "3",
                     "--budget", "5", "--json"]) == 0
        runs[name] = json.loads(capsys.readouterr().out)
    assert runs["noise"]["scorecard"]["auc_folds"] == runs["plain"]["scorecard"]["auc_folds"]  # the card never saw it
    assert "'postcode' left out of the card: no category holds 5.0% of the rows" in runs["noise"]["warnings"]
    # a column whose largest category holds exactly 100 of 2,120 rows: optbinning's count (ceil(100/2120 x 2120)
    # is 101 in floating point) pools them all, so the column is left out, not fitted into an error
    edge = pd.DataFrame({"x": rng.normal(size=2120), "code": [f"c{i // 100}" if i < 100 else f"r{i}" for i in range(2120)]})
    edge_card = WoEScorecard(min_bin_size=0.05).fit(edge, rng.random(2120) < 0.3)
    assert edge_card.used_columns_ == ["x"]
    assert any(w.startswith("'code' left out of the card") for w in edge_card.fit_warnings_)
    card = WoEScorecard(min_bin_size=0.05).fit(frame[["x", "sector"]], bad)
    assert card.used_columns_ == ["x", "sector"]  # its rare categories pooled, its common ones binned
    # on a large table a category of 1.7 % holds rows enough for its own bad rate: binned, not pooled away
    many = 12_000
    job = rng.integers(0, 60, many)
    y = (rng.random(many) < np.linspace(0.02, 0.4, 60)[job]).astype(int)
    jobs = pd.DataFrame({"job": pd.Series([f"job{j:02d}" for j in job], dtype="string")})
    assert WoEScorecard(min_bin_size=0.05).fit(jobs, y).used_columns_ == ["job"]


def test_a_large_table_searches_larger_trees_and_a_small_one_keeps_the_small_grid():
    from models.tuning import GBM_GRID, GBM_GRID_LARGE, LARGE, gbm_candidates

    def within(candidates, grid):
        return all(all(c[k] in grid[k] for k in grid) for c in candidates)

    small, large = gbm_candidates(42, 12, LARGE - 1), gbm_candidates(42, 12, LARGE)
    assert within(small, GBM_GRID) and within(large, GBM_GRID_LARGE)
    assert small[0]["num_leaves"] == 7 and large[0]["num_leaves"] == 15
    # a leaf of 10 rows or a tree of 3 leaves is not tried on a large table; both are on a small one
    assert min(c["min_child_samples"] for c in large) >= 20 and min(c["num_leaves"] for c in large) >= 7
    assert any(c["num_leaves"] == 31 for c in large) and not any(c["num_leaves"] == 31 for c in small)
    assert len({tuple(sorted(c.items())) for c in large}) == 12  # drawn without replacement


def test_a_text_column_of_rare_values_gives_the_gbm_no_split_on_them():
    """Categories too rare to split on read as missing, as unseen ones do: a text column of 300 random
    values (about 33 rows each) gave the trees noise to gather into their splits."""
    from models.estimators import MonotoneGBM

    rng = np.random.default_rng(3)
    n = 10_000
    x = rng.normal(size=n)
    X = pd.DataFrame({"x": x, "noise": [f"v{v}" for v in rng.integers(0, 300, n)],
                      "sector": rng.choice(["a", "b", "c"], n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 2)))).astype(int)
    gbm = MonotoneGBM(n_estimators=50, cv_folds=2, calibration=None, n_jobs=1).fit(X, y)
    assert gbm.categories_["noise"] == [] and gbm.categories_["sector"] == ["a", "b", "c"]
    one = X.head(1).assign(noise="v7")
    assert gbm.predict_proba(one)[0, 1] == gbm.predict_proba(one.assign(noise=None))[0, 1]
