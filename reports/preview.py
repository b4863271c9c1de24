"""What a draft product catalogue would do (政策预评估), on the store's latest night, before it is
issued: per product the firms it reaches, those it newly reaches and those it no longer reaches
against the catalogue of that night; who they are (district, industry, size class, grade, first
loan or not); their expected default rate and loss from the night's PDs; the pool quota the new
lending would accrue; and the firms at the margin (one shortfall from the draft's conditions).

Read-only: the draft is decided with eligibility's own SQL (`products_sql`, `pairs_sql`) over the
night's stored firm rows (`decisions.eligibility_firms`) and compared with the stored decisions
(`decisions.eligibility_pairs`); the store is opened read-only and nothing goes to the publication.
The figures assume each newly reached firm borrows its limit once from each bank (the largest of
that bank's products that newly reach it): an upper bound of the new lending, not a forecast."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from lending.eligibility import CONDITIONS, pairs_sql, products_sql
from lending.ledger.config import PoolConfig, share
from lending.ledger.statements import statement
from lending.products import ProductCatalogue
from reports.firm import TEMPLATES, _write, tables
from valuecredit.spreadsheet import neutral_frame
from valuecredit.sqltext import lit

BREAKDOWNS = ("district_code", "industry", "size_class", "grade", "first_loan")
MARGIN_LIST = 20  # firms listed per product at the margin (all are counted)


class PreviewError(ValueError):
    """The preview cannot be made: names the store, the date and why."""


@dataclass
class PreviewResult:
    as_of: date
    json_path: Path
    html_path: Path
    changes_path: Path
    figures: dict


def preview(con: duckdb.DuckDBPyConnection, draft: ProductCatalogue, as_of: date,
            pool: PoolConfig) -> tuple[dict, pd.DataFrame]:
    """Every figure of the preview (JSON-ready), and the changes one by one: (product_id, uscc,
    change) for each firm a product newly reaches or no longer reaches."""
    d = f"DATE {lit(as_of.isoformat())}"
    nights = con.execute("SELECT count(*) FROM decisions.eligibility_firms WHERE as_of = ?", [as_of]).fetchone()[0]
    if nights == 0:
        raise PreviewError(f"no eligibility on {as_of}: preview a night the nightly run decided")
    columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         "'decisions' AND table_name = 'eligibility_firms'").fetchall()}
    if "open_loans" not in columns:
        raise PreviewError(f"the night of {as_of} was decided before product kinds: run that night again to preview it")
    current = con.execute("SELECT product_id, bank_id, product_name, kind FROM decisions.eligibility_products "
                          "WHERE as_of = ? ORDER BY product_id", [as_of]).df()
    firms = f"(SELECT * FROM decisions.eligibility_firms WHERE as_of = {d})"
    one_unmet = "bit_count(unmet) = 1"
    con.register("_draft_products", draft.frame())
    try:
        # the draft decided with eligibility's SQL; kept: the reached pairs and those one shortfall away
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _draft AS
            SELECT p.uscc, p.product_id, p.eligible, p.unmet, p.computed_limit_fen
            FROM ({pairs_sql(firms, f"({products_sql('_draft_products', draft.programme, d)})")}) p
            JOIN {firms} f USING (uscc, as_of)
            WHERE p.eligible OR (len(f.gates) = 0 AND {one_unmet.replace('unmet', 'p.unmet')})""")
    finally:
        con.unregister("_draft_products")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _reach AS
        SELECT coalesce(n.uscc, o.uscc) AS uscc, coalesce(n.product_id, o.product_id) AS product_id,
               coalesce(n.eligible, false) AS now_reached, o.uscc IS NOT NULL AS was_reached,
               CASE WHEN n.eligible THEN n.computed_limit_fen ELSE 0 END AS limit_fen
        FROM (SELECT * FROM _draft WHERE eligible) n
        FULL JOIN (SELECT uscc, product_id FROM decisions.eligibility_pairs WHERE as_of = {d} AND eligible) o
            USING (uscc, product_id)""")
    firm_cols = (f"SELECT uscc, district_code, industry, size_class, grade, pd, "
                 f"CASE WHEN prior_loans = 0 THEN 'first_loan' ELSE 'has_borrowed' END AS first_loan FROM {firms}")
    per_product = con.execute(f"""
        SELECT r.product_id, count(*) FILTER (now_reached) AS reached,
               count(*) FILTER (now_reached AND NOT was_reached) AS newly_reached,
               count(*) FILTER (was_reached AND NOT now_reached) AS no_longer_reached,
               count(f.pd) FILTER (now_reached) AS with_pd, avg(f.pd) FILTER (now_reached) AS expected_default_rate,
               CAST(round(sum(f.pd * r.limit_fen) FILTER (now_reached)) AS BIGINT) AS expected_loss_fen,
               sum(r.limit_fen) FILTER (now_reached) AS limits_fen
        FROM _reach r JOIN ({firm_cols}) f USING (uscc) GROUP BY r.product_id ORDER BY r.product_id""").df()
    breakdown = con.execute(f"""
        SELECT product_id, dimension, value, count(*) FILTER (now_reached) AS reached,
               count(*) FILTER (now_reached AND NOT was_reached) AS newly_reached,
               count(*) FILTER (was_reached AND NOT now_reached) AS no_longer_reached
        FROM (SELECT r.product_id, r.now_reached, r.was_reached, f.* EXCLUDE (uscc, pd) FROM _reach r
              JOIN ({firm_cols}) f USING (uscc))
        UNPIVOT (value FOR dimension IN ({', '.join(BREAKDOWNS)}))
        GROUP BY ALL ORDER BY product_id, dimension, value""").df()
    names = [name for name, *_ in CONDITIONS]
    margin = con.execute("""
        SELECT product_id, uscc, CAST(log2(unmet) AS INTEGER) AS bit FROM _draft WHERE NOT eligible
        ORDER BY product_id, uscc""").df()
    margin["condition"] = [names[b] for b in margin["bit"]]
    con.register("_bank", pd.DataFrame({"product_id": [p["product_id"] for p in draft.products],
                                        "bank_id": [p["bank_id"] for p in draft.products]}))
    try:  # the new lending: each newly reached firm borrowing once in the programme (its cap is on the
        # firm's total across banks), at the bank that offers it the largest new limit (ties: the first bank)
        lending = con.execute(f"""
            SELECT b.bank_id, r.uscc, r.limit_fen, f.innovation_status = 'zhuanjingtexin' AS zhuanjingtexin
            FROM _reach r JOIN _bank b USING (product_id) JOIN {firms} f USING (uscc)
            WHERE r.now_reached AND NOT r.was_reached
            QUALIFY row_number() OVER (PARTITION BY r.uscc ORDER BY r.limit_fen DESC, b.bank_id, r.product_id) = 1
            ORDER BY b.bank_id, r.uscc""").df()
    finally:
        con.unregister("_bank")
    changes = con.execute("""SELECT product_id, uscc, CASE WHEN now_reached THEN 'newly_reached'
                                    ELSE 'no_longer_reached' END AS change
                             FROM _reach WHERE now_reached <> was_reached ORDER BY product_id, uscc""").df()
    con.execute("DROP TABLE _draft; DROP TABLE _reach")
    has_pd = bool(con.execute(f"SELECT count(pd) > 0 FROM {firms}").fetchone()[0])
    return {
        "as_of": as_of.isoformat(), "draft": {"path": str(draft.path), "version": draft.version, "hash": draft.content_hash},
        "firms": int(nights), "has_pd": has_pd,
        "pd_note": None if has_pd else f"no champion PD model on {as_of}: no expected default rate or loss",
        "products": _products(draft, current, per_product, breakdown, margin, has_pd),
        "removed_products": sorted(set(current["product_id"]) - {p["product_id"] for p in draft.products}),
        "pool": _pool(con, lending, as_of, pool),
    }, changes


def _products(draft: ProductCatalogue, current: pd.DataFrame, per_product: pd.DataFrame, breakdown: pd.DataFrame,
              margin: pd.DataFrame, has_pd: bool) -> list[dict]:
    stats = per_product.set_index("product_id")
    existing = set(current["product_id"])
    out = []
    for p in draft.products:
        pid = p["product_id"]
        s = stats.loc[pid] if pid in stats.index else None

        def num(c: str, s=s) -> int:
            return int(s[c]) if s is not None and pd.notna(s[c]) else 0
        b = breakdown[breakdown["product_id"] == pid]
        m = margin[margin["product_id"] == pid]
        out.append({
            "product_id": pid, "bank_id": p["bank_id"], "name": p["name"], "kind": p.get("kind", "credit"),
            "new_product": pid not in existing, "reached": num("reached"), "newly_reached": num("newly_reached"),
            "no_longer_reached": num("no_longer_reached"), "limits_fen": num("limits_fen"),
            "expected_default_rate": (round(float(s["expected_default_rate"]), 6)
                                      if has_pd and s is not None and pd.notna(s["expected_default_rate"]) else None),
            "expected_loss_fen": num("expected_loss_fen") if has_pd else None,
            "breakdown": {dim: {str(r.value): {"reached": int(r.reached), "newly_reached": int(r.newly_reached),
                                               "no_longer_reached": int(r.no_longer_reached)}
                                for r in b[b["dimension"] == dim].itertuples()} for dim in BREAKDOWNS},
            "margin": {"firms": len(m), "by_condition": {str(k): int(v) for k, v in m["condition"].value_counts().sort_index().items()},
                       "first": [{"uscc": r.uscc, "lacks": r.condition} for r in m.head(MARGIN_LIST).itertuples()]},
        })
    return out


def _pool(con: duckdb.DuckDBPyConnection, lending: pd.DataFrame, as_of: date, cfg: PoolConfig) -> dict:
    """Per bank: the new lending (each newly reached firm once, where it is offered most), the quota it
    would accrue (2 % of each loan's programme share) and what the 4 % cap lets in, against the bank's
    quota and programme balance posted by the date."""
    balances = {}
    if "ledger.postings" in tables(con):
        frame = statement(con, as_of, as_of, cfg=cfg)
        balances = {r.bank_id: (int(r.closing_quota_balance), int(r.programme_balance)) for r in frame.itertuples()}
    banks = []
    for bank_id, rows in lending.groupby("bank_id", sort=True):
        programme = [min(int(f), cfg.loan_cap(as_of, bool(z))) for f, z in zip(rows["limit_fen"], rows["zhuanjingtexin"])]
        due = sum(share(a, cfg.accrual_bp) for a in programme)
        quota, balance = balances.get(bank_id, (0, 0))
        room = max(0, share(balance + sum(programme), cfg.cap_bp) - quota)
        banks.append({"bank_id": bank_id, "firms": len(rows), "new_lending_fen": int(rows["limit_fen"].sum()),
                      "programme_amount_fen": sum(programme), "accrual_due_fen": due, "accrued_fen": min(due, room),
                      "quota_before_fen": quota, "programme_balance_before_fen": balance})
    return {"accrual_bp": cfg.accrual_bp, "cap_bp": cfg.cap_bp, "ledger": bool(balances), "banks": banks,
            "accrued_fen": sum(b["accrued_fen"] for b in banks), "new_lending_fen": sum(b["new_lending_fen"] for b in banks)}


def write_preview(con: duckdb.DuckDBPyConnection, draft: ProductCatalogue, as_of: date, pool: PoolConfig, out: Path,
                  lang: str = "zh") -> PreviewResult:
    figures, changes = preview(con, draft, as_of, pool)
    out.mkdir(parents=True, exist_ok=True)
    # product ids come from the draft: text a spreadsheet must not take for a formula
    _write(out / f"preview-{as_of.isoformat()}-changes.csv", neutral_frame(changes).to_csv(index=False, lineterminator="\n"))
    json_path = _write(out / f"preview-{as_of.isoformat()}.json",
                       json.dumps(figures, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    html = TEMPLATES.get_template("preview.html.j2").render(lang=lang, zh=lang == "zh", f=figures,
                                                            breakdowns=BREAKDOWNS)
    return PreviewResult(as_of, json_path, _write(out / f"preview-{as_of.isoformat()}.html", html),
                         out / f"preview-{as_of.isoformat()}-changes.csv", figures)
