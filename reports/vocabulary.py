"""One vocabulary for people: the name of every code a report shows, in Chinese and English
(`config/vocabulary.yaml`, read once per process), and the way numbers are written for a reader
(money from integer fen in 元 or 万元 with separators, percentages with their unit, never scientific
notation). Every report and the banks' data dictionaries take their words from here."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, StrictStr

from valuecredit.configfile import ConfigError, NonBlank, Schema, Version, validated

VOCABULARY = Path(__file__).resolve().parents[1] / "config" / "vocabulary.yaml"
UNKNOWN = {"zh": "未知代码", "en": "unknown code"}


def _zh_and_en(names: list[str]) -> list[str]:
    if len(names) != 2:
        raise ValueError(f"expected [Chinese name, English name], found {names!r}")
    return names


# code -> [Chinese name, English name]; a code is text (quote a number: "500112")
Names = dict[StrictStr, Annotated[list[NonBlank], AfterValidator(_zh_and_en)]]


class _VocabularyFile(Schema):
    """config/vocabulary.yaml: every kind of code a report names, each a table of codes. A kind the
    reports ask for and the file lacks is refused here, not when a report first needs it."""

    version: Version
    industries: Names
    districts: Names
    statuses: Names
    size_classes: Names
    innovation_statuses: Names
    tax_grades: Names
    gates: Names
    conditions: Names
    sources: Names
    subjects: Names
    penalty_severities: Names
    loan_classes: Names
    features: Names
    pool_lines: Names
    warning_kinds: Names
    severities: Names
    deadline_statuses: Names
    stability: Names
    segments: Names
    models: Names


class Vocabulary:
    def __init__(self, f: _VocabularyFile) -> None:
        self.version = f.version
        self.terms: dict[str, dict[str, tuple[str, str]]] = {
            kind: {code: (zh, en) for code, (zh, en) in table.items()} for kind, table in f if kind != "version"}

    def name(self, kind: str, code: object, lang: str) -> str:
        """The code's name alone (an unknown code: the code, marked as such)."""
        if code is None or (isinstance(code, float) and math.isnan(code)) or code == "":
            return "—"
        found = self.terms[kind].get(str(code))
        return found[0 if lang == "zh" else 1] if found else f"{code} ({UNKNOWN[lang]})"

    def labelled(self, kind: str, code: object, lang: str) -> str:
        """The name with its code where the code is worth keeping (an industry's section letter, a
        district's division code): `C 制造业`, `渝北区 (500112)`."""
        text = self.name(kind, code, lang)
        if text == "—" or str(code) not in self.terms[kind]:
            return text
        return f"{code} {text}" if kind == "industries" else f"{text} ({code})" if kind == "districts" else text


def feature_names(cat, lang: str) -> dict[str, str]:
    """A model input's name: an indicator's from the catalogue `cat`, any other from the vocabulary."""
    voc = load_vocabulary()
    return {k: zh if lang == "zh" else en for k, (zh, en) in voc.terms["features"].items()} | {
        i.key: i.zh if lang == "zh" else i.en for i in cat.indicators}


class Words:
    """The helpers a template writes with, bound to its language."""

    def __init__(self, lang: str, cat=None) -> None:
        self.lang, self.voc = lang, load_vocabulary()
        self.features = feature_names(cat, lang) if cat is not None else {}

    def name(self, kind: str, code: object) -> str:
        return self.voc.name(kind, code, self.lang)

    def labelled(self, kind: str, code: object) -> str:
        return self.voc.labelled(kind, code, self.lang)

    def feature(self, key: str) -> str:
        return self.features.get(key) or self.voc.name("features", key, self.lang)

    def money(self, fen: int | None) -> str:
        return money_fen(fen, self.lang)


@lru_cache(maxsize=4)
def load_vocabulary(path: Path | None = None) -> Vocabulary:
    return Vocabulary(validated(Path(path or VOCABULARY), _VocabularyFile, ConfigError, "vocabulary")[0])


