"""`valuecredit model evaluate`: a bank's own sample testing of both models on any labelled table."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from models.estimators import WoEScorecard
from models.tuning import tune_gbm, tune_scorecard

MIN_BAD = 20  # per class, over the whole table: fewer cannot support 5-fold metrics


class EvaluationInputError(ValueError):
    """The table or the arguments cannot support an evaluation; the message says which and why."""


# identifiers by name only (a table's own key, a row number pandas wrote): a column that merely has a
# distinct value on every row may be a real feature on a small table, so uniqueness alone drops nothing.
# `yes_no` and `has_no` are flags, not numbers; CustomerID, LoanId and 客户编号 are keys.
IDENTIFIER_NAME = re.compile(r"(?i)^(id|uuid|guid|key|index|row_?(id|no|number)|unnamed: ?\d+)$"
                             r"|(^|[_ .-])(id|uuid)$|(?<!yes)(?<!has)(^|[_ .-])no$")
IDENTIFIER_NAME_CASED = re.compile(r"[a-z](ID|Id)$|^(UID|SSN)$|(编号|身份证号码?|证件号码?|流水号|客户号|合同号|账号)$")


def is_identifier(name: str) -> bool:
    return bool(IDENTIFIER_NAME.search(name) or IDENTIFIER_NAME_CASED.search(name))


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the scorecard's trees read float32: a larger value cannot be binned
EXPONENT = "(?:[eE][+-]?[0-9]+)?"
NUMBER_AS_TEXT = re.compile(rf"^[+-]?([0-9]{{1,3}}(,[0-9]{{3}})+|[0-9]+)?(\.[0-9]+)?{EXPONENT} ?%?$")  # 1,234.5 and 12.5 %
# the decimal comma of a European export: 1.234,5 and 12,5 % (and 0,125: no thousands group starts with 0)
DECIMAL_COMMA = re.compile(rf"^[+-]?([0-9]{{1,3}}(\.[0-9]{{3}})+|[0-9]+)?(,[0-9]+)?{EXPONENT} ?%?$")
PLAIN_NUMBER = re.compile(rf"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+){EXPONENT}$")  # as a reader parses it unaided
POINT_IS_DECIMAL = re.compile(r"^[+-]?0\.|\.(?:[0-9]{1,2}|[0-9]{4,})(?:[eE]| ?%|$)|,[0-9]{3}\.")
# what exports write for "no value" in a column of numbers: Excel's errors, SAS's dot, R's NA, ...
MISSING_TEXT = frozenset({"", "-", "—", ".", "?", "na", "n/a", "nan", "null", "none", "#n/a", "#div/0!", "#value!",
                          "#ref!", "#name?", "#num!", "#null!"})
CURRENCY = re.compile(r"^([+-]?) ?(?:[$¥€£￥]|RMB|CNY|USD|EUR) ?|(?: ?(?:[$¥€£￥元]|RMB|CNY|USD|EUR))$")
GROUP_SPACE = re.compile(r"(?<=[0-9])[ \u00a0\u202f\u2009'’](?=[0-9]{3}(?![0-9]))")  # 1 234 567, 1'234
COMMA_IS_DECIMAL = re.compile(r"^[+-]?0,|,(?:[0-9]{1,2}|[0-9]{4,}) ?%?$|\.[0-9]{3}[.,]")


@dataclass
class Prepared:
    X: pd.DataFrame
    y: np.ndarray
    dropped_ids: list[str]
    special_codes: list[float] = field(default_factory=list)
    monotone: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was done to the input, for the analyst to read


def label_key(value) -> str:
    """One spelling per label: 1, 1.0, "1", " 1 " and True are the same label; "yes" stays "yes"."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return "1" if text.lower() == "true" else "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def column_named(text: str, columns) -> str | None:
    """The column `text` names: as written, else with edge spaces ignored on either side (a header
    ` x2` is named by `x2`; two names equal but for edge spaces are refused when the file is read)."""
    names = [str(c) for c in columns]
    if text in names:
        return text
    by_stripped = {n.strip(): n for n in names}
    return by_stripped.get(text.strip())


