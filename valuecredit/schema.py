"""The store's tables of fixed shape, declared in one place: `ensure(con, *tables)` creates those
missing, with their schemas. A stage names the tables it writes and never spells their columns.

Two kinds of table are made elsewhere, from what defines their columns: `raw.<source>` and the
`staging` views from the data contracts (`valuecredit.store.init_store`), and the tables a query
shapes (`replace_date`'s decisions and scores, `features.pd_inputs`, `staging.firm_coverage`)
from that query.
"""

from __future__ import annotations

import duckdb

from valuecredit.ranges import RANGED, ensure_ranged
from valuecredit.sqltext import q

# the 19 indicators of the 4+19+1 system, as `features.indicators` stores them: a code or a number
INDICATOR_TYPES: dict[str, str] = {
    "rd_intensity": "DOUBLE", "valid_ip": "DOUBLE", "rd_super_deduction": "DOUBLE", "tech_staff_share": "DOUBLE",
    "innovation_status": "VARCHAR", "revenue_12m": "DOUBLE", "revenue_growth": "DOUBLE", "tax_paid_12m": "DOUBLE",
    "tax_credit_grade": "VARCHAR", "power_growth": "DOUBLE", "debt_ratio": "DOUBLE", "years_in_operation": "DOUBLE",
    "trademarks": "DOUBLE", "trade_value_12m": "DOUBLE", "awards_3y": "DOUBLE", "real_estate_value": "DOUBLE",
    "headcount_growth": "DOUBLE", "clean_contribution_months": "DOUBLE", "penalties_3y": "DOUBLE",
}
TOP_REASONS = 4  # the adverse reasons a PD carries
# the stages an incremental night may carry from the previous date (scoring.changes): per stage, what
# computed the date's rows (NULL: not computed since the date's indicators) and why every firm was
# computed (empty: the previous date's rows were carried)
CARRYING_STAGES = ("hits", "pd")
STAGE_COLUMNS = [f"{stage}_{what}" for stage in CARRYING_STAGES for what in ("made_with", "full_reason")]


