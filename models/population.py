"""The population the PD decides for: every registered firm, and what the departments deliver about
each of them, borrower or not.

Borrowers are the firms banks already chose, so the loan book spans a narrow band of risk; a model
that has only seen that band says little about the rest. Every firm, however, has creditors besides
banks (suppliers, landlords, the tax office), and a firm that does not pay them is sued: the court
lists it as a dishonest judgement debtor (失信被执行人) once a judgement goes unpaid. A new listing
within the 12 months from the first day of a month is the population-level target
(`court_default`): the court's record of a default, delivered for borrowers and non-borrowers alike.
A firm off the register (revoked, cancelled, moved out) within the window without a listing is left out (`censored`): the
record of it stops before the window closes, and counting it as "no default" told the riskiest
tenth of firms a fifth under their realised rate (docs/DESIGN.md, "The population PD").

Broader distress (arrears of three months or more, abnormal-operation listings, revocation) was
measured as the target and rejected: arrears persist, so such a target is mostly "in arrears now,
still in arrears later" (out-of-time AUC 0.90 on its own events) and its ranking tells little about
default among the firms banks lend to; calibrated to loan defaults it understated the riskiest
tenth of firms by half (docs/DESIGN.md, "The population PD").
Everything here reads the store's deliveries only (never the simulator's truth): these are the
outcomes a programme really has.

The targets are the first day of a month (features read the data month two before it, as for a
loan), for every month whose 12-month window the feeds have closed and that has a year of history
behind its data month, every second month, sampled by a hash of the USCC when there are more than
`max_rows` firm-months (the same firms every time).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from data_contracts.contracts import FIRM_STATUSES
from models.features import DATA_MONTH_LAG, features_sql
from scoring.catalogue import Catalogue
from scoring.score import score_select_sql
from scoring.sql import indicators_sql
from valuecredit.sqltext import SQL, lit

WINDOW_MONTHS = 12
HISTORY_MONTHS = 12  # a data month needs a year of panels behind it for the trends
EVERY_MONTHS = 2
MAX_ROWS = 400_000
# off the register the departments report on: every status of the registry contract but 存续 (in
# operation), as the negative list's not_operating rule reads it (revoked, cancelled, moved out)
EXITED = tuple(s for s in FIRM_STATUSES if s != "存续")


def _month_index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def target_months(con: duckdb.DuckDBPyConnection) -> list[date]:
    """First days of the months whose 12-month window is closed in every monthly panel that the
    target reads, and whose data month has a year of history behind it, every EVERY_MONTHS months
    counted back from the latest."""
    first, last = con.execute("""SELECT max(lo), min(hi) FROM (
        SELECT min(period) AS lo, max(period) AS hi FROM staging.social_insurance
        UNION ALL SELECT min(period), max(period) FROM staging.tax_monthly)""").fetchone()
    if first is None:
        return []
    earliest = _month_index(first) + HISTORY_MONTHS + DATA_MONTH_LAG
    latest = _month_index(last) - WINDOW_MONTHS + 1
    return [date(k // 12, k % 12 + 1, 1) for k in range(latest, earliest - 1, -EVERY_MONTHS)][::-1]


def create_targets(con: duckdb.DuckDBPyConnection, months: list[date], max_rows: int = MAX_ROWS) -> int:
    """`_pop_targets` (uscc, as_of): every firm registered and not off the register (`exits_sql`) by
    each month's first day, one firm in `share` kept by a hash of its USCC when the rows would exceed
    `max_rows`. Returns the rows."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _pop_all AS
        SELECT r.uscc, m.as_of FROM staging.registry r JOIN (SELECT unnest(?::DATE[]) AS as_of) m
          ON r.founded_on < m.as_of LEFT JOIN ({exits_sql()}) e USING (uscc)
        WHERE NOT coalesce(e.left_on < m.as_of, false)""", [months])
    rows = con.execute("SELECT count(*) FROM _pop_all").fetchone()[0]
    keep = max(1, -(-rows // max_rows))  # keep one firm in `keep`
    con.execute("CREATE OR REPLACE TEMP TABLE _pop_targets AS SELECT * FROM _pop_all WHERE hash(uscc) % ? = 0 "
                "ORDER BY as_of, uscc", [keep])
    con.execute("DROP TABLE _pop_all")
    return con.execute("SELECT count(*) FROM _pop_targets").fetchone()[0]


def exits_sql() -> SQL:
    """(uscc, left_on) for every firm off the register now (EXITED): the first day any delivered
    version of its registry row showed it so. A firm revoked and later cancelled left when it was
    revoked; one whose revocation was rescinded is on the register and not here."""
    return f"""
    WITH exited AS (SELECT unnest([{', '.join(lit(x) for x in EXITED)}]) AS status)
    SELECT r.uscc, min(h.status_date) AS left_on
    FROM staging.registry r JOIN raw.registry h USING (uscc)
    WHERE r.status IN (SELECT status FROM exited) AND h.status IN (SELECT status FROM exited)
    GROUP BY r.uscc"""


def court_default_sql(targets: SQL) -> SQL:
    """(uscc, as_of, court_default, censored) for each target: whether the court listed the firm as
    a dishonest judgement debtor (any case: the firm, its legal representative or controller for
    the firm's debt) on a day within WINDOW_MONTHS months from the target's date; `censored`: not
    listed, and off the register within the window (`exits_sql`), so the record stops before the
    window closes (a firm off the register is listed no more)."""
    return f"""
    WITH listed AS (
        SELECT t.uscc, t.as_of, count(d.uscc) > 0 AS court_default
        FROM {targets} t LEFT JOIN staging.dishonest_debtors d
          ON d.uscc = t.uscc AND d.listed_on >= t.as_of AND d.listed_on < t.as_of + INTERVAL {WINDOW_MONTHS} MONTH
        GROUP BY ALL)
    SELECT l.uscc, l.as_of, l.court_default,
           NOT l.court_default AND coalesce(e.left_on >= l.as_of
               AND e.left_on < l.as_of + INTERVAL {WINDOW_MONTHS} MONTH, false) AS censored
    FROM listed l LEFT JOIN ({exits_sql()}) e USING (uscc)"""


def population_sample(con: duckdb.DuckDBPyConnection, cat: Catalogue, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Per firm and target month: the PD features as known on the month's first day, the 4+19+1
    total and grade from the same indicators, and the court-default outcome of the next 12 months."""
    months = target_months(con)
    if not months or create_targets(con, months, max_rows) == 0:
        return pd.DataFrame(columns=["uscc", "as_of", "total", "grade", "court_default"])
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _pop_ind AS SELECT *, '' AS snapshot_id FROM "
                    f"({indicators_sql('_pop_targets')})")
        no_hits = "(SELECT NULL::VARCHAR AS uscc, NULL::DATE AS as_of, NULL::VARCHAR AS rule_id WHERE false)"
        frame = con.execute(f"""
            SELECT f.*, s.total, s.grade, d.court_default
            FROM ({features_sql('_pop_targets', cat.negative_rules, indicators='_pop_ind')}) f
            JOIN ({score_select_sql(cat, '_pop_ind', no_hits)}) s USING (uscc, as_of)
            JOIN ({court_default_sql('_pop_targets')}) d USING (uscc, as_of)
            WHERE NOT d.censored
            ORDER BY as_of, uscc""").df()
    finally:
        con.execute("DROP TABLE IF EXISTS _pop_ind")
        con.execute("DROP TABLE IF EXISTS _pop_targets")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame


def out_of_time_months(sample: pd.DataFrame, share: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earlier target months train, the later (about `share` of the rows) validate."""
    cutoff = sample["as_of"].sort_values().iloc[int(len(sample) * (1 - share))]
    return sample[sample["as_of"] < cutoff], sample[sample["as_of"] >= cutoff]