def _plain(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def money_fen(fen: int | float | None, lang: str) -> str:
    """Integer fen for a reader: `12.35万元` / `1,234元` in Chinese, `RMB 123,456` in English."""
    if fen is None or (isinstance(fen, float) and math.isnan(fen)):
        return "—"
    return money_rmb(int(fen) / 100, lang)


def money_rmb(rmb: float | None, lang: str) -> str:
    if rmb is None or (isinstance(rmb, float) and math.isnan(rmb)):
        return "—"
    if lang == "zh":
        return f"{_plain(rmb / 10_000, 2)}万元" if abs(rmb) >= 10_000 else f"{_plain(rmb, 0)}元"
    return f"RMB {_plain(rmb, 0)}"


def percent(x: float | None, decimals: int = 1) -> str:
    """A share (0.0345) as a percentage with its unit (3.5%)."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:,.{decimals}f}%"


def number(x: float | None, decimals: int = 2) -> str:
    """A plain number with separators, trailing zeros dropped; never scientific notation."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    text = _plain(float(x), decimals)
    return text.rstrip("0").rstrip(".") if "." in text else text


UNITS = {  # the catalogue's unit -> (zh suffix, en suffix)
    "years": ("年", " years"), "months": ("个月", " months"), "count": ("", ""), "weighted count": ("", ""),
}


def indicator_value(value: object, unit: str, key: str, lang: str) -> str:
    """An indicator's value in its unit: money in 元/万元, ratios as percentages, categories named."""
    voc = load_vocabulary()
    if value is None or (not isinstance(value, str) and isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "category":
        kind = {"innovation_status": "innovation_statuses", "tax_credit_grade": "tax_grades"}.get(key)
        return voc.name(kind, value, lang) if kind else str(value)
    v = float(value)
    if unit == "RMB":
        return money_rmb(v, lang)
    if unit == "ratio":
        return percent(v)
    zh, en = UNITS.get(unit, ("", ""))
    return number(v, 1 if unit == "years" else 2) + (zh if lang == "zh" else en)


# how lending.eligibility spells a requirement: '>= x', '<= x', 'x or better', 'not a,b', 'a,b'
_OP = re.compile(r"^(?:(>=|<=|not) )?(.*?)( or better)?$")


_LOAN = re.compile(r"(\S+) (\d{4}-\d{2}-\d{2}) (\S+) dpd (\d+)")
_RENEWABLE = re.compile(r"a loan from (\S+) maturing by (\d{4}-\d{2}-\d{2})")


def _kind_shortfall(condition: str, value: str, required: str, lang: str) -> str:
    """A product kind's condition, worded from the figures eligibility spells (see lending.eligibility)."""
    voc, zh = load_vocabulary(), lang == "zh"
    name, needs = voc.name("conditions", condition, lang), "需" if zh else "needs"
    if condition == "first_loan":
        n = int(re.match(r"\d+", value).group()) if re.match(r"\d+", value) else 0
        return (f"{name} 此前已有计划内贷款{n}笔 (需 此前无任何银行贷款)" if zh
                else f"{name}: {n} programme loans before ({needs} no loan from any bank before)")
    if condition == "renewal":
        loans = _LOAN.findall(value)
        if loans:
            have = ("、" if zh else ", ").join(
                f"{b} {d}到期 {voc.name('loan_classes', c, lang)} 逾期{n}天" if zh
                else f"{b} due {d}, {voc.name('loan_classes', c, lang)}, {n} days past due" for b, d, c, n in loans)
        else:
            bank = value.rsplit(" ", 1)[-1]
            have = f"{bank}无在贷贷款" if zh else f"no outstanding loan from {bank}"
        m = _RENEWABLE.match(required)
        bank, by = (m.group(1), m.group(2)) if m else ("", "")
        need = (f"{bank}贷款于{by}前到期, 分类正常或关注, 逾期少于90天" if zh
                else f"a loan from {bank} maturing by {by}, normal or special mention, under 90 days past due")
        return f"{name} {have} ({needs} {need})"
    if condition == "ip_pledge":
        n = [int(x) for x in re.findall(r"\d+", value)] + [0, 0]
        return (f"{name} 有效发明专利{n[0]}件、注册商标{n[1]}件 (需 至少1件)" if zh
                else f"{name}: {n[0]} invention patents, {n[1]} trademarks ({needs} at least one)")
    amount = money_rmb(float(value), lang) if value not in ("", "no data") else ("无数据" if zh else "no data")
    return (f"{name} {amount} (需 核心企业已确权、未付且未到期的应收账款)" if zh
            else f"{name} {amount} ({needs} receivables confirmed by a core firm, unpaid and not yet due)")


def shortfall(condition: str, value: str, required: str, lang: str) -> str:
    """One unmet condition, for a reader: `经营年限 2.7年 (需 ≥ 3年)` / `Years in operation 2.7 years (needs ≥ 3 years)`."""
    if condition in ("first_loan", "renewal", "ip_pledge", "receivables"):
        return _kind_shortfall(condition, str(value), str(required), lang)
    voc, zh = load_vocabulary(), lang == "zh"
    m = _OP.match(str(required))
    op, target, better = (m.group(1), m.group(2), m.group(3)) if m else (None, str(required), None)

    def one(x: str) -> str:
        if x in ("no data", ""):
            return "无数据" if zh else "no data"
        if condition in ("max_pd", "pricing"):
            return percent(float(x), 2)
        if condition in ("min_revenue_rmb", "min_tax_paid_rmb", "limit"):
            return money_rmb(float(x), lang)
        if condition == "min_years":
            return number(float(x), 1) + ("年" if zh else " years")
        if condition == "min_score":
            return number(float(x), 1)
        if condition in ("industries", "exclude_industries"):
            return ("、" if zh else ", ").join(voc.labelled("industries", c, lang) for c in x.split(","))
        if condition == "districts":
            return ("、" if zh else ", ").join(voc.name("districts", c, lang) for c in x.split(","))
        if condition == "required_status":
            return ("、" if zh else ", ").join(voc.name("innovation_statuses", c, lang) for c in x.split(","))
        return x

    need = one(target)
    if op == ">=":
        need = f"≥ {need}"
    elif op == "<=":
        need = f"≤ {need}"
    elif op == "not":
        need = f"非 {need}" if zh else f"not {need}"
    if better:
        need = f"{need}级及以上" if zh else f"{need} or better"
    if condition == "required_status" and "," in target:
        need = f"{need}之一" if zh else f"one of {need}"
    return f"{voc.name('conditions', condition, lang)} {one(str(value))} ({'需' if zh else 'needs'} {need})"


# a negative-list hit's evidence as scoring.sql spells it, rule by rule: the words translated, the
# delivered identifiers (case and decision numbers, the register's reason) kept as delivered
_EVIDENCE = (
    (re.compile(r"^fiscal year (\d{4}) grade (\w)$"), lambda m, lang: (
        f"{m[1]}年度纳税信用等级{m[2]}级" if lang == "zh" else f"tax credit grade {m[2]} for fiscal year {m[1]}", "")),
    (re.compile(r"^status (.+)$"), lambda m, lang: (
        ("登记状态:" if lang == "zh" else "registry status: ") + load_vocabulary().name("statuses", m[1], lang), "")),
    (re.compile(r"^industry (\w)$"), lambda m, lang: (
        ("所属行业:" if lang == "zh" else "industry: ") + load_vocabulary().labelled("industries", m[1], lang), "")),
    (re.compile(r"^size class (.+)$"), lambda m, lang: (
        ("企业规模:" if lang == "zh" else "size class: ") + load_vocabulary().name("size_classes", m[1], lang), "")),
    (re.compile(r"^district (\d+)$"), lambda m, lang: (
        ("注册地:" if lang == "zh" else "registered in: ") + load_vocabulary().labelled("districts", m[1], lang), "")),
    (re.compile(r"^social insurance (\d+) months in arrears$"), lambda m, lang: (
        f"社保欠缴{m[1]}个月" if lang == "zh" else f"social insurance {m[1]} months in arrears", "")),
    (re.compile(r"^tax arrears in each of the last (\d+) months$"), lambda m, lang: (
        f"近{m[1]}个月每月欠税" if lang == "zh" else f"tax arrears in each of the last {m[1]} months", "")),
    (re.compile(r"^(firm|legal_rep|controller) (.+)$"), lambda m, lang: (
        ("失信主体:" if lang == "zh" else "listed: ") + load_vocabulary().name("subjects", m[1], lang) + ("," if lang == "zh" else ", case "),
        m[2])),
    (re.compile(r"^(\S+) (general|major_safety|major_environment)$"), lambda m, lang: (
        load_vocabulary().name("penalty_severities", m[2], lang) + (",决定书 " if lang == "zh" else ", decision "), m[1])),
    (re.compile(r"^(\S+) (\S+) dpd (\d+)$"), lambda m, lang: (
        (f"{load_vocabulary().name('loan_classes', m[2], lang)},逾期{m[3]}天,贷款 " if lang == "zh"
         else f"{load_vocabulary().name('loan_classes', m[2], lang)}, {m[3]} days past due, loan "), m[1])),
)


def evidence(detail: str | None, lang: str) -> tuple[str, str]:
    """(words in the report's language, what is kept as delivered: a case number, a register's reason)."""
    text = "" if detail is None else str(detail)
    for pattern, say in _EVIDENCE:
        if m := pattern.match(text):
            return say(m, lang)
    return "", text