TABLES: dict[str, str] = {
    # ingestion
    "meta.ingested_files": "(source VARCHAR, file VARCHAR, sha256 VARCHAR, delivered_on DATE, partition_date DATE, "
                           "status VARCHAR, reason VARCHAR, rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT)",
    "quarantine.rows": '(source VARCHAR, file VARCHAR, "row" BIGINT, rule VARCHAR, detail VARCHAR, record VARCHAR, '
                       "partition_date DATE)",
    # the score
    "meta.snapshots": "(as_of DATE PRIMARY KEY, snapshot_id VARCHAR, files BIGINT)",
    "features.indicators": "(uscc VARCHAR, as_of DATE, " + ", ".join(f"{k} {t}" for k, t in INDICATOR_TYPES.items())
                           + ", snapshot_id VARCHAR)",
    "scores.negative_hits": "(uscc VARCHAR, as_of DATE, rule_id VARCHAR, rule VARCHAR, source VARCHAR, "
                            "evidence_date DATE, detail VARCHAR)",
    # each scored firm's peer group as the registry gave it that night: what its percentiles rank it among
    "scores.peer_groups": "(uscc VARCHAR, as_of DATE, industry VARCHAR, size_class VARCHAR)",
    # incremental nights
    "meta.night_plans": "(as_of DATE PRIMARY KEY, previous DATE, full_reason VARCHAR, changed BIGINT, firms BIGINT, "
                        "code VARCHAR, " + ", ".join(f"{q(c)} VARCHAR" for c in STAGE_COLUMNS) + ")",
    "meta.changed_firms": "(as_of DATE, uscc VARCHAR)",  # the firms an incremental night computed again
    # the PD
    "scores.pd": "(uscc VARCHAR, as_of DATE, pd DOUBLE, log_odds DOUBLE, base_value DOUBLE, "
                 + ", ".join(f"reason_{i} VARCHAR" for i in range(1, TOP_REASONS + 1))
                 + ", model_version VARCHAR, snapshot_id VARCHAR, catalogue_hash VARCHAR, reason_codes_hash VARCHAR)",
    "scores.explanations": "(uscc VARCHAR, as_of DATE, feature VARCHAR, contribution DOUBLE, adverse_rank SMALLINT)",
    "scores.pd_importance": "(as_of DATE, model_version VARCHAR, feature VARCHAR, mean_abs_contribution DOUBLE, "
                            "share DOUBLE, rank SMALLINT)",
    "scores.pd_stability": "(as_of DATE, model_version VARCHAR, item VARCHAR, psi DOUBLE, status VARCHAR)",
    "scores.reason_codes": "(code VARCHAR, feature VARCHAR, zh VARCHAR, en VARCHAR, reason_codes_hash VARCHAR)",
    # decisions
    "decisions.early_warnings": "(warning_id VARCHAR, uscc VARCHAR, bank_id VARCHAR, kind VARCHAR, severity VARCHAR, "
                                "evidence VARCHAR, status VARCHAR, raised_on DATE, updated_on DATE, closed_on DATE)",
    "decisions.published_tables": "(bank_id VARCHAR PRIMARY KEY, as_of DATE)",
    # the SHA-256 of the full table of the date the bank's stored table holds, as its folder's manifest has it
    "decisions.published_table_sha256": "(bank_id VARCHAR PRIMARY KEY, as_of DATE, table_sha256 VARCHAR)",
    # the pool ledger. No primary keys on the two big tables: DuckDB's index upkeep would dominate the
    # nightly insert; the engine refuses duplicate ids and the posting_ids_unique check proves it
    "ledger.accounts": "(account VARCHAR PRIMARY KEY, bank_id VARCHAR, kind VARCHAR, normal_side VARCHAR)",
    "ledger.postings": "(seq BIGINT, posting_id VARCHAR, leg INTEGER, account VARCHAR, bank_id VARCHAR, "
                       "loan_id VARCHAR, event_type VARCHAR, effective_date DATE, business_date DATE, debit_fen BIGINT, "
                       "credit_fen BIGINT, memo VARCHAR, pool_config_version INTEGER)",
    # `correction`: 0 for the event as first applied, n for its n-th correction (a new row, never an update)
    "ledger.events": "(event_id VARCHAR, event_type VARCHAR, bank_id VARCHAR, loan_id VARCHAR, event_key VARCHAR, "
                     "effective_date DATE, business_date DATE, amount_fen BIGINT, extra_fen BIGINT, correction INTEGER)",
    # each claim's state (rewritten as it is paid); its payouts, one immutable row each
    "ledger.claims": "(claim_id VARCHAR, loan_id VARCHAR, bank_id VARCHAR, npl_on DATE, lodged_on DATE, due_on DATE, "
                     "business_date DATE, status VARCHAR, unrecovered_fen BIGINT, claimed_fen BIGINT, paid_fen BIGINT, "
                     "payouts INTEGER, last_paid_on DATE)",
    "ledger.claim_payouts": "(posting_id VARCHAR, claim_id VARCHAR, n INTEGER, loan_id VARCHAR, bank_id VARCHAR, "
                            "lodged_on DATE, due_on DATE, paid_on DATE, business_date DATE, amount_fen BIGINT, "
                            "on_time BOOLEAN)",
    # the exception list: loans disbursed above the loan cap in force, for the operator and the bank
    "ledger.exceptions": "(posting_id VARCHAR, bank_id VARCHAR, loan_id VARCHAR, disbursed_on DATE, "
                         "business_date DATE, amount_fen BIGINT, cap_fen BIGINT, reason VARCHAR)",
    "ledger.loan_state": "(loan_id VARCHAR, bank_id VARCHAR, disbursed_year INTEGER, disbursed_fen BIGINT, "
                         "outstanding_fen BIGINT, written_off_fen BIGINT, npl_on DATE, claim_id VARCHAR, "
                         "paid_fen BIGINT, returned_fen BIGINT, eligible_fen BIGINT)",
    "ledger.runs": "(business_date DATE PRIMARY KEY, window_from DATE, events BIGINT, postings BIGINT, "
                   "pool_config_version INTEGER, pool_config_hash VARCHAR)",
}
LEDGER_TABLES = tuple(t for t in TABLES if t.startswith("ledger."))
PD_TABLES = ("scores.pd", "scores.explanations", "scores.pd_importance", "scores.pd_stability", "scores.reason_codes")


def ddl(table: str) -> str:
    schema, name = table.split(".")
    return f"CREATE TABLE IF NOT EXISTS {q(schema)}.{q(name)} {TABLES[table]}"


def ensure(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """The named tables, and their schemas, created where missing; those present are left as they are."""
    for schema in dict.fromkeys(t.split(".")[0] for t in tables):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    for table in tables:
        if table in RANGED:  # kept by validity range (valuecredit.ranges), shaped by its declared columns
            con.execute(f"CREATE OR REPLACE TEMP TABLE _ranged_shape {TABLES[table]}")
            ensure_ranged(con, table, "temp.main._ranged_shape")
            con.execute("DROP TABLE temp.main._ranged_shape")
        else:
            con.execute(ddl(table))
