"""Which sources report on each firm, and up to when: the missing-source flags scoring relies on."""

from __future__ import annotations

import duckdb

from data_contracts.contracts import CONTRACTS

MONTHLY_FIRM_SOURCES = [c.source for c in CONTRACTS if "period" in c.column_names and c.firm_column]


def build_firm_coverage(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild staging.firm_coverage: per firm, per monthly source, last period and months reported."""
    parts = []
    for s in MONTHLY_FIRM_SOURCES:
        parts.append(f"""LEFT JOIN (SELECT uscc, max(period) AS {s}_last_period, count(*) AS {s}_months
                         FROM staging.{s} GROUP BY uscc) {s} USING (uscc)""")
    con.execute(f"""
        CREATE OR REPLACE TABLE staging.firm_coverage AS
        SELECT uscc, {", ".join(f"{s}_last_period, coalesce({s}_months, 0) AS {s}_months" for s in MONTHLY_FIRM_SOURCES)}
        FROM (SELECT uscc FROM staging.registry) r {" ".join(parts)}
        ORDER BY uscc""")
    return con.execute("SELECT count(*) FROM staging.firm_coverage").fetchone()[0]