def parse_columns(spec: str | list[str] | None, columns, option: str = "--drop") -> list[str]:
    """Column names separated by commas, where a name may itself hold commas: at each piece the
    longest run of pieces that names a column is taken; empty pieces name nothing."""
    if spec is None or isinstance(spec, list):
        return list(spec or [])
    pieces, out, i = spec.split(","), [], 0
    while i < len(pieces):
        found = next(((name, j) for j in range(len(pieces), i, -1)
                      if (name := column_named(",".join(pieces[i:j]), columns)) is not None), None)
        if found is None:
            if pieces[i].strip():
                raise EvaluationInputError(f"{option} {pieces[i].strip()!r}: no such column; columns are "
                                           f"{', '.join(map(str, list(columns)[:30]))}")
            i += 1
            continue
        out.append(found[0])
        i = found[1]
    return out


def parse_monotone(spec: str | None, columns) -> dict[str, int]:
    """`col:+1,col:-1` (+1: a higher value never lowers the risk). A column's name may itself hold
    commas or colons, so the pieces between commas are joined until they name a column
    (`column_named`) and a sign; empty pieces name nothing."""
    out: dict[str, int] = {}
    pending = None
    for piece in (spec or "").split(","):
        if pending is None and not piece.strip():
            continue
        pending = piece if pending is None else f"{pending},{piece}"
        name, _, sign = pending.rpartition(":")
        if sign.strip() in ("+1", "1", "-1") and (column := column_named(name, columns)) is not None:
            out[column] = -1 if sign.strip() == "-1" else 1
            pending = None
    if pending is not None and pending.strip():
        raise EvaluationInputError(f"--monotone {pending.strip()!r}: expected COLUMN:+1 or COLUMN:-1 with COLUMN one "
                                   "of the table's columns")
    return out


SEPARATORS = (",", ";", "\t", "|")
CJK = re.compile(r"[\u3400-\u9fff]")


def _reads_as_chinese(text: str) -> bool:
    """Whether text decoded as GB18030 reads as Chinese: most of its characters among the 3,755 in
    everyday use (GB 2312 level 1). A Latin-1 file decodes into rare characters (`Köln` into `K鰈n`)."""
    found = CJK.findall(text)
    common = 0
    for ch in found:
        try:
            common += 0xB0 <= ch.encode("gb2312")[0] <= 0xD7
        except UnicodeEncodeError:
            continue
    return bool(found) and common >= len(found) / 2


