"""The score report of a firm on a business date, and a bank's nightly batch of them.

Everything a report shows is read from what the nightly run stored for that date (the score, the
indicators and their peer percentiles, the negative-list hits, the PD with its SHAP contributions,
eligibility for every product) and from the departments' data as delivered by then (the monthly
trends), in bulk for a batch: one query per section, not one per firm."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import jinja2
import numpy as np
import pandas as pd

from data_contracts.personal import LEGAL_REP_NAME, log_read, masked_legal_rep_sql
from lending.eligibility import eligibility_of_sql
from lending.gate import bank_facing_firms_sql
from reports import charts
from reports.vocabulary import evidence, indicator_value, load_vocabulary, money_fen, number, percent, shortfall
from scoring.catalogue import Catalogue
from scoring.score import peer_percentiles_of
from scoring.sql import PointInTime
from valuecredit.sqltext import SQL, lit

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
# the monthly sources behind the indicators, as trends: (source, column, label zh, label en, scale)
TRENDS = (("tax_monthly", "revenue_fen", "月营业收入(万元)", "Monthly revenue (RMB 10,000)", 1e6),
          ("social_insurance", "insured_headcount", "参保人数(人)", "Insured staff (people)", 1.0),
          ("power", "kwh", "用电量(千瓦时)", "Power use (kWh)", 1.0))
TREND_MONTHS = 12
class ReportError(ValueError):
    """Nothing stored to report on: names the firm or bank and the date."""


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """schema.table of every table in the store: a report leaves out what a store has not computed yet
    (no PDs before the first model, no eligibility before the first catalogue run)."""
    return {t for (t,) in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() UNION ALL "
                                      "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
                                      ).fetchall()}


def gather(con: duckdb.DuckDBPyConnection, usccs: list[str], as_of: date, peers_sql: SQL | None = None) -> dict[str, dict]:
    """Every section of the report for each firm, keyed by USCC. `peers_sql`: the firms' peer percentiles
    computed beforehand (a batch ranks every peer group once, not once per chunk)."""
    d = f"DATE {lit(as_of.isoformat())}"
    pit = PointInTime("", as_of)
    con.execute("CREATE OR REPLACE TEMP TABLE _report_firms (uscc VARCHAR PRIMARY KEY)")
    con.executemany("INSERT INTO _report_firms VALUES (?)", [[u] for u in sorted(set(usccs))])
    mine = "uscc IN (SELECT uscc FROM _report_firms)"
    scores = con.execute(f"SELECT * FROM scores.commercial_value WHERE as_of = {d} AND {mine}").df().set_index("uscc")
    if scores.empty:
        raise ReportError(f"no score on {as_of} for {', '.join(usccs[:3])}{' ...' if len(usccs) > 3 else ''}: "
                          "not a registered firm, or no nightly run for that date")
    profile = con.execute(f"""
        SELECT uscc, any_value(name) AS name, any_value(district_code) AS district_code, any_value(industry) AS industry,
               any_value(size_class) AS size_class, any_value(founded_on) AS founded_on,
               any_value(registered_capital_fen) AS registered_capital_fen, any_value(status) AS status,
               {masked_legal_rep_sql("any_value")} AS legal_rep
        FROM {pit.rows("registry")} WHERE {mine} GROUP BY uscc""").df().set_index("uscc")
    log_read(con, "firm_report", "registry", as_of, records=len(profile), masked=True, columns=(LEGAL_REP_NAME,))
    values = con.execute(f"SELECT * FROM features.indicators WHERE as_of = {d} AND {mine}").df().set_index("uscc")
    peers = con.execute(f"SELECT * FROM {peers_sql} WHERE {mine}" if peers_sql else
                        peer_percentiles_of(con, as_of, "_report_firms")).df().set_index("uscc")
    hits = con.execute(f"SELECT * FROM scores.negative_hits WHERE as_of = {d} AND {mine} ORDER BY uscc, rule_id, evidence_date, source, detail").df()
    trends = {src: con.execute(f"""
        SELECT uscc, period, sum({col}) AS v FROM {pit.rows(src)} WHERE {mine} GROUP BY uscc, period ORDER BY uscc, period""").df()
              for src, col, *_ in TRENDS}
    has = tables(con)
    pd_rows = (con.execute(f"SELECT * FROM scores.pd WHERE as_of = {d} AND {mine}").df().set_index("uscc")
               if "scores.pd" in has else pd.DataFrame())
    contributions = (con.execute(f"""SELECT e.uscc, e.feature, e.contribution, r.code, r.zh, r.en
                                     FROM scores.explanations e LEFT JOIN scores.reason_codes r USING (feature)
                                     WHERE e.as_of = {d} AND e.{mine}""").df()
                     if "scores.explanations" in has else pd.DataFrame(columns=["uscc"]))
    products = (con.execute(f"""SELECT * FROM ({eligibility_of_sql(as_of, '_report_firms')})
                                ORDER BY uscc, eligible DESC, CASE WHEN eligible THEN rate_bp END, limit_fen DESC,
                                         match_degree DESC, product_id""").df()
                if "decisions.eligibility_pairs" in has else pd.DataFrame(columns=["uscc"]))
    # each section split by firm once, rather than a mask over the whole batch per firm
    hits, contributions, products = _by_firm(hits), _by_firm(contributions), _by_firm(products)
    trends = {src: _by_firm(f) for src, f in trends.items()}
    out = {}
    for uscc in sorted(set(usccs)):
        if uscc not in scores.index:
            raise ReportError(f"no score for {uscc} on {as_of}: not a registered firm, or no nightly run for that date")
        out[uscc] = {
            "uscc": uscc, "as_of": as_of, "score": scores.loc[uscc].to_dict(),
            "profile": profile.loc[uscc].to_dict() if uscc in profile.index else {},
            "values": values.loc[uscc].to_dict() if uscc in values.index else {},
            "peers": peers.loc[uscc].to_dict() if uscc in peers.index else {},
            "hits": hits(uscc).to_dict("records"),
            "trends": {src: f(uscc).to_dict("records") for src, f in trends.items()},
            "pd": pd_rows.loc[uscc].to_dict() if uscc in pd_rows.index else None,
            "contributions": contributions(uscc).to_dict("records"),
            "products": products(uscc).to_dict("records"),
        }
    return out


def _by_firm(frame: pd.DataFrame):
    """uscc -> that firm's rows (none: an empty frame with the same columns)."""
    groups = {u: g for u, g in frame.groupby("uscc", sort=False)}
    return lambda uscc: groups.get(uscc, frame.iloc[0:0])


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _trend(rows: list[dict], as_of: date, scale: float) -> list[tuple[str, float | None]]:
    """The last TREND_MONTHS delivered periods, gaps kept as gaps."""
    if not rows:
        return []
    by = {str(r["period"]): r["v"] for r in rows}
    last = max(by)
    y, m = int(last[:4]), int(last[-2:])
    months = []
    for k in range(TREND_MONTHS - 1, -1, -1):
        yy, mm = divmod(y * 12 + m - 1 - k, 12)
        months.append(f"{yy}-{mm + 1:02d}")
    return [(p, None if by.get(p) is None or pd.isna(by.get(p)) else float(by[p]) / scale) for p in months]


