"""The portfolio monitoring report, for one bank or for the programme, on a business date: score and
PD distributions, grade migration since the last month, stability (PSI) of the score and of every
model input with the 0.10/0.25 thresholds and sample sizes, eligibility and approval rates, early
warnings, the compensation-pool statement and decision-deadline breaches.

A bank's book is the firms it has lent to; the programme's is every scored firm."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from lending.eligibility import GRADES
from lending.gate import bank_facing_firms_sql
from lending.ledger.config import PoolConfig
from lending.ledger.statements import COUNTS, statement
from models.monitoring import SHIFT, WATCH, psi, reference, status
from reports import charts
from reports.firm import TEMPLATES, _write, inside, tables
from reports.vocabulary import Words
from scoring.catalogue import Catalogue, load_catalogue

PD_EDGES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 1.0)
MIGRATION_DAYS = 28  # "since the last month": the latest scored night at least four weeks earlier


def portfolio(con: duckdb.DuckDBPyConnection, as_of: date, bank_id: str | None = None,
              pool: PoolConfig | None = None) -> dict:
    """Every figure of the report (a bank's, or the programme's when `bank_id` is None); the pool
    statement under `pool` (default: the configuration in force)."""
    has = tables(con)
    # a bank's report is bank-facing: its borrowers through the one authorisation gate, like its files
    book = (f"""(SELECT DISTINCT uscc FROM staging.loans WHERE bank_id = $bank AND disbursed_on <= $d
                 AND uscc IN ({bank_facing_firms_sql(con, as_of)}))""" if bank_id
            else "(SELECT uscc FROM scores.commercial_value WHERE as_of = $d)")
    given = {"d": as_of, "bank": bank_id}

    def run(sql: str):  # DuckDB refuses named parameters a statement does not use
        return con.execute(sql, {k: v for k, v in given.items() if f"${k}" in sql})

    scores = run(f"""SELECT s.uscc, s.total, s.grade, pd.pd FROM scores.commercial_value s
                             LEFT JOIN (SELECT uscc, pd FROM scores.pd WHERE as_of = $d) pd USING (uscc)
                             WHERE s.as_of = $d AND s.uscc IN {book}""" if "scores.pd" in has else
                         f"""SELECT uscc, total, grade, NULL::DOUBLE AS pd FROM scores.commercial_value
                             WHERE as_of = $d AND uscc IN {book}""").df()
    if scores.empty and not bank_id:  # a bank may have no (authorised) borrowers yet; the programme always has firms
        raise ValueError(f"no scored firms for the programme on {as_of}")
    out: dict = {"as_of": as_of, "bank_id": bank_id, "firms": len(scores)}
    counts, _ = np.histogram(scores["total"], bins=np.arange(0, 1001, 100))
    out["score_hist"] = charts.histogram(counts.tolist(), [f"{i}" for i in range(0, 1000, 100)])
    known_pd = scores["pd"].dropna()
    pd_counts, _ = np.histogram(known_pd, bins=PD_EDGES)
    out["pd_hist"] = charts.histogram(pd_counts.tolist(), [f"≤{e:.0%}" for e in PD_EDGES[1:]])
    out["pd_mean"] = float(known_pd.mean()) if len(known_pd) else None
    out["grades"] = {g: int((scores["grade"] == g).sum()) for g in GRADES}
    by_grade = scores.groupby("grade")["pd"].mean()
    out["grade_pd"] = {g: float(by_grade[g]) if g in by_grade.index and pd.notna(by_grade[g]) else None for g in GRADES}
    # grade migration and score stability against the last month's night
    before = con.execute("SELECT max(as_of) FROM scores.commercial_value WHERE as_of <= ?",
                         [as_of - timedelta(days=MIGRATION_DAYS)]).fetchone()[0]
    out["previous"] = before
    if before is not None and len(scores):
        earlier = con.execute("SELECT uscc, total, grade FROM scores.commercial_value WHERE as_of = ?", [before]).df()
        both = scores.merge(earlier, on="uscc", suffixes=("", "_before"))
        out["migration"] = pd.crosstab(both["grade_before"], both["grade"]).reindex(index=list(GRADES), columns=list(GRADES),
                                                                                    fill_value=0).astype(int)
        value = psi(reference(earlier["total"]), scores["total"])
        out["score_psi"] = {"psi": value, "status": status(value), "n": len(scores), "n_reference": len(earlier)}
    if "scores.pd_stability" in has:
        out["feature_psi"] = con.execute("""SELECT item, psi, status FROM scores.pd_stability WHERE as_of = ?
                                            ORDER BY psi DESC, item""", [as_of]).df().to_dict("records")
        out["feature_psi_n"] = int(con.execute("SELECT count(*) FROM scores.pd WHERE as_of = ?", [as_of]).fetchone()[0])
    # eligibility (authorised firms eligible for one of the bank's products, or any) and approvals
    if "decisions.eligibility_pairs" in has:
        # every firm is decided for every product, so the authorised firms are counted once per firm,
        # not among the pairs (at 70,000,000 pairs that is 13 s for the programme); an eligible firm
        # is authorised (no authorisation is a gate)
        products = f"SELECT product_id FROM decisions.eligibility_products WHERE as_of = $d {'AND bank_id = $bank' if bank_id else ''}"
        out["eligibility"] = dict(zip(("authorised", "eligible"), run(f"""
            SELECT (SELECT count(*) FROM decisions.eligibility_firms WHERE as_of = $d AND authorised)
                       * (SELECT count(*) > 0 FROM ({products}))::INT,
                   (SELECT count(DISTINCT uscc) FROM decisions.eligibility_pairs
                    WHERE as_of = $d AND eligible AND product_id IN ({products}))""").fetchone()))
    apps = run(f"""SELECT count(*) FILTER (decided_on <= $d), count(*) FILTER (decided_on <= $d AND decision = 'approved')
                    FROM staging.loan_applications WHERE applied_on <= $d {'AND bank_id = $bank' if bank_id else ''}""").fetchone()
    out["applications"] = {"decided": apps[0], "approved": apps[1]}
    if "decisions.early_warnings" in has:
        out["warnings"] = run(f"""SELECT kind, severity, count(*) AS n FROM decisions.early_warnings
                                          WHERE status = 'open' AND raised_on <= $d
                                                {'AND bank_id = $bank AND uscc IN ' + book if bank_id else ''}
                                          GROUP BY ALL ORDER BY kind, severity""").df().to_dict("records")
    if "decisions.application_deadlines" in has:
        out["deadlines"] = run(f"""SELECT status, count(*) AS n FROM decisions.application_deadlines
                                           WHERE as_of = $d {'AND bank_id = $bank' if bank_id else ''}
                                           GROUP BY status ORDER BY status""").df().to_dict("records")
    if "ledger.postings" in has:
        frame = statement(con, date(as_of.year, 1, 1), as_of, bank_id, pool)
        row = frame[frame["bank_id"] == (bank_id or "programme")]
        out["pool"] = {c: int(row[c].iloc[0]) for c in frame.columns[1:]} if len(row) else {}
    return out


def write_portfolio(con: duckdb.DuckDBPyConnection, as_of: date, out: Path, bank_id: str | None = None,
                    lang: str = "zh", cat: Catalogue | None = None, pool: PoolConfig | None = None) -> Path:
    figures = portfolio(con, as_of, bank_id, pool)
    folder = inside(out, bank_id or "programme", as_of.isoformat())
    folder.mkdir(parents=True, exist_ok=True)
    html = TEMPLATES.get_template("portfolio.html.j2").render(lang=lang, zh=lang == "zh", f=figures, watch=WATCH,
                                                               shift=SHIFT, grades=GRADES, counts=COUNTS,
                                                               w=Words(lang, cat or load_catalogue()))
    return _write(folder / "portfolio.html", html)