def _read_table(path: Path) -> tuple[pd.DataFrame, list[str], str]:
    """The CSV as a bank exports it (compressed by its extension or not; any line ending): UTF-8,
    with or without a byte-order mark, else GBK/GB18030, accepted only where it reads Chinese (a
    Latin-1 or binary file decodes as GB18030 too, into nonsense); separated by commas, or by
    semicolons, tabs or bars where the header has more columns that way. A header naming a column
    twice (edge spaces aside) is refused: pandas would rename the second (`bad.1`) and it could carry
    the target in among the features. Returns the table, what was noticed on the way and the separator."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            widths = {sep: pd.read_csv(path, sep=sep, encoding=encoding, nrows=0).shape[1] for sep in SEPARATORS}
            sep = max(SEPARATORS, key=lambda s: (widths[s], s == ","))
            header = pd.read_csv(path, sep=sep, encoding=encoding, nrows=1, header=None, dtype=str).iloc[0]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                # never a row index: a row one field longer than the header would otherwise shift every
                # column by one; a `;` file is read as written, its numbers parsed by `_clean_features`
                frame = pd.read_csv(path, sep=sep, encoding=encoding, low_memory=False, index_col=False,
                                    **({"dtype": str} if sep == ";" else {}))
            longer = any("does not match length of data" in str(w.message) for w in caught)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise EvaluationInputError(f"{path}: empty: no header and no rows") from None
        except Exception as exc:  # any reader failure is a property of the file: say so in one line
            raise EvaluationInputError(f"{path}: not a readable CSV "
                                       f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        break
    else:
        raise EvaluationInputError(f"{path}: neither UTF-8 nor GBK/GB18030 text; save the table as UTF-8 CSV")
    notes = []
    if longer:  # rows hold more fields than the header names: only empty ones (a trailing separator) can go
        width = len(header)
        try:
            extra = pd.read_csv(path, sep=sep, encoding=encoding, header=None, skiprows=1, dtype=str,
                                index_col=False).iloc[:, width:]
            filled = np.flatnonzero(extra.notna().any().to_numpy())
            fields = f"up to {width + 1 + int(filled.max())}" if len(filled) else None
        except Exception:  # rows of differing lengths
            fields = "more"
        if fields is not None:
            raise EvaluationInputError(f"{path}: rows hold {fields} fields where the header names {width}: a "
                                       f"separator ({sep!r}) inside an unquoted value (a decimal comma?) or a column "
                                       "without a name in the header; quote such values or name every column")
        notes.append("every row ends with empty fields past the header's (a trailing separator): ignored")
    if encoding == "gb18030":
        sample = " ".join(map(str, header.dropna())) + frame.head(1000).astype(str).to_string()
        if not _reads_as_chinese(sample) or re.search(r"[\x00-\x08\x0e-\x1f]", sample):
            raise EvaluationInputError(f"{path}: not UTF-8, and read as GBK/GB18030 it holds no Chinese text: another "
                                       "encoding or not a text table; save it as UTF-8 CSV")
        notes.append("the file read as GBK/GB18030 (not UTF-8)")
    names = [str(h).strip() for h in header.dropna() if str(h).strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise EvaluationInputError(f"{path}: the header names {', '.join(map(repr, repeated))} more than once; "
                                   "each column needs its own name")
    return frame, notes, sep


def _normalised(text: pd.Series) -> pd.Series:
    """Numbers as exports dress them, undressed: a currency mark off, a negative in parentheses
    signed, thousands spaces and apostrophes out (`¥1 234`, `(1,386)`, `1'234'567`)."""
    for _ in range(2):  # ($1,386.00) and $(1,386.00) alike: the mark inside or outside the parentheses
        text = text.str.replace(CURRENCY, r"\1", regex=True).str.strip()
        text = text.str.replace(r"^\((.*)\)$", r"-\1", regex=True)
    return text.str.replace(GROUP_SPACE, "", regex=True)


def _numbers_part(column: pd.Series) -> tuple[pd.Series, int, bool]:
    """A text column's values that are not a "no value" mark (`MISSING_TEXT`), normalised; how many
    such marks it holds; whether any value was written otherwise than a reader parses unaided."""
    raw = column.dropna().astype(str).str.strip()
    missing = raw.str.lower().isin(MISSING_TEXT)
    raw = raw[~missing]
    return _normalised(raw), int(missing.sum()), not raw.str.fullmatch(PLAIN_NUMBER).all()


def _decimal_style(texts: list[pd.Series]) -> str:
    """How a file separated by semicolons writes its decimals, from its text columns (`_numbers_part`)
    of numbers (dates and codes say nothing): "point" where some value can only be a decimal point
    (`POINT_IS_DECIMAL`) and none a decimal comma; else "comma", the convention of such files
    (`12.000` is twelve thousand, `1,250` one and a quarter), "comma?" where no value showed either."""
    comma = point = False
    for text in texts:
        numeric = text.str.contains("[0-9]") & (text.str.fullmatch(DECIMAL_COMMA) | text.str.fullmatch(NUMBER_AS_TEXT))
        if not len(text) or numeric.mean() < 0.99:
            continue
        comma = comma or bool(text.str.contains(COMMA_IS_DECIMAL).any())
        point = point or bool(text.str.contains(POINT_IS_DECIMAL).any())
    return "point" if point and not comma else "comma" if comma else "comma?"


def _decimal_comma(text: pd.Series, semicolons: bool) -> bool:
    """Whether a column's numbers are written with a decimal comma (12,5; 1.234,5): at least 99 % of
    its values read that way, and one of them cannot be a thousands group (a comma followed by other
    than three digits, a leading 0, a dot group before a comma) or, in a file separated by
    semicolons (the decimal comma's own convention), one holds a comma. `1,234` in a comma-separated
    file stays one thousand two hundred and thirty-four."""
    if not len(text) or (text.str.fullmatch(DECIMAL_COMMA) & text.str.contains("[0-9]")).mean() < 0.99:
        return False
    return bool(text.str.contains(COMMA_IS_DECIMAL).any() or (semicolons and text.str.contains(",", regex=False).any()))


def _clean_features(X: pd.DataFrame, semicolons: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Numbers written as text read as numbers where at least 99 % of a text column's values are,
    "no value" marks (`MISSING_TEXT`) aside, the rest missing: `1,234`, `12.5%`, `¥1 234`, `(1,386)`,
    and with a decimal comma `1.234,5` (`_decimal_comma`; in a file separated by semicolons, whose
    cells are all read as text, the file's own style where its columns agree: `_decimal_style`).
    Infinite values and values beyond what the scorecard can bin read as missing. Each change is
    said, by column."""
    notes = []
    parts = {c: _numbers_part(X[c]) for c in X.columns  # each text column undressed once
             if not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])}
    style = _decimal_style([text for text, _, _ in parts.values()]) if semicolons else None
    guessed = False
    for c in X.columns:
        if c in parts:
            text, marks, dressed = parts[c]
            if len(text) and text.str.lower().isin(("true", "false")).all():  # TRUE, True, true: one flag
                X[c] = X[c].astype("string").str.strip().str.lower().map({"true": 1.0, "false": 0.0}).astype("float64")
                continue
            comma = style.startswith("comma") if style else _decimal_comma(text, semicolons)
            number = text.str.fullmatch(DECIMAL_COMMA if comma else NUMBER_AS_TEXT) & text.str.contains("[0-9]")
            guessed = guessed or (style == "comma?" and bool(text.str.contains("[.,]").any()) and number.mean() >= 0.99)
            if len(text) and 0.9 <= number.mean() < 0.99:
                odd = text[~number].value_counts().index[:3].tolist()
                notes.append(f"{c}: read as text categories: {1 - number.mean():.1%} of its values are not numbers "
                             f"(such as {', '.join(map(repr, odd))}); mark them as missing to read the column as numbers")
            if len(text) and number.mean() >= 0.99:
                plain = text.where(number).str.rstrip("%").str.strip()
                plain = plain.str.replace(".", "", regex=False).str.replace(",", ".", regex=False) if comma \
                    else plain.str.replace(",", "", regex=False)
                numbers = pd.to_numeric(plain, errors="coerce")
                unread = int(numbers.isna().sum()) + marks
                X[c] = numbers.reindex(X.index)
                if unread or dressed:  # a plain column of a `;` file: nothing to say
                    notes.append(f"{c}: numbers written as text read as numbers"
                                 + (" (with a decimal comma)" if comma else "")
                                 + (f"; {unread} value(s) that are not numbers read as missing" if unread else ""))
        if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]):
            values = X[c].astype(float)
            out_of_range = np.isinf(values) | (values.abs() > FLOAT32_MAX)
            if out_of_range.any():
                X[c] = values.mask(out_of_range)
                notes.append(f"{c}: {int(out_of_range.sum())} infinite or out-of-range value(s) read as missing")
    if guessed:
        notes.append("the file is separated by semicolons and no number showed its decimal mark: read with the "
                     "decimal comma of such files (12.000 as twelve thousand, 1,250 as one and a quarter)")
    return X, notes


