"""Row-level quarantine rules, generated in DuckDB SQL from a contract.

The first rule a row breaks is its reason; the rule names are the simulator's fault classes.
Duplicates are judged among rows that pass every other rule: rows sharing a key with different
content are all quarantined (`duplicate_conflict`: nobody can tell which is right); identical copies
keep the first and quarantine the later ones (`duplicate_exact`).
"""

from __future__ import annotations

from data_contracts.contracts import Column, Contract

PERIOD_PATTERN = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def typed(col: Column) -> str:
    """The typed value of a column read as delivered (text from CSV, typed from Parquet)."""
    c = _q(col.name)
    if col.type in ("uscc", "text", "period"):
        return f"nullif(trim(CAST({c} AS VARCHAR)), '')"
    if col.type in ("int", "money"):
        # integers written as 123.0 are still integers; 123.5 is not
        return f"TRY_CAST(TRY_CAST({c} AS DECIMAL(38, 4)) AS BIGINT)" if col.type == "int" else f"TRY_CAST({c} AS BIGINT)"
    return f"TRY_CAST({c} AS {col.sql_type})"


def rule_cases(contract: Contract, delivered_on_sql: str, registry_join: bool) -> list[tuple[str, str, str]]:
    """(rule, condition, detail expression) in the order they are applied."""
    rules: list[tuple[str, str, str]] = []
    for k in contract.key:
        rules.append(("key_null", f"{typed(contract.column(k))} IS NULL", f"'key column {k} is empty'"))
    for col in contract.columns:
        if not col.nullable and col.name not in contract.key:
            rules.append(("value_null", f"{_q(col.name)} IS NULL OR trim(CAST({_q(col.name)} AS VARCHAR)) = ''",
                          f"'{col.name} is empty'"))
    for col in contract.columns:
        raw = f"CAST({_q(col.name)} AS VARCHAR)"
        if col.type == "period":
            cond = f"{_q(col.name)} IS NOT NULL AND NOT regexp_matches(trim({raw}), '{PERIOD_PATTERN}')"
        elif col.type in ("uscc", "text"):
            continue
        else:
            cond = f"nullif(trim({raw}), '') IS NOT NULL AND {typed(col)} IS NULL"
        rules.append(("type_invalid", cond, f"'{col.name}=' || {raw} || ' is not a valid {col.type}'"))
    if contract.firm_column:
        f = typed(contract.column(contract.firm_column))
        if registry_join:
            rules.append(("uscc_invalid", f"_reg._reg_uscc IS NULL AND NOT uscc_valid({f})",
                          f"'{contract.firm_column}=' || {f} || ' fails GB 32100-2015 (check character or format)'"))
            rules.append(("firm_unknown", "_reg._reg_uscc IS NULL",
                          f"'{contract.firm_column}=' || {f} || ' is not in the market registry'"))
        else:
            rules.append(("uscc_invalid", f"NOT uscc_valid({f})",
                          f"'{contract.firm_column}=' || {f} || ' fails GB 32100-2015 (check character or format)'"))
    for col in contract.columns:
        v = typed(col)
        lo, hi = col.lower_bound, col.upper_bound
        if lo is not None:
            name = "amount_negative" if col.type == "money" and lo == 0 else "value_out_of_range"
            if col.type == "money" and lo > 0:
                rules.append(("amount_negative", f"{v} < 0", f"'{col.name}=' || {v} || ' is negative'"))
            what = "is negative" if name == "amount_negative" else f"is below {lo:g}"
            rules.append((name, f"{v} < {lo}", f"'{col.name}=' || {v} || ' {what}'"))
        if hi is not None:
            name = "amount_absurd" if col.type == "money" else "value_out_of_range"
            rules.append((name, f"{v} > {hi}", f"'{col.name}=' || {v} || ' is above {hi:g}'"))
        if col.allowed:
            allowed = ", ".join("'" + a + "'" for a in col.allowed)
            rules.append(("value_not_allowed", f"{v} IS NOT NULL AND {v} NOT IN ({allowed})",
                          f"'{col.name}=' || {v} || ' is not one of {'/'.join(col.allowed)}'"))
    for name in contract.not_after_delivery:
        col = contract.column(name)
        v = typed(col)
        if col.type == "period":
            rules.append(("period_future", f"{v} > strftime({delivered_on_sql}, '%Y-%m')",
                          f"'{name}=' || {v} || ' is after the delivery date ' || {delivered_on_sql}"))
        else:
            rules.append(("date_future", f"{v} > {delivered_on_sql}",
                          f"'{name}=' || {v} || ' is after the delivery date ' || {delivered_on_sql}"))
    return rules


def validation_sql(contract: Contract, batch: str, delivered_on: str) -> str:
    """SELECT over `batch` (columns as delivered plus `_row`) giving `_row`, `_rule`, `_detail`,
    `_record` (the row as delivered, JSON) and every column typed."""
    registry_join = contract.firm_column is not None and contract.source != "registry"
    d = f"DATE '{delivered_on}'"
    rules = rule_cases(contract, d, registry_join)
    rule_case = "CASE " + " ".join(f"WHEN {cond} THEN '{rule}'" for rule, cond, _ in rules) + " END"
    detail_case = "CASE " + " ".join(f"WHEN {cond} THEN {detail}" for _, cond, detail in rules) + " END"
    record = "to_json({" + ", ".join(f"'{c.name}': CAST({_q(c.name)} AS VARCHAR)" for c in contract.columns) + "})"
    cols = ", ".join(f"{typed(c)} AS {_q(c.name)}" for c in contract.columns)
    join = ""
    if registry_join:
        join = (f"LEFT JOIN (SELECT uscc AS _reg_uscc FROM staging.registry) _reg "
                f"ON _reg._reg_uscc = {typed(contract.column(contract.firm_column))}")
    checked = f"SELECT b._row, {rule_case} AS _rule, {detail_case} AS _detail, {record} AS _record, {cols} FROM {batch} b {join}"
    key = ", ".join(_q(k) for k in contract.key)
    content = "hash(" + ", ".join(_q(c.name) for c in contract.columns) + ")"
    # duplicates among rows that pass every other rule
    return f"""
    WITH checked AS ({checked}),
    dup AS (
        SELECT *,
            count(DISTINCT {content}) OVER (PARTITION BY {key}) AS _versions,
            row_number() OVER (PARTITION BY {key} ORDER BY _row) AS _copy
        FROM checked WHERE _rule IS NULL
    )
    SELECT _row,
        CASE WHEN _versions > 1 THEN 'duplicate_conflict' WHEN _copy > 1 THEN 'duplicate_exact' END AS _rule,
        CASE WHEN _versions > 1 THEN 'key (' || concat_ws(', ', {key}) || ') delivered ' || _versions || ' different ways'
             WHEN _copy > 1 THEN 'key (' || concat_ws(', ', {key}) || ') repeated, first copy kept' END AS _detail,
        _record, {", ".join(_q(c.name) for c in contract.columns)}
    FROM dup
    UNION ALL
    SELECT _row, _rule, _detail, _record, {", ".join(_q(c.name) for c in contract.columns)} FROM checked WHERE _rule IS NOT NULL
    """
