"""The one gate for everything a bank receives: the firms with a valid data-use authorisation (授权归集)
on the date. Eligibility's `no_authorisation` gate, the published rows, each bank's early warnings and
its report batch are all cut to this relation, so no bank-facing artefact can forget the filter.

The rule, on a date D, over the authorisation rows as they were known on D (fail closed):

- A revocation withdraws the firm's consent as a whole, not one grant's: with R the firm's latest
  `revoked_on` <= D over all its rows ever delivered by D (a file delivered again later with the row
  as it stood before the revocation does not undo it: only a new grant does), the firm is authorised on D only through a grant with
  `granted_on` <= D < `expires_on`, not itself revoked by D, and granted after R (a grant given after
  the revocation authorises again; one given on the day of the revocation does not).
- A firm whose authorisation row was quarantined (a delivery on or before D whose row could not be
  read, e.g. `revoked_on` not a date) is withheld when that delivery is as new as, or newer than, its
  latest loaded one: the unreadable row may be a revocation, so its older grants do not stand until a
  good delivery for the firm arrives. A quarantined row whose firm cannot be read cannot be attributed
  to any firm; the contract check fails the whole source when such rows pass the quarantine limit.
"""

from __future__ import annotations

from datetime import date

import duckdb

from scoring.changes import has_table
from scoring.sql import PointInTime
from valuecredit.sqltext import SQL, lit

# the firm of a quarantined row, read as ingestion reads it (trimmed, empty = none)
_QUARANTINED_USCC = "nullif(trim(json_extract_string(qr.record, '$.uscc')), '')"


def authorised_firms_sql(as_of: date, still_on: date | None = None) -> SQL:
    """SELECT of one column, `uscc`, once per firm: the firms authorised on the date by the rule above;
    with `still_on` (a later date: a past night read again), only those still authorised then, so that
    a firm that has withdrawn since never reaches a bank in an old night's files or reports either."""
    if still_on is not None and still_on > as_of:
        return f"SELECT uscc FROM ({authorised_on(as_of)}) INTERSECT SELECT uscc FROM ({authorised_on(still_on)})"
    return authorised_on(as_of)


def latest_decision_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last date whose eligibility was decided (None before the first night)."""
    return (con.execute("SELECT max(as_of) FROM decisions.eligibility_firms").fetchone()[0]
            if has_table(con, "decisions.eligibility_firms") else None)


def bank_facing_firms_sql(con: duckdb.DuckDBPyConnection, as_of: date) -> SQL:
    """The firms a bank may receive anything about for the night `as_of` (its files, its report batch,
    its portfolio), whenever that night is read: authorised on it and still authorised on the latest
    night the store has decided (fail closed: a night decided but not yet published counts)."""
    return authorised_firms_sql(as_of, latest_decision_date(con))


def authorised_on(as_of: date) -> SQL:
    """The rule above on one date."""
    d = f"DATE {lit(as_of.isoformat())}"
    return f"""
    WITH a AS (SELECT uscc, granted_on, expires_on, revoked_on FROM {PointInTime("", as_of).rows("authorisations")}),
    withdrawn AS (SELECT uscc, max(revoked_on) AS last_revoked FROM raw.authorisations
                  WHERE _delivered_on <= {d} AND revoked_on <= {d} GROUP BY uscc),
    quarantined AS (
        SELECT {_QUARANTINED_USCC} AS uscc, max(f.delivered_on) AS delivered_on
        FROM quarantine.rows qr
        JOIN meta.ingested_files f ON f.source = qr.source AND f.file = qr.file
         AND f.partition_date = qr.partition_date AND f.status = 'loaded'
        WHERE qr.source = 'authorisations' AND qr.partition_date <= {d} AND f.delivered_on <= {d}
          AND {_QUARANTINED_USCC} IS NOT NULL
        GROUP BY ALL),
    loaded AS (SELECT uscc, max(_delivered_on) AS delivered_on FROM raw.authorisations
               WHERE _delivered_on <= {d} GROUP BY uscc),
    withheld AS (SELECT q.uscc FROM quarantined q LEFT JOIN loaded l USING (uscc)
                 WHERE l.delivered_on IS NULL OR q.delivered_on >= l.delivered_on)
    SELECT DISTINCT a.uscc FROM a LEFT JOIN withdrawn w USING (uscc)
    WHERE a.granted_on <= {d} AND a.expires_on > {d} AND (a.revoked_on IS NULL OR a.revoked_on > {d})
      AND (w.last_revoked IS NULL OR a.granted_on > w.last_revoked)
      AND a.uscc NOT IN (SELECT uscc FROM withheld)"""