def prepare(path: Path, target: str, bad: str | None, drop: list[str] | str | None,
            special_codes: list[float] | None = None, monotone: str | None = None) -> Prepared:
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"{path}: no such file")
    frame, read_notes, sep = _read_table(path)
    drop = parse_columns(drop, frame.columns)
    target = column_named(target, frame.columns) or target
    missing = [c for c in [target, *drop] if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"{path}: no column {', '.join(map(repr, missing))}; columns are "
                                   f"{', '.join(map(str, frame.columns[:30]))}")
    labels = frame[target]
    if labels.isna().any():
        raise EvaluationInputError(f"{path}: target {target!r} is empty in {int(labels.isna().sum())} rows")
    keys = labels.map(label_key)
    values = sorted(keys.unique())
    if len(values) != 2:
        raise EvaluationInputError(f"{path}: target {target!r} must have exactly two values, found {len(values)}: "
                                   f"{values[:10]}")
    if bad is None:  # 1 is bad only beside 0: with 1 and 2 (German credit's coding) either may be
        if values != ["0", "1"]:
            raise EvaluationInputError(f"{path}: say which of {values} is the bad outcome with --bad")
        bad = "1"
    if label_key(bad) not in values:
        raise EvaluationInputError(f"{path}: --bad {bad!r} is not a value of {target!r} ({values})")
    y = (keys == label_key(bad)).to_numpy().astype(int)
    if min(y.sum(), len(y) - y.sum()) < MIN_BAD:
        raise EvaluationInputError(f"{path}: {int(y.sum())} bad and {int(len(y) - y.sum())} good rows; at least "
                                   f"{MIN_BAD} of each are needed")
    X = frame.drop(columns=[target, *drop])
    ids = [c for c in X.columns if is_identifier(str(c))]
    X = X.drop(columns=ids)
    if X.shape[1] == 0:
        raise EvaluationInputError(f"{path}: no feature columns left after dropping the target and identifiers")
    X.columns = [str(c) for c in X.columns]
    X, notes = _clean_features(X, semicolons=sep == ";")
    notes = read_notes + notes
    if repeats := int(frame.duplicated().sum()):  # every column, identifiers included: a copy, not a look-alike
        notes.append(f"{repeats} row(s) of the file repeat another one in every column: if they are one loan twice, "
                     "a copy on each side of a fold flatters the AUC")
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("string")
    codes = list(special_codes or [])
    if not WoEScorecard(special_codes=codes).binnable(X):
        raise EvaluationInputError(f"{path}: no feature column holds a value other than missing or a special code")
    try:
        monotone_by = parse_monotone(monotone, X.columns)
    except EvaluationInputError:
        # a column left out before the models (--drop, or an identifier by its name) is no feature to constrain
        gone = [c for c in parse_monotone(monotone, [*X.columns, *ids, *drop]) if c in ids or c in drop]
        if gone:
            why = {c: "dropped as an identifier by its name" if c in ids else "dropped by --drop" for c in gone}
            raise EvaluationInputError("--monotone " + "; ".join(f"{c!r}: {w}, not a feature" for c, w in why.items())) from None
        raise
    text = [c for c in monotone_by if not pd.api.types.is_numeric_dtype(X[c])]
    if text:
        raise EvaluationInputError(f"--monotone {', '.join(map(repr, text))}: not a numeric column (text or categories "
                                   "have no direction)")
    return Prepared(X, y, ids, sorted(codes), monotone_by, notes)