def view_model(data: dict, cat: Catalogue, lang: str, top: int = 8, bank_id: str | None = None) -> dict:
    """What the template shows, in the report's language, every code named (`reports.vocabulary`);
    for a bank, only its own products (a bank's folder holds nothing of another bank's)."""
    zh, voc = lang == "zh", load_vocabulary()
    s, values, peers = data["score"], data["values"], data["peers"]
    dims = [(d.zh if zh else d.en, float(s[d.key])) for d in cat.dimensions]
    missing = set() if s.get("missing") is None else set(s["missing"])
    indicators, shown_value = [], {}
    for ind in cat.indicators:
        v = values.get(ind.key)
        shown_value[ind.key] = indicator_value(v, ind.unit, ind.key, lang)
        indicators.append({
            "id": ind.id, "name": ind.zh if zh else ind.en, "dimension": next(d.zh if zh else d.en for d in cat.dimensions
                                                                             if d.key == ind.dimension),
            "value": shown_value[ind.key], "points": _num(s.get(f"pts_{ind.key}")), "missing": ind.key in missing,
            "percentile": _num(peers.get(ind.key)),
        })
    trends = [{"label": zh_label if zh else en_label,
               "svg": charts.spark(_trend(data["trends"][src], data["as_of"], scale),
                                   lambda v, s=scale: number(v, 1 if s > 1 else 0))}
              for src, _, zh_label, en_label, scale in TRENDS]
    pdr, contributions = data["pd"], data["contributions"]
    reasons, waterfall = [], ""
    if pdr is not None and contributions:
        # the largest contributions first (plain lists: a batch renders thousands of these, and a
        # DataFrame's sort and slices per report took most of its time)
        c = sorted(contributions, key=lambda r: (-abs(r["contribution"]), r["feature"]))
        shown, rest = c[:top], float(np.sum(np.array([r["contribution"] for r in c[top:]], dtype=float)))
        names = {i.key: (i.zh if zh else i.en) for i in cat.indicators}

        def label(feature: str) -> str:  # the feature's name, and the firm's value where the report shows it
            name = names.get(feature) or voc.name("features", feature, lang)
            value = shown_value.get(feature)
            return f"{name}: {value}" if value not in (None, "—") else name

        steps = [(label(r["feature"]), float(r["contribution"])) for r in shown]
        if len(c) > top:
            steps.append(("其他因素" if zh else "all other factors", float(rest)))
        waterfall = charts.waterfall(float(pdr["base_value"]), steps,
                                     f"{'该企业对数几率' if zh else 'the firm' + chr(39) + 's log-odds'} = PD {percent(float(pdr['pd']), 2)}")
        raising = [r for r in c if r["contribution"] > 0][:4]  # the reasons: what raised the PD most
        reasons = [{"code": r["code"], "text": r["zh"] if zh else r["en"], "contribution": float(r["contribution"])}
                   for r in raising]
    products = [{"product": p["product_name"], "product_id": p["product_id"], "bank": p["bank_id"], "eligible": bool(p["eligible"]),
                 "limit": money_fen(int(p["limit_fen"]), lang),
                 "rate": None if pd.isna(p["rate_bp"]) else percent(int(p["rate_bp"]) / 10_000, 2),
                 "term": f"{int(p['term_months'])}{'个月' if zh else ' months'}", "match": percent(float(p["match_degree"]), 0),
                 "gates": [voc.name("gates", g, lang) for g in p["gates"]],
                 "lacks": [shortfall(x["condition"], x["value"], x["required"], lang) for x in p["shortfalls"]]}
                for p in data["products"] if bank_id is None or p["bank_id"] == bank_id]
    raw = data["profile"]
    founded = raw.get("founded_on")
    profile = {"name": raw.get("name"), "legal_rep": raw.get("legal_rep"),
               "district": voc.labelled("districts", raw.get("district_code"), lang),
               "industry": voc.labelled("industries", raw.get("industry"), lang),
               "size_class": voc.name("size_classes", raw.get("size_class"), lang),
               "status": voc.name("statuses", raw.get("status"), lang),
               "founded_on": None if founded is None or pd.isna(founded) else pd.Timestamp(founded).date().isoformat(),
               "capital": money_fen(_num(raw.get("registered_capital_fen")), lang)}
    rules = {r.id: (r.zh if zh else r.en) for r in cat.negative_rules}
    hits = [{"rule_id": h["rule_id"], "rule": rules.get(h["rule_id"], h["rule"]),
             "source": voc.name("sources", h["source"], lang),
             "evidence_date": None if pd.isna(h["evidence_date"]) else pd.Timestamp(h["evidence_date"]).date().isoformat(),
             "evidence": evidence(h["detail"], lang)} for h in data["hits"]]
    return {
        "lang": lang, "zh": zh, "uscc": data["uscc"], "as_of": data["as_of"].isoformat(), "profile": profile,
        "total": float(s["total"]), "grade": s["grade"], "excluded": bool(s["excluded"]), "dims_svg": charts.bars(dims),
        "dims": dims, "indicators": indicators, "trends": trends, "hits": hits,
        "pd": None if pdr is None else percent(float(pdr["pd"]), 2), "waterfall": waterfall, "reasons": reasons,
        "eligible": [p for p in products if p["eligible"]], "others": [p for p in products if not p["eligible"]],
        "versions": {"model": None if pdr is None else pdr["model_version"], "catalogue": f"v{s['catalogue_version']} "
                     f"({str(s['catalogue_hash'])[:12]})", "products": _products_version(data["products"]),
                     "snapshot": s["snapshot_id"]},
    }


