"""The regulator's audit pack, and decision replay.

Decision replay: recompute one firm's decisions of a past night from what that
night stored (its scores, indicators, PD inputs, hits and authorisations as delivered by then), the
model version it recorded and the product catalogue in force that day, and show that they match what
was decided, or exactly what differs. `products` replays with another catalogue instead (what a
configuration change would have decided)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from lending.eligibility import CONDITIONS, firm_base_sql, pairs_sql, products_sql
from lending.products import ProductCatalogue
from models.nightly import model_of_night
from models.registry import load_model
from models.train import out_of_time_split, training_sample
from reports import charts
from reports.firm import TEMPLATES, _write
from reports.vocabulary import Words
from scoring.catalogue import Catalogue
from scoring.changes import has_table, modules_digest
from valuecredit.sqltext import lit, q


class ReplayError(ValueError):
    """Nothing stored to replay: names the firm and the date."""


@dataclass
class DecisionReplay:
    uscc: str
    as_of: date
    model_version: str | None
    products_version: str
    compared: int  # firm-product decisions compared
    differences: list[dict] = field(default_factory=list)  # {what, product_id, decided, replayed}

    @property
    def identical(self) -> bool:
        return not self.differences


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _unmet(bits: int | None) -> list[str]:
    return [name for i, (name, *_) in enumerate(CONDITIONS) if bits is not None and int(bits) & (1 << i)]


def replay_decision(con: duckdb.DuckDBPyConnection, uscc: str, as_of: date, registry: Path,
                    products: ProductCatalogue | None = None) -> DecisionReplay:
    d = f"DATE {lit(as_of.isoformat())}"
    stored_firm = con.execute("SELECT * FROM decisions.eligibility_firms WHERE as_of = ? AND uscc = ?", [as_of, uscc]).df()
    if stored_firm.empty:
        raise ReplayError(f"no decision stored for {uscc} on {as_of}: not a registered firm, or no nightly run that date")
    diffs: list[dict] = []
    # the PD, from the inputs stored that night and the model version it recorded
    pd_row = con.execute("SELECT pd, model_version FROM scores.pd WHERE as_of = ? AND uscc = ?", [as_of, uscc]).fetchall()
    version = pd_row[0][1] if pd_row else None
    if pd_row:
        inputs = con.execute("SELECT * FROM features.pd_inputs WHERE as_of = ? AND uscc = ?", [as_of, uscc]).df()
        again = float(load_model(registry, version).pd(inputs)[0])
        if again != pd_row[0][0]:  # bit for bit: the same inputs and model give the same float
            diffs.append({"what": "pd", "product_id": None, "decided": pd_row[0][0], "replayed": again})
    # the firm's gates and the values its conditions read, recomputed from the night's tables
    base = f"(SELECT * FROM ({firm_base_sql(as_of)}) WHERE uscc = {lit(uscc)})"
    again_firm = con.execute(f"SELECT * FROM {base}").df()
    for col in ("gates", "grade", "total", "pd", "years_in_operation", "revenue_12m", "tax_paid_12m", "industry",
                "district_code", "innovation_status", "authorised"):
        a, b = stored_firm.iloc[0][col], again_firm.iloc[0][col] if len(again_firm) else None
        a, b = (list(a), list(b)) if col == "gates" else (a, b)
        if not (a == b or (_missing(a) and _missing(b))):
            diffs.append({"what": col, "product_id": None, "decided": a, "replayed": b})
    # every product's decision, with the catalogue in force that day or the one given
    if products is None:
        catalogue = f"(SELECT * FROM decisions.eligibility_products WHERE as_of = {d})"
        label = str(stored_firm.iloc[0]["products_version"])
    else:
        con.register("_replay_products", products.frame())
        catalogue = f"({products_sql('_replay_products', products.programme, d)})"
        label = f"{products.version} ({products.path})"
    try:
        firm = f"(SELECT *, NULL AS products_version, NULL AS products_hash FROM {base})"
        rows = con.execute(f"""
            SELECT coalesce(s.product_id, r.product_id) AS product_id, s.eligible AS s_eligible, r.eligible AS r_eligible,
                   s.unmet AS s_unmet, r.unmet AS r_unmet, s.computed_limit_fen AS s_limit, r.computed_limit_fen AS r_limit,
                   s.rate_bp AS s_rate, r.rate_bp AS r_rate
            FROM (SELECT * FROM decisions.eligibility_pairs WHERE as_of = {d} AND uscc = {lit(uscc)}) s
            FULL JOIN ({pairs_sql(firm, catalogue)}) r USING (product_id) ORDER BY product_id""").fetchall()
    finally:
        if products is not None:
            con.unregister("_replay_products")
    for pid, se, re_, su, ru, sl, rl, sr, rr in rows:
        if se is None or re_ is None:
            diffs.append({"what": "product", "product_id": pid, "decided": "present" if se is not None else "absent",
                          "replayed": "present" if re_ is not None else "absent"})
            continue
        for what, a, b in (("eligible", se, re_), ("unmet", _unmet(su), _unmet(ru)), ("limit_fen", sl, rl), ("rate_bp", sr, rr)):
            if a != b:
                diffs.append({"what": what, "product_id": pid, "decided": a, "replayed": b})
    return DecisionReplay(uscc, as_of, version, label, len(rows), diffs)


# segments outcomes and calibration are compared across; a segment's observed default rate differs
# materially from its predicted one when it has at least MIN_SEGMENT loans and |z| > Z_MATERIAL
SEGMENTS = ("district_code", "industry", "size_class")
MIN_SEGMENT, Z_MATERIAL = 30, 3.0
METHOD_TEXT = {  # (zh, en)
    "population": (
        "梯度提升树在全体登记企业(无论是否借款)上对法院记录的违约排序:12个月内新增失信被执行人,即债权人胜诉而企业未履行"
        "判决的法院记录。窗口内注销、吊销或迁出而未被列入的企业不计入训练样本(离开登记后法院不再记录它,结局不完整);"
        "选择树的数量和校准斜率时,同一企业的各月份一起留出。其对数几率保留在全体企业上交叉拟合的斜率;截距由最近一年训练贷款的违约确定(违约率随时间漂移),因此违约概率与近期贷款违约同一尺度。"
        "借款企业是银行已经挑选过的、风险范围很窄的一群:只用它们的违约训练的模型在其余企业上几乎是平的,而模型要为其余企业做决定。"
        "选用它,是因为它在选择月份上对法院违约的排序优于贷款样本模型(数据见下)。",
        "The booster ranks court-recorded default over the whole registered population, borrower or not: a new "
        "listing as a dishonest judgement debtor within 12 months, the court's record that a creditor "
        "won a judgement the firm did not pay. A firm that left the register (revoked, cancelled, moved out) within "
        "the window unlisted is left out of the training rows: the court records no firm off the register, so its "
        "outcome is incomplete. A firm's months are held out together when the size and the slope are chosen. "
        "Its log-odds keep the slope fitted out of fold on the population; the "
        "defaults of the latest year of training loans set their intercept (default rates drift), so the PD is on the scale of recent loan default. Borrowers are the "
        "firms banks already chose, a narrow band of risk: a model of their defaults alone is nearly flat on the rest "
        "of the population, which it decides for. It was chosen because it ranks the court defaults of the selection "
        "months better than the loan-book model (figures below)."),
    "loans": (
        "梯度提升树对本项目贷款的违约排序;选用它,是因为它在选择月份上对法院违约的排序优于全体企业模型(数据见下)。",
        "The booster ranks loan defaults on the programme's loans; it was chosen because it ranks the court defaults "
        "of the selection months better than the population model (figures below)."),
}


def _court_line(court: dict, out_of_sample: bool, zh: bool) -> str:
    if zh:
        return (f"选择月份法院违约排序AUC由{court['model']}变为{court['refined']}"
                f"({'候选模型,样本外' if out_of_sample else '在用模型,样本内'};它有意偏离法院记录,只作报告)。")
    return (f" On the court defaults of the selection months, "
            f"{'the candidate, out of sample' if out_of_sample else 'the model in service, in sample'}: AUC {court['model']} "
            f"to {court['refined']} (reported only: it moves the PD away from the court's record on purpose).")


def refinement_text(refinement: dict | None, lang: str, validated: dict | None = None) -> str:
    """What the refinement on the loans (`MonotoneGBM.refine_on`) of the shipped model compared and
    whether it was kept; with `validated` (the candidate fitted on the earlier months alone), what
    the candidate's refinement did to the court defaults of the selection months, out of sample
    (the shipped refit was fitted on those months: its own figure there is in sample)."""
    if not refinement:
        return ""
    zh = lang == "zh"
    r, auc = refinement, refinement["out_of_fold_auc"]
    lo, hi = r["gain"]["interval_90"] if "gain" in r else (None, None)
    interval = "" if lo is None else f"(增益90 %区间{lo}至{hi})" if zh else f" (90 % interval of the gain {lo} to {hi})"
    # the court defaults of the selection months: the candidate's out of sample, the refit's in sample
    tail = "".join(_court_line(fit["court_default_auc"], sample, zh) for fit, sample in ((validated, True), (r, False))
                   if fit and fit.get("kept") and fit.get("court_default_auc"))
    if zh:
        head = (f"在{r['rows']:,}笔训练贷款({r['events']:,}笔违约)上,从全体企业模型的违约概率出发再提升一个小模型,"
                f"按企业整体留出的交叉验证:贷款违约排序AUC由{auc['model']}变为{auc['refined']}{interval}。")
        return head + (f"已采用({r['trees']}棵树,同样的单调约束;SHAP贡献为两者之和)。" if r["kept"]
                       else "增益区间未高于零,未采用。") + tail
    head = (f"A small booster was boosted from the population PD on {r['rows']:,} training loans ({r['events']:,} "
            f"defaults), held out firm by firm: the loans' out-of-fold AUC went from {auc['model']} to {auc['refined']}{interval}.")
    return head + (f" Kept ({r['trees']} trees, the same monotone constraints; the SHAP contributions are the two "
                   "boosters' sum)." if r["kept"] else " Not kept: the gain's interval does not lie above zero.") + tail


LABEL_TEXT = {  # what the model predicts, by method: (zh, en)
    "population": ("12个月内新增失信被执行人(法院违约),覆盖全体企业(窗口内离开登记而未被列入的除外);违约概率的基准水平按贷款违约(次级及以下、逾期90天以上或核销)校准",
                   "a new listing as a dishonest judgement debtor (court default) within 12 months, over every firm (but "
                   "those that left the register within the window unlisted); the base "
                   "rate set by loan default (substandard or worse, 90+ days past due, or written off)"),
    "loans": ("12个月内贷款违约(次级及以下、逾期90天以上或核销)",
              "loan default within 12 months (substandard or worse, 90+ days past due, or written off)"),
}
LIMITATIONS = (
    ("贷款违约只在借款企业上可见,而它们的风险范围很窄:范围之外,违约概率的尺度依赖法院的违约记录,债权人庭外和解的违约"
     "不在其中(在模拟数据上约五分之一);请看下方各等级表,其中列出了实际发生率与违约概率的对比。",
     "Loan defaults are known only for borrowers, a narrow band of risk: outside it the PD's scale rests on the "
     "court's record of default, which misses defaults that creditors settle out of court (about one in five on the "
     "simulated universe); read the grade table below, which shows the observed rates beside the PDs."),
    ("违约标签为12个月内违约(次级及以下、逾期90天以上或核销);更晚的违约看不到。",
     "The label is a 12-month default (substandard or worse, 90+ days past due, or written off); later defaults are not seen."),
    ("输入为政府部门数据,在所描述月份之后两个月交付;企业最近两个月的情况看不到。",
     "Inputs are government data as delivered two months after the month they describe; a firm's last two months are unseen."),
    ("单调约束固定了每个输入的影响方向,真实影响转向之处可能损失准确性。",
     "Monotone constraints hold each input's direction of effect fixed, which may cost accuracy where the true effect turns."),
    ("校准(逻辑斯蒂缩放)在训练年份上拟合,基准水平取自最近一年训练贷款;此后违约率的变化最先在ECE上显现。",
     "Calibration (Platt scaling) is fitted on the training years, its level on the latest year of training loans; a later change in the default rate shows first in the ECE."),
)


def verdict_text(d: dict, lang: str) -> str:
    """A registry decision in the report's language, from its figures (the record's own words beside it)."""
    zh = lang == "zh"
    parts = [("已晋级为冠军模型" if zh else "promoted to champion") if d.get("promoted") else ("未晋级" if zh else "not promoted")]
    cand, score = d.get("candidate", {}), d.get("score_4_19_1")
    if cand.get("auc") is not None:
        parts.append(f"{'样本外AUC' if zh else 'out-of-time AUC'} {cand['auc']}")
    if score:
        iv = score.get("interval_95") or [None, None]
        parts.append(f"4+19+1评分 {score['auc']},差 {score.get('difference')},95%区间 {iv[0]} 至 {iv[1]}" if zh else
                      f"4+19+1 score {score['auc']}, difference {score.get('difference')}, 95% interval {iv[0]} to {iv[1]}")
    if d.get("out_of_time_events"):
        parts.append(f"{d['out_of_time_events']:,} {'个违约事件' if zh else 'events'}")
    return (";" if zh else "; ").join(parts)


def segment_outcomes(sample: pd.DataFrame, predicted: np.ndarray, con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per segment of district, industry and size class: loans, defaults, mean PD, observed rate and a
    binomial z of observed against predicted, flagged when material."""
    reg = con.execute("""SELECT uscc, any_value(district_code) AS district_code, any_value(industry) AS industry,
                                any_value(size_class) AS size_class FROM staging.registry GROUP BY uscc""").df()
    frame = sample[["uscc", "defaulted"]].assign(pd=predicted).merge(reg, on="uscc", how="left")
    rows = []
    for segment in SEGMENTS:
        for value, g in frame.groupby(segment, dropna=False, sort=True):
            n, observed, expected = len(g), int(g["defaulted"].sum()), float(g["pd"].sum())
            spread = float((g["pd"] * (1 - g["pd"])).sum()) ** 0.5
            z = (observed - expected) / spread if spread > 0 else 0.0
            rows.append({"segment": segment, "value": "—" if pd.isna(value) else str(value), "loans": n,
                         "defaults": observed, "mean_pd": expected / n, "observed": observed / n, "z": z,
                         "material": n >= MIN_SEGMENT and abs(z) > Z_MATERIAL})
    return rows


