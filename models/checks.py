"""Checks on a date's PDs and explanations: what a regulator relies on when reading them."""

from __future__ import annotations

from datetime import date

import duckdb

from models.monitoring import SHIFT, WATCH
from models.registry import RegisteredModel
from valuecredit.checks import CheckOutcome

ADDITIVITY_TOLERANCE = 1e-6
MIN_GRADE_FIRMS = 100  # a grade with fewer firms has a mean PD too noisy to order (AAA held 30 of 1,000,000)


def check_pd(con: duckdb.DuckDBPyConnection, as_of: date, model: RegisteredModel) -> list[tuple[str, CheckOutcome]]:
    out = []
    rows, firms, expected, bad_pd, versions = con.execute("""
        SELECT (SELECT count(*) FROM scores.pd WHERE as_of = $1), (SELECT count(DISTINCT uscc) FROM scores.pd WHERE as_of = $1),
               (SELECT count(*) FROM features.indicators WHERE as_of = $1),
               (SELECT count(*) FROM scores.pd WHERE as_of = $1 AND NOT coalesce(pd > 0 AND pd < 1, false)),
               (SELECT list(DISTINCT model_version) FROM scores.pd WHERE as_of = $1)""", [as_of]).fetchone()
    out.append(("every_firm_one_pd", CheckOutcome(
        rows == firms == expected and rows > 0 and bad_pd == 0 and versions == [model.version],
        f"{rows} PD rows for {firms} firms ({expected} have indicators); {bad_pd} PDs outside (0, 1); "
        f"model versions {versions}, pinned {model.version}", {"rows": rows, "outside_0_1": bad_pd})))

    worst, off = con.execute(f"""
        SELECT coalesce(max(abs(p.base_value + e.total - p.log_odds)), 0),
               count(*) FILTER (abs(p.base_value + e.total - p.log_odds) > {ADDITIVITY_TOLERANCE})
        FROM (SELECT * FROM scores.pd WHERE as_of = $1) p
        JOIN (SELECT uscc, sum(contribution) AS total, count(*) AS n FROM scores.explanations WHERE as_of = $1
              GROUP BY uscc) e USING (uscc)""", [as_of]).fetchone()
    missing = con.execute("""SELECT count(*) FROM scores.pd p WHERE as_of = $1 AND NOT EXISTS (
                               SELECT 1 FROM scores.explanations e WHERE e.as_of = $1 AND e.uscc = p.uscc)""",
                          [as_of]).fetchone()[0]
    out.append(("explanations_add_up", CheckOutcome(
        off == 0 and missing == 0,
        f"{off} firms whose contributions miss their log-odds by more than {ADDITIVITY_TOLERANCE} "
        f"(worst {worst:.2e}); {missing} firms without an explanation", {"worst": worst, "off": off, "unexplained": missing})))

    used = model.used_features()
    no_reason, unused = con.execute("""
        SELECT (SELECT count(*) FROM scores.pd WHERE as_of = $1 AND log_odds > base_value AND reason_1 IS NULL),
               (SELECT count(*) FROM scores.explanations e WHERE as_of = $1 AND adverse_rank IS NOT NULL
                  AND feature NOT IN (SELECT unnest($2::VARCHAR[])))""", [as_of, list(used)]).fetchone()
    out.append(("adverse_pds_have_used_reasons", CheckOutcome(
        no_reason == 0 and unused == 0,
        f"{no_reason} firms riskier than the base PD with no reason code; {unused} reasons naming a feature "
        "the model never splits on", {"no_reason": no_reason, "unused_feature_reasons": unused})))

    # grades best first by their mean score (the catalogue's bands never cross); each grade's mean PD
    # at least the better one's: a PD that tells a worse grade less contradicts the score it refines.
    # Firms on the negative list are left out: excluded whatever their grade, they sit mostly in the
    # worst grades (64 % of C at 200,000 firms) and their PDs price no product
    grades = con.execute("""
        SELECT c.grade, count(p.pd) AS firms, avg(p.pd) AS mean_pd FROM scores.commercial_value c
        JOIN scores.pd p USING (uscc, as_of) WHERE as_of = $1 AND c.grade IS NOT NULL AND NOT c.excluded
        GROUP BY c.grade HAVING count(p.pd) >= $2 ORDER BY avg(c.total) DESC""", [as_of, MIN_GRADE_FIRMS]).fetchall()
    inverted = [f"{a} {pa:.2%} > {b} {pb:.2%}" for (a, _, pa), (b, _, pb) in zip(grades, grades[1:]) if pb < pa]
    # one grade alone compares nothing: the check cannot pass on it
    out.append(("pd_rises_with_grade", CheckOutcome(
        not inverted and len(grades) >= 2,
        (f"mean PD falls from a better grade to a worse one: {'; '.join(inverted)}" if inverted else
         "mean PD by grade, best first: " + ", ".join(f"{g} {m:.2%}" for g, _, m in grades) if len(grades) >= 2 else
         f"{len(grades)} grade(s) to compare, at least 2 are needed")
        + f" (grades of at least {MIN_GRADE_FIRMS} firms with a PD, negative-list firms left out)",
        {"grades": len(grades), "inverted": len(inverted)})))

    drift = con.execute("SELECT item, psi, status FROM scores.pd_stability WHERE as_of = ? ORDER BY psi DESC",
                        [as_of]).fetchall()
    shifted = [f"{item} {value:.3f}" for item, value, s in drift if s == "shift"]
    watch = [f"{item} {value:.3f}" for item, value, s in drift if s == "watch"]
    out.append(("population_stability", CheckOutcome(
        not shifted and len(drift) > 0,
        (f"PSI >= {SHIFT} against training: {', '.join(shifted)}" if shifted else f"no PSI >= {SHIFT}")
        + (f"; {WATCH}-{SHIFT}: {', '.join(watch)}" if watch else ""),
        {"shift": len(shifted), "watch": len(watch), "pd_psi": next((v for i, v, _ in drift if i == "pd"), None)})))
    return out