def _products_version(products: list[dict]) -> str:
    return f"v{products[0]['products_version']} ({str(products[0]['products_hash'])[:12]})" if products else "—"


def render(data: dict, cat: Catalogue, lang: str = "zh", bank_id: str | None = None) -> str:
    if lang not in ("zh", "en"):
        raise ValueError(f"--lang must be zh or en, not {lang!r}")
    return TEMPLATES.get_template("firm.html.j2").render(**view_model(data, cat, lang, bank_id=bank_id))


def write_firm_report(con: duckdb.DuckDBPyConnection, uscc: str, as_of: date, cat: Catalogue, out: Path,
                      lang: str = "zh") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    html = render(gather(con, [uscc], as_of)[uscc], cat, lang)
    return _write(out / f"{uscc}.{lang}.html", html)


def _write(path: Path, text: str) -> Path:
    """Aside, then renamed: a reader never opens half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def inside(out: Path, *parts: str) -> Path:
    """`out/parts...`, refused unless it stays inside `out`: a bank id (or any name) never makes a
    path that climbs out of the folder it was given."""
    root, path = Path(out).resolve(), Path(out).joinpath(*parts)
    if path.resolve() == root or not path.resolve().is_relative_to(root):
        raise ReportError(f"{'/'.join(parts)!r} would write outside {out}: refused")
    return path


@dataclass
class BatchSummary:
    bank_id: str
    as_of: date
    reports: int
    folder: str
    eligible: int  # the firms the batch could have covered; `reports` of them, with a limit


def bank_batch(con: duckdb.DuckDBPyConnection, bank_id: str, as_of: date, cat: Catalogue, out: Path,
               lang: str = "zh", limit: int | None = None, chunk: int = 500, new_since: date | None = None) -> BatchSummary:
    """One bank's batch: see `bank_batches`."""
    return bank_batches(con, [bank_id], as_of, cat, out, lang, limit, chunk, new_since)[0]