def without_special_codes(X: pd.DataFrame, codes: list[float]) -> pd.DataFrame:
    """The GBM reads a special code ("no record") as missing: LightGBM then learns where missing goes,
    instead of placing -9 below every real value."""
    if not codes:
        return X
    X = X.copy()
    for c in X.columns:
        if pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].mask(X[c].isin(codes))
    return X


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    fpr, tpr, _ = roc_curve(y, p)
    return float(roc_auc_score(y, p)), float(np.max(tpr - fpr))


def roc_points(y: np.ndarray, p: np.ndarray, points: int = 51) -> list[tuple[float, float]]:
    """The ROC curve at `points` evenly spaced false-positive rates (for a chart: a fold's curve has
    as many corners as it has distinct scores)."""
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0, 1, points)
    return [(round(float(f), 4), round(float(t), 4)) for f, t in zip(grid, np.interp(grid, fpr, tpr))]


MODELS = ("gbm", "scorecard", "blend")
BUDGET_SECONDS = 100.0  # the GBM searches of all folds together; each fold gets its share


def blend(p_gbm: np.ndarray, p_card: np.ndarray) -> np.ndarray:
    """The two models' PDs averaged on the log-odds scale, with equal weights. Trees and a WoE
    scorecard err in different places (the scorecard is smooth where a tree steps, the tree sees
    interactions the card cannot), so the mean ranks better than either wherever they are close. The
    weight is fixed, chosen on no row: searched on an inner fold of a few hundred rows it would be
    chosen by noise, as the GBM's settings are there. A bank can implement it from the two models."""
    return expit((logit(np.clip(p_gbm, 1e-12, 1 - 1e-12)) + logit(np.clip(p_card, 1e-12, 1 - 1e-12))) / 2)


