"""The one gate for everything a bank receives: the firms with a valid data-use authorisation (授权归集)
on the date. Eligibility's `no_authorisation` gate, the published rows, each bank's early warnings and
its report batch are all cut to this relation, so no bank-facing artefact can forget the filter."""

from __future__ import annotations

from datetime import date

from valuecredit.scoring.sql import PointInTime
from valuecredit.sqltext import SQL, lit


def authorised_firms_sql(as_of: date) -> SQL:
    """SELECT of one column, `uscc`, once per firm: granted on or before the date, not yet expired and
    not revoked, as the authorisations were known on the date."""
    d = f"DATE {lit(as_of.isoformat())}"
    return f"""SELECT DISTINCT uscc FROM {PointInTime("", as_of).rows("authorisations")}
               WHERE granted_on <= {d} AND expires_on > {d} AND (revoked_on IS NULL OR revoked_on > {d})"""