VALIDATION_CACHE = ".validation_cache"  # beside the packs: the loan book's segment outcomes, by model and snapshot
LOAN_BOOK = ("loans", "loan_status", "loan_recoveries", "registry")  # the outcomes, and the segments' registry
# the code between the store and the outcomes by segment (the sample, its features, the model's PDs, the segments)
SEGMENT_CODE = ("reports.audit", "models.train", "models.features", "models.estimators", "models.registry",
                "scoring.calibrate", "scoring.sql", "data_contracts.contracts", "valuecredit.schema",
                "valuecredit.sqltext")
SEGMENT_LIBRARIES = ("duckdb", "lightgbm", "numpy", "pandas", "scikit-learn")  # their versions: a model's PDs may move


def loan_book_snapshot(con: duckdb.DuckDBPyConnection, version: str, cat: Catalogue) -> str:
    """What the loan book's out-of-time outcomes by segment rest on, as a hash: the model, the code,
    the libraries' versions and the catalogue; every loaded file of the loan book and the registry (whose current segments they
    are read by); and every other loaded file delivered by the last disbursement (a loan's features are
    read as delivered by the day it was disbursed, so a later delivery cannot change them)."""
    last_disbursed = con.execute("SELECT max(disbursed_on) FROM staging.loans").fetchone()[0]
    files = con.execute(f"""
        SELECT DISTINCT source, file, sha256, delivered_on FROM meta.ingested_files
        WHERE status = 'loaded' AND (source IN ({', '.join(lit(s) for s in LOAN_BOOK)}) OR delivered_on <= ?)
        ORDER BY ALL""", [last_disbursed]).fetchall()
    libraries = [importlib.metadata.version(name) for name in SEGMENT_LIBRARIES]
    text = json.dumps([version, modules_digest(SEGMENT_CODE), libraries, cat.content_hash, str(last_disbursed), files],
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


SEGMENT_FIELDS = {"segment": str, "value": str, "loans": int, "defaults": int, "mean_pd": float, "observed": float,
                  "z": float, "material": bool}


def _valid_segments(rows) -> bool:
    """A cache file's content is what `segment_outcomes` returns (an edited or damaged one is computed again)."""
    return isinstance(rows, list) and bool(rows) and all(
        isinstance(r, dict) and set(r) == set(SEGMENT_FIELDS) and r["segment"] in SEGMENTS
        and all(isinstance(r[k], t) and (t is not int or not isinstance(r[k], bool)) for k, t in SEGMENT_FIELDS.items())
        for r in rows)


def _cached_segments(con: duckdb.DuckDBPyConnection, version: str, model, cat: Catalogue, cache: Path) -> list[dict]:
    """The model's outcomes by segment on the loan book's out-of-time loans: computed once per model
    and loan-book snapshot (`loan_book_snapshot`), then read from `cache` (most nights deliver no loan
    file: the pack's most expensive part need not be redone for the same answer)."""
    path = cache / f"{version}-{loan_book_snapshot(con, version, cat)[:32]}.json"
    try:
        if _valid_segments(rows := json.loads(path.read_text(encoding="utf-8"))):
            return rows
    except (OSError, ValueError):  # none yet, or unreadable: computed again
        pass
    _, test = out_of_time_split(training_sample(con, cat))
    segments = segment_outcomes(test, model.pd(test), con)
    cache.mkdir(parents=True, exist_ok=True)
    _write(path, json.dumps(segments))  # a reader sees the whole file or none
    return segments


def grade_rows(validation: dict, cat: Catalogue) -> list[dict]:
    """Per grade, best first: the out-of-time population's firm-months, mean PD and observed
    court-default rate, and the out-of-time loans' count, mean PD and observed default rate."""
    pop = {r["grade"]: r for r in validation.get("population", {}).get("by_grade", [])}
    loans = {r["grade"]: r for r in validation.get("by_grade_loans", [])}
    rows = []
    for g, _ in sorted(cat.grades, key=lambda gl: -gl[1]):
        p, q = pop.get(g, {}), loans.get(g, {})
        rows.append({"grade": g, "n": p.get("n", 0), "mean_pd": p.get("mean_pd"), "observed": p.get("observed"),
                     "loans": q.get("n", 0), "loan_pd": q.get("mean_pd"), "loan_observed": q.get("observed")})
    return rows


def version_history(con: duckdb.DuckDBPyConnection, registry: Path, lang: str) -> dict:
    """Which model, catalogue and product catalogue decided each run of nights, and the registry's
    decisions (what was trained, how it validated, whether and why it was promoted, in `lang`)."""
    nights = con.execute("""
        SELECT f.model_version, f.catalogue_version, f.catalogue_hash, f.products_version, f.products_hash,
               min(f.as_of) AS first_night, max(f.as_of) AS last_night, count(DISTINCT f.as_of) AS nights
        FROM decisions.eligibility_firms f GROUP BY ALL ORDER BY first_night, model_version""").df().to_dict("records")
    log = Path(registry) / "decisions.jsonl"
    decisions, unreadable = [], 0
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:  # a line cut short by a crash: said, not fatal to the pack
            record, unreadable = None, unreadable + 1
        if isinstance(record, dict):
            record = {"champion": None, "candidate": {}, "score_4_19_1": None, "decided_on": None,
                      "version": None, "promoted": False, "reason": "", **record}
            decisions.append({**record, "verdict": verdict_text(record, lang)})
    return {"nights": nights, "decisions": decisions, "unreadable": unreadable}


NO_DECISION = ("该日之前没有训练记录(贷款记录不足,或从未运行训练)",
               "no training verdict is recorded by that night (the loan book too short, or training never run)")


def _decision_day(value) -> date | None:
    """A verdict's `decided_on` as a date ('2026-11-30', or a time of day after it), None when unreadable."""
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _no_model_pack(con: duckdb.DuckDBPyConnection, as_of: date, registry: Path, out: Path, lang: str) -> Path:
    """A night decided with no PD model ran on the 4+19+1 score and its rules alone: the pack says
    so, with the latest training verdict recorded by that night (why no candidate was promoted)
    and the version history."""
    zh = lang == "zh"
    history = version_history(con, registry, lang)
    # the latest by date, not by the log's order: a training as of an earlier date may be run (and
    # logged) after the night; of one date, the one logged last. A verdict without a readable date
    # cannot be placed before the night and is not quoted for it (the history lists it)
    dated = [(day, i, d) for i, d in enumerate(history["decisions"])
             if (day := _decision_day(d.get("decided_on"))) is not None and day <= as_of]
    last = max(dated, key=lambda t: t[:2])[2] if dated else None
    folder = out / "audit" / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return _write(folder / "audit_pack.html", TEMPLATES.get_template("audit_no_model.html.j2").render(
        lang=lang, zh=zh, as_of=as_of.isoformat(), history=history, last=last,
        reason=NO_DECISION[0 if zh else 1]))


def night_decided(con: duckdb.DuckDBPyConnection, as_of: date) -> bool:
    """Whether eligibility was decided for the date (with a model or on the score alone)."""
    return has_table(con, "decisions.eligibility_firms") and con.execute(
        "SELECT count(*) > 0 FROM decisions.eligibility_firms WHERE as_of = ?", [as_of]).fetchone()[0]


def audit_pack(con: duckdb.DuckDBPyConnection, as_of: date, registry: Path, cat: Catalogue, out: Path,
               lang: str = "zh", dependence_sample: int = 2000) -> Path:
    """The regulator's pack for the model that decided `as_of`: model card, global SHAP importance and
    dependence plots, outcomes and calibration by segment, and the history of versions. With no
    model that night, a pack that says it ran on the score alone, and why."""
    used = model_of_night(con, as_of)
    if used is None and night_decided(con, as_of):  # that night ran without a model, whatever came after
        return _no_model_pack(con, as_of, registry, out, lang)
    if used is None:
        raise ReplayError(f"no night stored for {as_of}: nothing was decided that day")
    model = load_model(registry, used)
    validation = json.loads((Path(registry) / used / "validation.json").read_text(encoding="utf-8"))
    gbm = validation["out_of_time"]["gbm"]
    importance = con.execute("""SELECT feature, mean_abs_contribution, share FROM scores.pd_importance
                                WHERE as_of = ? ORDER BY rank""", [as_of]).df()
    zh, w = lang == "zh", Words(lang, cat)
    dependence = []
    for feature in importance["feature"].head(4):
        if feature in model.metadata["categorical"]:
            continue
        pts = con.execute(f"""
            SELECT CAST(i.{q(feature)} AS DOUBLE), e.contribution FROM features.pd_inputs i
            JOIN scores.explanations e USING (uscc, as_of)
            WHERE i.as_of = ? AND e.feature = ? AND i.{q(feature)} IS NOT NULL
            ORDER BY hash(i.uscc) LIMIT {int(dependence_sample)}""", [as_of, feature]).fetchall()
        name = w.feature(feature)
        dependence.append({"feature": name, "svg": charts.scatter(pts, x_label=name, y_label="SHAP")})
    segments = _cached_segments(con, used, model, cat, out / "audit" / VALIDATION_CACHE)
    kinds = {"district_code": "districts", "industry": "industries", "size_class": "size_classes"}
    for seg in segments:
        seg["name"], seg["shown"] = w.name("segments", seg["segment"]), w.labelled(kinds[seg["segment"]], seg["value"])
    method = validation.get("method", "loans")
    history = version_history(con, registry, lang)
    context = {
        "lang": lang, "zh": zh, "as_of": as_of.isoformat(), "version": used, "meta": model.metadata, "w": w,
        "validation": validation, "calibration_svg": charts.calibration(
            [(r["mean_pd"], r["observed"], r["n"]) for r in gbm["reliability"]],
            "违约概率" if zh else "PD", "实际违约率" if zh else "observed default rate"),
        "importance_svg": charts.bars([(w.feature(r.feature), 100 * r.share) for r in importance.itertuples()], unit="%"),
        "dependence": dependence, "segments": segments, "material": [s for s in segments if s["material"]],
        "limitations": [x[0 if zh else 1] for x in LIMITATIONS], "history": history,
        "method_text": METHOD_TEXT.get(method, ("", ""))[0 if zh else 1],
        "refinement_text": refinement_text(validation.get("refinement"), lang, validation.get("refinement_validated")),
        "label_text": LABEL_TEXT.get(method, ("", ""))[0 if zh else 1],
        "verdict": verdict_text(validation["decision"], lang), "grade_rows": grade_rows(validation, cat),
        "z_material": Z_MATERIAL, "min_segment": MIN_SEGMENT,
    }
    folder = out / "audit" / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return _write(folder / "audit_pack.html", TEMPLATES.get_template("audit.html.j2").render(**context))