def bank_batches(con: duckdb.DuckDBPyConnection, banks: list[str], as_of: date, cat: Catalogue, out: Path,
                 lang: str = "zh", limit: int | None = None, chunk: int = 500,
                 new_since: date | None = None) -> list[BatchSummary]:
    """For each bank, a report on each firm eligible for one of its products on the date and in the
    authorisation gate (`lending.gate`, as everything a bank receives), showing only the bank's products, and an index page; `limit` takes
    each bank's firms with the largest limits. With `new_since`, only the firms that were eligible for none of
    the bank's products that night: the bank's new leads, which is what the nightly batch renders
    rather than every eligible firm every night. A firm eligible at several banks is read once."""
    eligible = """SELECT bank_id, p.uscc, count(*) AS products, max(p.computed_limit_fen) AS best_limit_fen,
                         min(p.rate_bp) AS best_rate_bp
                  FROM decisions.eligibility_pairs p JOIN decisions.eligibility_products USING (as_of, product_id)
                  WHERE p.as_of = $d AND list_contains($banks, bank_id) AND p.eligible GROUP BY bank_id, p.uscc"""
    rows = con.execute(f"""SELECT * FROM ({eligible.replace("$d", "$today")}) t
                           WHERE t.uscc IN ({bank_facing_firms_sql(con, as_of)}) AND NOT EXISTS (SELECT 1 FROM ({eligible.replace("$d", "$before")}) b
                                             WHERE b.bank_id = t.bank_id AND b.uscc = t.uscc)
                           ORDER BY bank_id, uscc""", {"today": as_of, "before": new_since, "banks": banks}).fetchall()
    per_bank: dict[str, list[tuple]] = {b: [] for b in banks}
    for row in rows:
        per_bank[row[0]].append(row)
    leads = {b: len(r) for b, r in per_bank.items()}
    if limit is not None:  # the firms with the largest limits
        per_bank = {b: sorted(r, key=lambda x: (-(x[3] or 0), x[1]))[:limit] for b, r in per_bank.items()}
    by_firm: dict[str, list[tuple]] = {}
    for r in (r for rs in per_bank.values() for r in rs):
        by_firm.setdefault(r[1], []).append(r)
    folders = {b: inside(out, b, as_of.isoformat()) for b in banks}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, list[dict]] = {b: [] for b in banks}
    voc = load_vocabulary()
    firms = sorted(by_firm)
    con.execute("CREATE OR REPLACE TEMP TABLE _batch_firms (uscc VARCHAR PRIMARY KEY)")
    con.execute("INSERT INTO _batch_firms SELECT unnest(?::VARCHAR[])", [firms])  # none, some nights
    con.execute(f"CREATE OR REPLACE TEMP TABLE _batch_peers AS {peer_percentiles_of(con, as_of, '_batch_firms')}")
    for start in range(0, len(firms), chunk):
        data = gather(con, firms[start:start + chunk], as_of, "_batch_peers")
        for uscc in firms[start:start + chunk]:
            d, p = data[uscc], data[uscc]["profile"]
            for bank, _, n, best_limit, best_rate in by_firm[uscc]:
                _write(folders[bank] / f"{uscc}.html", render(d, cat, lang, bank_id=bank))
                index[bank].append({"uscc": uscc, "name": p.get("name"), "district": voc.name("districts", p.get("district_code"), lang),
                                    "industry": voc.labelled("industries", p.get("industry"), lang), "grade": d["score"]["grade"],
                                    "total": float(d["score"]["total"]),
                                    "pd": None if d["pd"] is None else percent(float(d["pd"]["pd"]), 2),
                                    "products": n, "best_limit_fen": int(best_limit or 0),
                                    "best_limit": money_fen(int(best_limit or 0), lang), "best_rate": percent(best_rate / 10_000, 2)})
    con.execute("DROP TABLE _batch_peers; DROP TABLE _batch_firms")
    for bank in banks:  # the index as it says: the largest limit first, then by USCC
        firms_shown = sorted(index[bank], key=lambda f: (-f["best_limit_fen"], f["uscc"]))
        _write(folders[bank] / "index.html", TEMPLATES.get_template("index.html.j2").render(
            lang=lang, zh=lang == "zh", bank_id=bank, as_of=as_of.isoformat(), firms=firms_shown, new_since=new_since,
            leads=leads[bank]))
    return [BatchSummary(b, as_of, len(index[b]), str(folders[b]), leads[b]) for b in banks]