@dataclass
class Evaluation:
    """Everything the cross-validation produced: the JSON summary and, for the report, each row's
    out-of-fold PD by model and each fold's ROC curve."""

    summary: dict
    out_of_fold: dict[str, np.ndarray]
    roc: dict[str, list[list[tuple[float, float]]]]


def fit_models(data: Prepared, rows: np.ndarray, seed: int, budget_seconds: float | None):
    """The shared procedure (`models.tuning`) on the given rows: a tuned monotone GBM (special codes
    read as missing) and a tuned WoE scorecard."""
    X_gbm = without_special_codes(data.X.iloc[rows], data.special_codes)
    # the grid and inner folds of the whole table's size, for every fold and the report's final model alike
    gbm, gbm_choice = tune_gbm(X_gbm, data.y[rows], data.monotone or None, seed, budget_seconds=budget_seconds,
                               table_rows=len(data.y))
    card, card_choice = tune_scorecard(data.X.iloc[rows], data.y[rows], data.special_codes or None,
                                       data.monotone or None, seed)
    return gbm, gbm_choice, card, card_choice


def cross_validate(data: Prepared, folds: int = 5, seed: int = 42, budget_seconds: float = BUDGET_SECONDS) -> Evaluation:
    if folds < 2 or folds > min(data.y.sum(), len(data.y) - data.y.sum()):
        raise EvaluationInputError(f"--folds {folds}: need at least 2 and no more than the smaller class")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in MODELS}
    oof = {name: np.zeros(len(data.y)) for name in MODELS}
    roc: dict[str, list] = {name: [] for name in MODELS}
    fit_warnings: set[str] = set()
    per_fold = []
    X_gbm = without_special_codes(data.X, data.special_codes)
    for i, (train, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y)):
        gbm, gbm_choice, card, card_choice = fit_models(data, train, seed, budget_seconds / folds)
        fit_warnings.update(card.fit_warnings_)
        yte = data.y[test]
        oof["gbm"][test] = gbm.predict_proba(X_gbm.iloc[test])[:, 1]
        oof["scorecard"][test] = card.predict_proba(data.X.iloc[test])[:, 1]
        oof["blend"][test] = blend(oof["gbm"][test], oof["scorecard"][test])
        fold = {"fold": i + 1, "rows": int(len(test)), "bad": int(yte.sum())}
        for name, choice in (("gbm", gbm_choice.summary()), ("scorecard", card_choice.summary()), ("blend", {})):
            auc, ks = _metrics(yte, oof[name][test])
            results[name].append((auc, ks))
            roc[name].append(roc_points(yte, oof[name][test]))
            fold[name] = {"auc": round(auc, 4), "ks": round(ks, 4), **choice}
        per_fold.append(fold)
    out = {"rows": int(len(data.y)), "bad_rate": round(float(data.y.mean()), 4)}
    for name, ms in results.items():
        aucs, kss = np.array([m[0] for m in ms]), np.array([m[1] for m in ms])
        out[name] = {"auc_mean": round(float(aucs.mean()), 4), "auc_std": round(float(aucs.std()), 4),
                     "ks_mean": round(float(kss.mean()), 4), "ks_std": round(float(kss.std()), 4),
                     "auc_folds": [round(float(a), 4) for a in aucs]}
    out["better"] = max(MODELS, key=lambda name: out[name]["auc_mean"])
    out["folds"], out["seed"], out["dropped_identifiers"] = folds, seed, data.dropped_ids
    out["special_codes"], out["monotone"], out["warnings"] = data.special_codes, data.monotone, sorted(fit_warnings)
    out["input_notes"] = data.notes
    out["per_fold"], out["budget_seconds"] = per_fold, budget_seconds
    return Evaluation(out, oof, roc)


def evaluate(path: Path, target: str, bad: str | None = None, drop: list[str] | None = None, folds: int = 5,
             seed: int = 42, special_codes: list[float] | None = None, monotone: str | None = None,
             budget_seconds: float = BUDGET_SECONDS) -> dict:
    data = prepare(path, target, bad, drop or [], special_codes, monotone)
    return cross_validate(data, folds, seed, budget_seconds).summary