def find_firms(con: duckdb.DuckDBPyConnection, text: str, limit: int = 20) -> pd.DataFrame:
    """Firms on the register whose name contains `text` or whose code starts with it (case aside),
    with their latest score and grade: how a person finds the code the other commands take. Names of
    firms are public; nothing personal is read."""
    scored = "scores" in {s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
    score = ("LEFT JOIN (SELECT uscc, arg_max(total, as_of) AS total, arg_max(grade, as_of) AS grade, max(as_of) AS as_of "
             "FROM scores.commercial_value GROUP BY uscc) s USING (uscc)") if scored else ""
    return con.execute(f"""
        SELECT r.uscc, r.name, r.district_code, r.industry, r.status,
               {'s.total, s.grade, s.as_of' if scored else 'NULL AS total, NULL AS grade, NULL AS as_of'}
        FROM staging.registry r {score}
        WHERE contains(lower(r.name), lower(?)) OR starts_with(r.uscc, upper(?))
        ORDER BY NOT starts_with(r.uscc, upper(?)), r.name, r.uscc LIMIT ?""", [text, text, text, limit]).df()


def firm_name(con: duckdb.DuckDBPyConnection, uscc: str) -> str | None:
    """The firm's registered name (None for a code not on the register)."""
    return con.execute("SELECT any_value(name) FROM staging.registry WHERE uscc = ?", [uscc]).fetchone()[0]
