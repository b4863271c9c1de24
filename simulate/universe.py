"""A synthetic Chongqing: firms, their department data month by month, a loan book, and the truth.

Every firm has a latent creditworthiness `z`. It drives growth, margins, arrears, negative-list
entries and the banks' decisions, and it shows through every department's data with noise,
seasonality (Spring Festival), industry regimes, and some firms whose tax filings contradict their
electricity use. Default within 12 months has log-odds

    h(recorded data as of two months before)  +  SIGMA_UNSEEN * u,   u ~ N(0, 1) per firm,

where `h` is a non-linear function (thresholds, interactions, regimes) of what departments record and
`u` is what they never see. Hence two truths: `pd_12m_true` = sigmoid(h + SIGMA_UNSEEN * u) and
`pd_12m_observable` = E_u[sigmoid(h + SIGMA_UNSEEN * u)], the best any model of the data can do.

The simulation walks month by month over all firms at once (numpy, no loop over firms), so memory is
a few arrays of firms x months; each month's files are written and released.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.contracts import CONTRACTS, contract_for
from data_contracts.identifiers import make_resident_ids, make_uscc
from simulate.landing import LandingWriter, add_months
from simulate.vocabulary import (
    ABNORMAL_REASONS,
    AWARD_NAMES,
    BRAND_CHARS,
    DISTRICTS,
    DIVISIONS,
    GIVEN_CHARS,
    INDUSTRIES,
    OUTSIDE_DISTRICTS,
    PARTNER_BANKS,
    PENALTY_REASONS,
    PLATFORM_SECTIONS,
    SERIOUS_REASONS,
    SPRING_FESTIVAL_MONTH,
    SURNAMES,
)

SIGMA_UNSEEN = 0.9
NEVER = 10**6  # a month index that never comes
COURT_LISTING_SHARE = 0.8  # of defaults that end in a dishonest-judgement-debtor listing (the rest settle)
BURN_IN = 14  # months before the window: delivered as history with the first regular delivery
CORE_FIRMS = 24
BULLET_SHARE = 0.4  # loans repaying principal at maturity (先息后本): the ones banks renew without repayment
RENEWAL_RATE = 0.7  # of performing bullet loans at maturity whose bank renews them (无还本续贷)
SUPPLIER_INDUSTRIES = ["C", "F", "G", "I"]
STOP_FILING_RATE = 0.05  # monthly chance that a firm three months or more in arrears stops filing tax returns
UNFILED_MONTHS_TO_LIST = 3  # months without any return before the tax bureau lists the firm as 非正常户
RESUME_FILING_RATE = 0.05  # monthly chance that a listed firm files again and is removed from the list
PLATFORM_SHARE = 0.02  # of the firms in PLATFORM_SECTIONS that are local-government financing platforms
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()
GRADE_EFFECT = {"A": -0.6, "B": -0.2, "M": 0.0, "C": 0.5, "D": 1.2}
GRADES = np.array(["A", "B", "M", "C", "D"])


@dataclass
class SimConfig:
    firms: int = 20_000
    seed: int = 0
    months: int = 36
    end_period: str = ""  # last simulated month, YYYY-MM; default: the month before today
    fault_rate: float = 0.0
    out: Path = Path("data/landing")

    def __post_init__(self) -> None:
        if not self.end_period:
            today = date.today()
            self.end_period = add_months(f"{today:%Y-%m}", -1)
        if self.firms < 10:
            raise ValueError(f"--firms must be at least 10, got {self.firms}")
        if not 1 <= self.months <= 120:
            raise ValueError(f"--months must be between 1 and 120, got {self.months}")
        if not 0 <= self.fault_rate <= 0.2:
            raise ValueError(f"--fault-rate must be between 0 and 0.2, got {self.fault_rate}")


@dataclass
class SimSummary:
    firms: int
    periods: list[str]
    files: int
    rows: int
    loans: int
    faults: int
    seconds: float
    out: str
    by_source: dict[str, int] = field(default_factory=dict)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def observable_pd(h: np.ndarray) -> np.ndarray:
    """E_u[sigmoid(h + SIGMA_UNSEEN u)] by Gauss-Hermite quadrature (u standard normal)."""
    return sigmoid(h[:, None] + SIGMA_UNSEEN * _GH_NODES[None, :]) @ _GH_WEIGHTS


def period_of(k: int) -> str:
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def month_start(k: int) -> date:
    return date(k // 12, k % 12 + 1, 1)


def month_end(k: int) -> date:
    return month_start(k + 1) - timedelta(days=1)


def delivery_date(k: int, day: int) -> date:
    """Files for month k arrive on `day` of the following month."""
    return month_start(k + 1) + timedelta(days=day - 1)


def _days(d: date) -> np.datetime64:
    return np.datetime64(d, "D")


class Universe:
    """State of every firm; `step(k)` advances one month and returns that month's records."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        n = cfg.firms
        self.n = n
        rng = np.random.default_rng([cfg.seed, 1])
        self.rng = rng
        y, m = int(cfg.end_period[:4]), int(cfg.end_period[5:7])
        self.k_end = y * 12 + m - 1
        self.k_first = self.k_end - cfg.months + 1  # first delivered month
        self.k0 = self.k_first - BURN_IN
        self.T = cfg.months + BURN_IN

        ind_codes = np.array(list(INDUSTRIES))
        ind_w = np.array([v[0] for v in INDUSTRIES.values()])
        self.industry = rng.choice(ind_codes, size=n, p=ind_w / ind_w.sum())
        ind_idx = np.searchsorted(ind_codes, self.industry)
        self.vat_rate = np.array([v[1] for v in INDUSTRIES.values()])[ind_idx]
        self.power_intensity = np.array([v[2] for v in INDUSTRIES.values()])[ind_idx]
        tech_share = np.array([v[3] for v in INDUSTRIES.values()])[ind_idx]
        # the GB/T 4754 division within the section, and the financing platforms (their own stream)
        div_rng = np.random.default_rng([cfg.seed, 9])
        self.division = np.empty(n, dtype=object)
        for sec, weights in DIVISIONS.items():
            members = np.flatnonzero(self.industry == sec)
            w = np.array(list(weights.values()))
            self.division[members] = div_rng.choice(list(weights), size=len(members), p=w / w.sum())
        self.platform = np.isin(self.industry, PLATFORM_SECTIONS) & (div_rng.random(n) < PLATFORM_SHARE)
        self.platform_ever = self.platform.copy()  # truth: a platform, listed now or once

        d_codes = np.array(list(DISTRICTS))
        d_w = np.array([v[1] for v in DISTRICTS.values()])
        self.district = rng.choice(d_codes, size=n, p=d_w / d_w.sum())
        outside = rng.random(n) < 0.005
        self.district[outside] = rng.choice(OUTSIDE_DISTRICTS, size=outside.sum())

        bodies = rng.choice(100_000_000, size=n + max(1000, n // 10), replace=False)
        self.uscc = make_uscc(self.district, bodies[:n])
        self.unknown_uscc = make_uscc(rng.choice(d_codes, size=len(bodies) - n), bodies[n:])

        self.z = rng.standard_normal(n)  # latent creditworthiness
        self.u = rng.standard_normal(n)  # the part of default risk no department records
        self.tech = rng.random(n) < tech_share
        # founding: most firms before the window, some during it
        age_months = np.where(rng.random(n) < 0.85,
                              np.minimum(rng.exponential(90, n) + BURN_IN, 360).astype(int) + BURN_IN,
                              rng.integers(0, cfg.months + BURN_IN, n))
        self.founded_k = self.k_end - age_months
        day = rng.integers(1, 28, n)
        self.founded_on = np.array([date(k // 12, k % 12 + 1, d) for k, d in zip(self.founded_k, day)], dtype="datetime64[D]")
        self.exit_k = np.full(n, NEVER)
        self.status = np.full(n, "存续", dtype=object)
        self.status_date = self.founded_on.copy()

        self.base_log_rev = rng.normal(12.6, 1.25, n) + 0.2 * self.z  # monthly revenue, RMB
        self.log_level = np.zeros(n)
        self.trend = 0.004 + 0.006 * self.z + rng.normal(0, 0.004, n)
        self.margin = np.clip(0.06 + 0.04 * self.z + rng.normal(0, 0.03, n), -0.2, 0.4)
        self.hc_base = np.clip(np.exp(rng.normal(2.4, 1.1, n) + 0.35 * (self.base_log_rev - 12.6)), 1, 5000)
        self.tech_share_staff = np.clip(np.where(self.tech, rng.beta(4, 6, n), rng.beta(1, 12, n)), 0, 1)
        self.wage = rng.uniform(4500, 11000, n) * (1 + 0.3 * self.tech)
        self.has_fund = rng.random(n) < sigmoid(0.4 + 0.8 * self.z + 0.8 * self.tech)
        self.fund_cover = rng.uniform(0.5, 1.0, n)
        self.trading = rng.random(n) < np.where(np.isin(self.industry, ["C", "F"]), 0.25, 0.04)
        self.export_share = rng.uniform(0.05, 0.6, n)
        self.rd_intensity = np.where(self.tech, rng.uniform(0.01, 0.09, n), rng.uniform(0, 0.012, n))
        self.asset_turnover = rng.uniform(0.6, 2.5, n)
        self.debt_ratio = np.clip(0.5 - 0.12 * self.z + rng.normal(0, 0.15, n), 0.05, 1.3)
        # firms whose tax filings overstate revenue from some month on (power use does not follow)
        self.auth_granted = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")  # current grant, if any
        self.fraud_k = np.where(rng.random(n) < 0.03, rng.integers(self.k0, self.k_end + 1, n), NEVER)
        self.arrears = np.zeros(n, dtype=np.int64)
        self.fund_arrears = np.zeros(n, dtype=np.int64)
        self.grade = np.full(n, "M", dtype=object)
        self.patents = np.zeros(n, dtype=np.int64)
        self.on_negative = np.zeros(n, dtype=bool)
        self.open_cases: dict[str, dict[str, tuple[int, date]]] = {"dishonest": {}, "tax": {}, "market": {}}
        # tax returns: the month a firm stopped filing (NEVER: files), and its 非正常户 case while listed
        self.stopped_k = np.full(n, NEVER, dtype=np.int64)
        self.abnormal_case: dict[int, tuple[str, date]] = {}
        self.abnormal_from: dict[int, date] = {}  # truth: when each firm was first listed
        self.annual_filers: dict[int, np.ndarray] = {}
        self.court_listing_k = np.full(n, NEVER, dtype=np.int64)  # month a defaulted firm's judgement debt is listed

        surname = rng.choice(list(SURNAMES), n)
        given = np.char.add(rng.choice(list(GIVEN_CHARS), n), np.where(rng.random(n) < 0.7, rng.choice(list(GIVEN_CHARS), n), ""))
        self.legal_rep = np.char.add(surname, given).astype(object)
        birth = (rng.integers(1960, 2000, n) * 10000 + rng.integers(1, 13, n) * 100 + rng.integers(1, 29, n))
        self.legal_rep_id = make_resident_ids(self.district.copy(), birth, rng.integers(0, 1000, n))
        brand = np.char.add(rng.choice(list(BRAND_CHARS), n), rng.choice(list(BRAND_CHARS), n))
        trade = np.array([rng.choice(INDUSTRIES[i][4]) for i in self.industry])
        self.name = np.char.add(np.char.add(np.char.add("重庆", brand), trade), "有限公司").astype(object)
        self.registered_capital = (np.round(np.exp(rng.normal(14, 1.2, n)), -4) * 100).astype(np.int64)

        T = self.T
        self.rev_hist = np.zeros((n, T), dtype=np.float32)  # reported revenue, RMB
        self.kwh_hist = np.zeros((n, T), dtype=np.float32)
        self.hc_hist = np.zeros((n, T), dtype=np.float32)
        self.true_rev_year: dict[int, np.ndarray] = {}
        # what the platform has been delivered, month by month: the truth's log-odds read only these
        self.arrears_hist = np.zeros((n, T), dtype=np.int16)
        self.negative_hist = np.zeros((n, T), dtype=bool)
        self.has_ip_hist = np.zeros((n, T), dtype=bool)
        self.grade_hist = np.zeros((n, T), dtype=np.int8)  # index into GRADES of the last delivered grade
        self.debt_hist = np.full((n, T), np.nan, dtype=np.float32)  # last delivered debt ratio
        self.grade_reported = np.full(n, int(np.flatnonzero(GRADES == "M")[0]), dtype=np.int8)
        self.debt_reported = np.full(n, np.nan, dtype=np.float32)
        self.regime = {s: 0.0 for s in INDUSTRIES}

        self.bank_ids = np.array([f"B{i + 1:02d}" for i in range(len(PARTNER_BANKS))])
        self.bank_cut = np.linspace(0.05, 0.12, len(PARTNER_BANKS))
        self.loans: list[dict] = []  # active loan state, small relative to firms
        self.borrowed = np.zeros(n, dtype=bool)  # a loan from any bank so far: the next is not a first loan
        # core firms (large buyers outside the SME register) whose confirmed receivables suppliers finance
        core_rng = np.random.default_rng([cfg.seed, 5])
        self.core_uscc = make_uscc(np.full(CORE_FIRMS, 500000), core_rng.choice(100_000_000, CORE_FIRMS, replace=False))
        self.core_name = np.array([f"重庆{a}{b}集团有限公司" for a, b in core_rng.choice(list(BRAND_CHARS), (CORE_FIRMS, 2))])
        self.open_receivables = pd.DataFrame()  # issued and not yet paid
        self.loan_seq = 0
        self.truth_loans: list[dict] = []

    # -- features every department records, used by the truth ---------------------------------
    def regime_shock(self, k: int) -> np.ndarray:
        """Industry regimes: a property and construction downturn in the middle of the window,
        and a retail slump in the first Spring Festival quarter."""
        t = k - self.k_first
        shock = np.zeros(self.n)
        if 8 <= t <= 22:
            shock[np.isin(self.industry, ["K", "E"])] = 0.7
        if 0 <= t <= 3:
            shock[self.industry == "H"] = 0.4
        return shock

    def log_odds(self, k: int) -> np.ndarray:
        """h: default log-odds over the next 12 months from the monthly data recorded up to month
        k - 2 (all delivered before month k starts), the annual grade and debt ratio delivered by the
        start of month k (settlements arrive in June), and the regime of month k - 2."""
        d = k - 2 - self.k0
        d = max(d, 11)
        a = max(k - 1 - self.k0, 0)  # end of the month before: what annual reports had arrived
        rev6 = self.rev_hist[:, d - 5:d + 1].sum(1) + 1
        rev6p = self.rev_hist[:, d - 11:d - 5].sum(1) + 1
        kwh6 = self.kwh_hist[:, d - 5:d + 1].sum(1) + 1
        kwh6p = self.kwh_hist[:, d - 11:d - 5].sum(1) + 1
        rg = np.clip(np.log(rev6 / rev6p), -3, 3)
        pg = np.clip(np.log(kwh6 / kwh6p), -3, 3)
        hg = np.clip(np.log((self.hc_hist[:, d] + 1) / (self.hc_hist[:, d - 6] + 1)), -3, 3)
        age = np.maximum(k - self.founded_k, 0) / 12
        log_annual = np.log(self.rev_hist[:, d - 11:d + 1].sum(1) + 1)
        arrears = self.arrears_hist[:, d].astype(float)
        grade_eff = np.array([GRADE_EFFECT[g] for g in GRADES])[self.grade_hist[:, a]]
        excess_debt = np.nan_to_num(np.maximum(0, self.debt_hist[:, a] - 0.75), nan=0.0)
        h = (-3.3 - 0.8 * np.tanh(2 * rg) - 0.4 * np.tanh(3 * hg)
             + 1.1 * (arrears >= 3) + 0.2 * np.minimum(arrears, 6)
             + 2.0 * excess_debt * (rg < 0)
             + 0.9 * ((rg - pg) > 0.35)
             + grade_eff + 0.7 * self.negative_hist[:, d]
             - 0.25 * np.log1p(np.minimum(age, 20)) + 0.4 * (age < 2)
             - 0.12 * (log_annual - 15.5) - 0.25 * self.has_ip_hist[:, d]
             + self.regime_shock(self.k0 + d))
        return h

    def active(self, k: int) -> np.ndarray:
        return (self.founded_k <= k) & (self.exit_k > k)

    # -- one month ---------------------------------------------------------------------------
    def step(self, k: int) -> dict[str, pd.DataFrame]:
        rng = np.random.default_rng([self.cfg.seed, 2, k])
        n, t = self.n, k - self.k0
        period = period_of(k)
        act = self.active(k)
        # activity
        self.log_level += self.trend + 0.05 * rng.standard_normal(n) - 0.03 * self.regime_shock(k)
        month = k % 12 + 1
        season = np.ones(n)
        sf = SPRING_FESTIVAL_MONTH.get(k // 12, 2)
        season *= 0.72 if month == sf else (1.06 if month == sf + 1 else 1.0)
        if month == 12:
            season *= 1.08
        true_rev = np.exp(self.base_log_rev + self.log_level + 0.08 * rng.standard_normal(n)) * season * act
        reported = true_rev * np.where(k >= self.fraud_k, 1.8, 1.0)
        hc = np.round(self.hc_base * np.exp(0.5 * self.log_level + 0.03 * rng.standard_normal(n))) * act
        kwh = true_rev / 1000 * self.power_intensity * np.exp(0.1 * rng.standard_normal(n))
        self.rev_hist[:, t], self.kwh_hist[:, t], self.hc_hist[:, t] = reported, kwh, hc
        self.true_rev_year[k // 12] = self.true_rev_year.get(k // 12, np.zeros(n)) + true_rev

        # distress drives arrears, which persist
        health = self.z + 1.5 * np.tanh(self.log_level) + 0.35 * rng.standard_normal(n) - 0.5 * self.regime_shock(k)
        distressed = act & (health < -1.7)
        self.arrears = np.where(distressed, self.arrears + 1, np.where(rng.random(n) < 0.5, 0, self.arrears))
        self.fund_arrears = np.where(distressed & self.has_fund, self.fund_arrears + 1, 0)
        # long distress ends in revocation or cancellation
        exits = act & (self.arrears >= 9) & (rng.random(n) < 0.15)
        self.exit_k[exits] = k + 1
        self.status[exits] = np.where(rng.random(exits.sum()) < 0.5, "吊销", "注销")
        self.status_date[exits] = _days(month_end(k))
        files = self._tax_filing(k, act)
        reported = reported * files  # a month without a return reports nothing
        self.rev_hist[:, t] = reported

        out: dict[str, pd.DataFrame] = {}
        idx = np.flatnonzero(act & files)
        fen = lambda x: np.round(x[idx] * 100).astype(np.int64)  # noqa: E731 - RMB -> fen
        out["tax_monthly"] = pd.DataFrame({
            "uscc": self.uscc[idx], "period": period, "revenue_fen": fen(reported),
            "vat_fen": fen(reported * self.vat_rate * 0.22),
            "income_tax_fen": fen(np.maximum(0, reported * self.margin) * 0.25 * (month % 3 == 0)),
            "tax_arrears_fen": fen(np.where(self.arrears >= 2, reported * 0.05, 0)),
        })
        idx = np.flatnonzero(act)
        uscc = self.uscc[idx]
        fen = lambda x: np.round(x[idx] * 100).astype(np.int64)  # noqa: E731 - RMB -> fen
        out["social_insurance"] = pd.DataFrame({
            "uscc": uscc, "period": period, "insured_headcount": hc[idx].astype(np.int64),
            "technical_staff": np.round(hc * self.tech_share_staff)[idx].astype(np.int64),
            "contribution_fen": fen(hc * self.wage * 0.3 * (self.arrears == 0)),
            "arrears_months": self.arrears[idx],
        })
        f_idx = act & self.has_fund
        dep = np.round(hc * self.fund_cover)
        out["housing_fund"] = pd.DataFrame({
            "uscc": self.uscc[f_idx], "period": period, "depositors": dep[f_idx].astype(np.int64),
            "contribution_fen": np.round(dep * self.wage * 0.1 * (self.fund_arrears == 0) * 100)[f_idx].astype(np.int64),
            "arrears_months": self.fund_arrears[f_idx],
        })
        out["power"] = pd.DataFrame({
            "uscc": uscc, "period": period, "kwh": np.round(kwh[idx], 1),
            "arrears_fen": fen(np.where(self.arrears >= 3, kwh * 0.8, 0)),
        })
        c_idx = act & self.trading
        out["customs"] = pd.DataFrame({
            "uscc": self.uscc[c_idx], "period": period,
            "export_fen": np.round(true_rev * self.export_share * 100 * np.exp(0.2 * rng.standard_normal(n)))[c_idx].astype(np.int64),
            "import_fen": np.round(true_rev * 0.3 * self.export_share * 100 * rng.uniform(0, 1, n))[c_idx].astype(np.int64),
        })
        out["tax_abnormal"] = self._abnormal_rows
        out["financing_platforms"] = self._platforms(k)
        self._credit_events(k, rng, act)
        self._events(k, rng, act, distressed, out)
        self._receivables(k, act, out)
        self._registry(k, out)
        if month == 6 and k - 1 >= self.k_first and (k // 12 - 1) in self.true_rev_year:
            # last year's settlement, written in May, reaches the platform in June: from now on the
            # truth sees the grade and debt ratio it carries (unchanged since the December close)
            idx = self.annual_filers[k // 12 - 1]
            self.grade_reported[idx] = pd.Categorical(self.grade[idx], categories=GRADES).codes
            self.debt_reported[idx] = self.debt_ratio[idx]
        # state at the end of month k, as far as the platform has been told
        self.arrears_hist[:, t], self.negative_hist[:, t], self.has_ip_hist[:, t] = self.arrears, self.on_negative, self.patents > 0
        self.grade_hist[:, t], self.debt_hist[:, t] = self.grade_reported, self.debt_reported
        if k == self.k0 + BURN_IN - 1 or month == 12:
            self._annual_close(k, rng)
        return out

    def _tax_filing(self, k: int, act: np.ndarray) -> np.ndarray:
        """Who files a tax return for month k. A firm three months or more in arrears may stop filing;
        after UNFILED_MONTHS_TO_LIST months without a return the tax bureau lists it as 非正常户 (as the
        tax administration does automatically after three months without any return), and a listed
        firm that files again is removed. Sets this month's list rows; its own random stream."""
        rng = np.random.default_rng([self.cfg.seed, 8, k])
        n, ms, me = self.n, month_start(k), month_end(k)
        stop, resume, day = rng.random(n), rng.random(n), rng.integers(15, (me - ms).days + 1, n)
        self.stopped_k[act & (self.stopped_k == NEVER) & (self.arrears >= 3) & (stop < STOP_FILING_RATE)] = k
        rows = []
        for i in sorted(self.abnormal_case):  # listed firms that file again: removed, and they file this month
            if act[i] and resume[i] < RESUME_FILING_RATE:
                case, listed = self.abnormal_case.pop(i)
                rows.append((case, i, listed, max(listed, ms + timedelta(days=int(day[i])))))
                self.stopped_k[i] = NEVER
        due = act & (k - self.stopped_k == UNFILED_MONTHS_TO_LIST)
        for i in np.flatnonzero(due):
            if i not in self.abnormal_case:
                case, listed = f"{k:05d}{i:08d}", ms + timedelta(days=int(day[i]))
                self.abnormal_case[int(i)] = (case, listed)
                self.abnormal_from.setdefault(int(i), listed)
                rows.append((case, i, listed, None))
        self._abnormal_rows = pd.DataFrame({
            "case_no": [f"渝税非{r[0]}" for r in rows], "uscc": [self.uscc[r[1]] for r in rows],
            "listed_on": pd.to_datetime([r[2] for r in rows]).astype("datetime64[s]"),
            "removed_on": pd.to_datetime([r[3] for r in rows]).astype("datetime64[s]"),
        })
        return act & (self.stopped_k > k)

    def _platforms(self, k: int) -> pd.DataFrame:
        """The finance bureau's list of local-government financing platforms: a platform is listed
        within a year of its founding (the first month carries the current list), and now and then
        leaves it (transformed into an ordinary firm). Its own random stream."""
        rng = np.random.default_rng([self.cfg.seed, 10, k])
        n, ms = self.n, month_start(k)
        if k == self.k0:
            new = self.platform & (self.founded_k <= k)
            self.platform_listed = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        else:
            new = self.platform & (self.founded_k == k)
        lag = rng.integers(30, 366, n).astype("timedelta64[D]")
        self.platform_listed[new] = np.minimum(self.founded_on + lag, _days(month_end(k)))[new]
        leave = ~np.isnat(self.platform_listed) & ~new & (rng.random(n) < 0.01)
        rows = np.flatnonzero(new | leave)
        removed = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        removed[leave] = _days(ms) + rng.integers(0, 28, n).astype("timedelta64[D]")[leave]
        frame = pd.DataFrame({
            "platform_id": [f"渝融平台{i:08d}" for i in rows], "uscc": self.uscc[rows],
            "listed_on": pd.to_datetime(self.platform_listed[rows]).astype("datetime64[s]"),
            "removed_on": pd.to_datetime(removed[rows]).astype("datetime64[s]"),
        })
        self.platform_listed[leave] = np.datetime64("NaT")
        self.platform &= ~leave
        return frame

    def _annual_close(self, k: int, rng: np.random.Generator) -> None:
        """Year end: grades and debt ratios move with the year's fortunes."""
        self.debt_ratio = np.clip(self.debt_ratio + 0.04 * (self.arrears > 0) - 0.02 * (self.z > 0)
                                  + rng.normal(0, 0.04, self.n), 0.05, 1.3)
        s = self.z + rng.normal(0, 0.6, self.n) - 0.5 * np.minimum(self.arrears, 4)
        young = (k - self.founded_k) < 12
        self.grade = np.where(young, "M", np.select([s > 0.7, s > -0.5, s > -1.6], ["A", "B", "C"], "D")).astype(object)

    def _credit_events(self, k: int, rng: np.random.Generator, act: np.ndarray) -> None:
        """A firm defaults on a creditor (a bank, a supplier, its landlord) in month k with the
        monthly hazard of its true 12-month PD; the creditor sues and, COURT_LISTING_SHARE of the
        time, the firm is listed as a dishonest judgement debtor (失信被执行人) one to four months
        later. Default is thus visible in the court's feed for every firm, borrower or not, as it is
        in the departments' data (the loan book records only the defaults of borrowers)."""
        pd_true = sigmoid(self.log_odds(k) + SIGMA_UNSEEN * self.u)
        hazard = 1 - (1 - pd_true) ** (1 / 12)
        pending = self.court_listing_k < NEVER  # one judgement in the making at a time
        listed = act & ~pending & (rng.random(self.n) < hazard) & (rng.random(self.n) < COURT_LISTING_SHARE)
        self.court_listing_k[listed] = k + rng.integers(1, 5, int(listed.sum()))

    def _events(self, k, rng, act, distressed, out) -> None:
        n = self.n
        ms, me = month_start(k), month_end(k)
        span = (me - ms).days + 1

        def dates(m: int) -> np.ndarray:
            return _days(ms) + rng.integers(0, span, m).astype("timedelta64[D]")

        ids = lambda prefix, m: np.array([f"{prefix}{k:05d}{i:07d}" for i in range(m)], dtype=object)  # noqa: E731
        # patents
        lam = np.where(self.tech, 0.06, 0.004) * act
        cnt = rng.poisson(lam)
        owners = np.repeat(np.arange(n), cnt)
        m = len(owners)
        self.patents += cnt
        ptype = np.where(self.tech[owners], rng.choice(["invention", "utility", "design"], m, p=[0.4, 0.45, 0.15]),
                         rng.choice(["invention", "utility", "design"], m, p=[0.1, 0.5, 0.4]))
        granted = dates(m)
        out["patents"] = pd.DataFrame({
            "patent_no": np.char.add("ZL", ids("", m).astype(str)).astype(object), "uscc": self.uscc[owners],
            "patent_type": ptype, "applied_on": granted - rng.integers(180, 900, m).astype("timedelta64[D]"),
            "granted_on": granted, "status": np.where(rng.random(m) < 0.97, "valid", "lapsed"),
        })
        owners = np.flatnonzero(act & (rng.random(n) < np.where(np.isin(self.industry, ["C", "F", "H"]), 0.012, 0.005)))
        m = len(owners)
        reg = dates(m)
        out["trademarks"] = pd.DataFrame({
            "reg_no": ids("TM", m), "uscc": self.uscc[owners], "registered_on": reg,
            "expires_on": reg + np.timedelta64(3652, "D"), "well_known": rng.random(m) < 0.01,
        })
        owners = np.flatnonzero(act & (rng.random(n) < np.where(self.industry == "I", 0.05, 0.004)))
        out["software_copyrights"] = pd.DataFrame({
            "reg_no": ids("SR", len(owners)), "uscc": self.uscc[owners], "registered_on": dates(len(owners)),
        })
        first = k == self.k_first
        p_estate = np.where(first, 0.15 * sigmoid(self.z + 1), 0.001)
        owners = np.flatnonzero(act & (rng.random(n) < p_estate))
        m = len(owners)
        area = np.round(np.exp(rng.normal(6, 1, m)), 1)
        acquired = np.where(first, _days(ms) - rng.integers(30, 5000, m).astype("timedelta64[D]"), dates(m))
        out["real_estate"] = pd.DataFrame({
            "cert_no": ids("RE", m), "uscc": self.uscc[owners], "acquired_on": acquired.astype("datetime64[D]"),
            "disposed_on": np.full(m, np.datetime64("NaT"), dtype="datetime64[D]"),
            "floor_area_m2": area, "value_fen": np.round(area * rng.uniform(6000, 15000, m) * 100).astype(np.int64),
        })
        owners = np.flatnonzero(act & (rng.random(n) < 0.003 * (1 + 3 * self.tech) * sigmoid(2 * self.z)))
        m = len(owners)
        kind = np.where(rng.random(m) < 0.7, "subsidy", "honour")
        out["subsidies"] = pd.DataFrame({
            "award_id": ids("AW", m), "uscc": self.uscc[owners], "awarded_on": dates(m), "award_type": kind,
            "award_name": rng.choice(AWARD_NAMES, m),
            "amount_fen": np.where(kind == "subsidy", np.round(rng.uniform(5e4, 1e6, m), -2) * 100, 0).astype(np.int64),
        })
        owners = np.flatnonzero(act & (rng.random(n) < 0.003 * (1 + 3 * (self.z < -1))))
        m = len(owners)
        sev = rng.choice(["general", "major_safety", "major_environment"], m, p=[0.9, 0.05, 0.05])
        out["penalties"] = pd.DataFrame({
            "decision_no": ids("渝市监罚", m), "uscc": self.uscc[owners], "decided_on": dates(m), "severity": sev,
            "reason": rng.choice(PENALTY_REASONS, m),
            "amount_fen": (np.round(rng.uniform(1000, 200000, m), -2) * 100).astype(np.int64),
        })
        # recognitions: the first month carries the current lists
        p_q = np.where(first, 1.0, 1 / 36)
        quals = []
        for q, base, years in (("high_tech", 0.35, 3), ("zhuanjingtexin", 0.12, 3), ("tech_sme", 0.5, 1)):
            owners = np.flatnonzero(act & self.tech & (rng.random(n) < base * sigmoid(self.z) * p_q))
            g = np.where(first, _days(ms) - rng.integers(0, 300, len(owners)).astype("timedelta64[D]"), dates(len(owners)))
            g = g.astype("datetime64[D]")
            quals.append(pd.DataFrame({"uscc": self.uscc[owners], "qualification": q, "granted_on": g,
                                       "expires_on": g + np.timedelta64(365 * years, "D")}))
        out["qualifications"] = pd.concat(quals, ignore_index=True)
        # data-use authorisations: most firms grant at the start or when founded; a few revoke
        new = act & ((k == self.k_first) | (self.founded_k == k)) & (rng.random(n) < 0.93)
        g = np.where(k == self.k_first, _days(ms) - rng.integers(0, 700, n).astype("timedelta64[D]"), dates(n))[new]
        g = g.astype("datetime64[D]")
        self.auth_granted[new] = g
        revoke = ~np.isnat(self.auth_granted) & (rng.random(n) < 0.0015)
        rows = np.flatnonzero(new | revoke)
        revoked = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        revoked[revoke] = dates(int(revoke.sum()))
        rev_before_grant = revoked < self.auth_granted
        revoked[rev_before_grant] = self.auth_granted[rev_before_grant]
        out["authorisations"] = pd.DataFrame({
            "uscc": self.uscc[rows], "granted_on": self.auth_granted[rows],
            "expires_on": self.auth_granted[rows] + np.timedelta64(365 * 3, "D"), "revoked_on": revoked[rows],
        })
        self.auth_granted[revoke] = np.datetime64("NaT")
        # negative-list registers: entries for distressed firms, removals after a while. A firm is on
        # the court's register once per judgement it has not honoured, so a listed firm that defaults
        # again is listed again; the other registers hold a firm once.
        frames = {}
        for reg, p in (("dishonest", None), ("tax", 0.02), ("market", 0.05)):
            cases = self.open_cases[reg]
            if reg == "dishonest":  # the court lists the firms whose default it has judged (_credit_events)
                due = self.court_listing_k == k
                self.court_listing_k[due] = NEVER
                enter = np.flatnonzero(due & act)
            else:
                held = {firm for firm, _ in cases.values()}
                enter = [i for i in np.flatnonzero(distressed & (rng.random(n) < p)) if i not in held]
            leave = [case for case in cases if rng.random() < 0.06]
            rows_ = []
            for i in enter:
                case = f"{reg[0].upper()}{k:05d}{i:08d}"
                cases[case] = (i, ms + timedelta(days=int(rng.integers(0, span))))
                rows_.append((case, i, cases[case][1], None))
            for case in leave:
                i, listed = cases.pop(case)
                rows_.append((case, i, listed, max(listed, me)))
            frames[reg] = rows_
        self.on_negative[:] = False
        for reg in self.open_cases.values():
            self.on_negative[[firm for firm, _ in reg.values()]] = True
        self.on_negative[list(self.abnormal_case)] = True
        d = frames["dishonest"]
        subj = rng.choice(["firm", "legal_rep", "controller"], len(d), p=[0.6, 0.3, 0.1])
        out["dishonest_debtors"] = pd.DataFrame({
            "case_no": [f"（{k // 12}）渝执{r[0]}" for r in d], "uscc": self.uscc[[r[1] for r in d]].tolist() if d else [],
            "subject_type": subj, "person_id": [self.legal_rep_id[r[1]] if s != "firm" else None for r, s in zip(d, subj)],
            "listed_on": [r[2] for r in d], "removed_on": [r[3] for r in d],
        })
        d = frames["tax"]
        out["tax_violations"] = pd.DataFrame({
            "case_no": [f"渝税稽{r[0]}" for r in d], "uscc": self.uscc[[r[1] for r in d]].tolist() if d else [],
            "listed_on": [r[2] for r in d], "removed_on": [r[3] for r in d],
        })
        d = frames["market"]
        regs = rng.choice(["abnormal_operation", "serious_illegal"], len(d), p=[0.85, 0.15])
        out["market_registers"] = pd.DataFrame({
            "case_no": [f"渝市监异{r[0]}" for r in d], "uscc": self.uscc[[r[1] for r in d]].tolist() if d else [],
            "register": regs,
            "reason": [rng.choice(ABNORMAL_REASONS if g == "abnormal_operation" else SERIOUS_REASONS) for g in regs],
            "listed_on": [r[2] for r in d], "removed_on": [r[3] for r in d],
        })
        for name in ("dishonest_debtors", "tax_violations", "market_registers"):
            for c in ("listed_on", "removed_on"):
                out[name][c] = pd.to_datetime(out[name][c]).astype("datetime64[s]")

    def _receivables(self, k: int, act: np.ndarray, out) -> None:
        """Suppliers' receivables from core firms: issued in the month, most confirmed by the core firm
        within it, paid at or somewhat after the due date. A receivable is delivered when issued and
        again in the month it is paid. Its own random stream, so the other sources do not move."""
        rng = np.random.default_rng([self.cfg.seed, 6, k])
        ms, me = month_start(k), month_end(k)
        span = (me - ms).days + 1
        idx = np.flatnonzero(act & np.isin(self.industry, SUPPLIER_INDUSTRIES) & (rng.random(self.n) < 0.03 * sigmoid(self.z + 1)))
        m = len(idx)
        issued = _days(ms) + rng.integers(0, span, m).astype("timedelta64[D]")
        confirmed = issued + (rng.random(m) * (_days(me) - issued).astype(int)).astype("timedelta64[D]")
        due = issued + rng.choice([90, 120, 180], m).astype("timedelta64[D]")
        core = rng.integers(0, CORE_FIRMS, m)
        new = pd.DataFrame({
            "receivable_id": np.array([f"RC{k:05d}{i:07d}" for i in range(m)], dtype=object), "uscc": self.uscc[idx],
            "core_uscc": self.core_uscc[core], "core_name": self.core_name[core], "issued_on": issued,
            "due_on": due, "amount_fen": (np.maximum(1, np.round(self.rev_hist[idx, k - self.k0] * rng.uniform(0.2, 0.8, m), -2))
                                          * 100).astype(np.int64),
            "confirmed_on": np.where(rng.random(m) < 0.8, confirmed, np.datetime64("NaT")),
            "paid_on": np.full(m, np.datetime64("NaT"), dtype="datetime64[D]"),
            "_pay": due + np.where(rng.random(m) < 0.2, rng.integers(1, 45, m), 0).astype("timedelta64[D]"),
        })
        book = pd.concat([self.open_receivables, new], ignore_index=True) if len(self.open_receivables) else new
        paid = (book["_pay"] <= _days(me)).to_numpy()
        book.loc[paid, "paid_on"] = book.loc[paid, "_pay"]
        self.open_receivables = book[~paid].reset_index(drop=True)
        rows = book[paid | book["receivable_id"].isin(new["receivable_id"]).to_numpy()].drop(columns="_pay")
        for c in ("issued_on", "due_on", "confirmed_on", "paid_on"):
            rows[c] = pd.to_datetime(rows[c]).astype("datetime64[s]")
        out["receivables"] = rows.reset_index(drop=True)

    def _registry(self, k: int, out) -> None:
        """The first delivered month carries the whole register; later months new firms and changes."""
        if k == self.k_first:
            rows = self.founded_k <= k
        else:
            rows = (self.founded_k == k) | (self.exit_k == k + 1)
        rows &= (self.founded_k <= k)
        size = np.select([self.hc_base >= 1000, self.hc_base >= 300, self.hc_base >= 20], ["大型", "中型", "小型"], "微型")
        idx = np.flatnonzero(rows)
        out["registry"] = pd.DataFrame({
            "uscc": self.uscc[idx], "name": self.name[idx], "district_code": self.district[idx].astype(str),
            "industry": self.industry[idx], "industry_division": self.division[idx], "founded_on": self.founded_on[idx],
            "registered_capital_fen": self.registered_capital[idx], "size_class": size[idx],
            "status": self.status[idx], "status_date": self.status_date[idx],
            "legal_rep_name": self.legal_rep[idx], "legal_rep_id": self.legal_rep_id[idx],
        })

    def write_outcomes(self, k: int, folder: Path) -> None:
        """The truth at the end of month k for every firm active then: its 12-month PD as of the next
        day (`pd_12m_true`, `pd_12m_observable`) and one realised outcome drawn from `pd_12m_true`
        with a seed of its own, so that a model can be judged on the whole population it scores,
        not only on borrowers. Called once month k has been simulated (the PD reads what was
        delivered by then); one file per month-end. Nothing in the pipeline reads it."""
        folder.mkdir(parents=True, exist_ok=True)
        h = self.log_odds(k + 1)
        idx = np.flatnonzero(self.active(k))
        pd_true = sigmoid(h[idx] + SIGMA_UNSEEN * self.u[idx])
        drawn = np.random.default_rng([self.cfg.seed, 4, k]).random(self.n)[idx]
        pd.DataFrame({
            "uscc": self.uscc[idx], "as_of": np.full(len(idx), _days(month_end(k))),
            "pd_12m_true": pd_true, "pd_12m_observable": observable_pd(h[idx]), "defaulted_12m": drawn < pd_true,
        }).to_parquet(folder / f"{period_of(k)}.parquet", index=False)

    # -- tax annual settlement -----------------------------------------------------------
    def _annual_report_firms(self, year: int) -> np.ndarray:
        return np.flatnonzero((self.founded_k < (year + 1) * 12) & (self.true_rev_year[year] > 0))

    def tax_annual(self, year: int) -> pd.DataFrame:
        """The settlement of the firms that file: one that has stopped filing returns settles nothing."""
        idx = self._annual_report_firms(year)
        idx = idx[self.stopped_k[idx] == NEVER]
        self.annual_filers[year] = idx
        rev = self.true_rev_year[year][idx]
        rd = rev * self.rd_intensity[idx]
        assets = rev / self.asset_turnover[idx]  # year-end total assets from revenue and turnover
        return pd.DataFrame({
            "uscc": self.uscc[idx], "fiscal_year": year, "rd_expense_fen": np.round(rd * 100).astype(np.int64),
            "rd_super_deduction_fen": np.round(rd * 100).astype(np.int64),
            "total_assets_fen": np.round(assets * 100).astype(np.int64),
            "total_liabilities_fen": np.round(assets * self.debt_ratio[idx] * 100).astype(np.int64),
            "credit_grade": self.grade[idx],
        })

    # -- the loan book -------------------------------------------------------------------
    def loan_month(self, k: int, h: np.ndarray) -> dict[str, pd.DataFrame]:
        rng = np.random.default_rng([self.cfg.seed, 3, k])
        n = self.n
        ms = month_start(k)
        authorised = ~np.isnat(self.auth_granted)
        apply = self.active(k) & authorised & (rng.random(n) < 0.008 * (1 + 0.5 * (self.trend > 0.005)))
        idx = np.flatnonzero(apply)
        m = len(idx)
        pd_obs = observable_pd(h[idx])
        pd_true = sigmoid(h[idx] + SIGMA_UNSEEN * self.u[idx])
        bank = rng.integers(0, len(self.bank_ids), m)
        approved = (pd_obs < self.bank_cut[bank]) & ~self.on_negative[idx] & (rng.random(m) < 0.92)
        applied_on = np.array([ms + timedelta(days=int(d)) for d in rng.integers(0, 20, m)])
        decided_on = applied_on + np.array([timedelta(days=int(d)) for d in rng.integers(1, 9, m)])
        annual_rev = self.rev_hist[idx, k - self.k0 - 12:k - self.k0].sum(1) if m else np.zeros(0)
        amount = np.clip(np.round(annual_rev * 0.15, -4), 100_000, 3_000_000)
        app_ids = np.array([f"AP{k:05d}{i:06d}" for i in range(m)], dtype=object)
        apps = pd.DataFrame({
            "application_id": app_ids, "uscc": self.uscc[idx], "bank_id": self.bank_ids[bank],
            "applied_on": pd.to_datetime(applied_on).astype("datetime64[s]") if m else pd.Series([], dtype="datetime64[s]"),
            "requested_fen": (amount * 100).astype(np.int64),
            "decision": np.where(approved, "approved", "declined"),
            "decided_on": pd.to_datetime(decided_on).astype("datetime64[s]") if m else pd.Series([], dtype="datetime64[s]"),
        })
        # renewals without repayment (无还本续贷): a performing bullet loan maturing this month, of a firm
        # still active, authorised and off the negative list, renewed by its bank for the principal
        # outstanding when the bank would lend to it today (its own stream: the applications above do not move)
        r_rng = np.random.default_rng([self.cfg.seed, 7, k])
        due = [ln for ln in self.loans if ln["bullet"] and k - ln["k"] == ln["term"] and k - ln["k"] < ln["stop"]]
        firms = np.array([ln["i"] for ln in due], dtype=np.int64)
        r_obs, r_true = observable_pd(h[firms]), sigmoid(h[firms] + SIGMA_UNSEEN * self.u[firms])
        keep = (self.active(k)[firms] & authorised[firms] & ~self.on_negative[firms]
                & (r_obs < self.bank_cut[[ln["bank"] for ln in due]]) & (r_rng.random(len(due)) < RENEWAL_RATE))
        due, r_obs, r_true = [ln for ln, ok in zip(due, keep) if ok], r_obs[keep], r_true[keep]
        renew_ids = np.array([f"AR{k:05d}{i:06d}" for i in range(len(due))], dtype=object)
        renew_on = np.array([min(ms + timedelta(days=int(d)), month_end(k)) for d in r_rng.integers(0, 20, len(due))])
        if due:
            apps = pd.concat([apps, pd.DataFrame({
                "application_id": renew_ids, "uscc": self.uscc[[ln["i"] for ln in due]],
                "bank_id": self.bank_ids[[ln["bank"] for ln in due]],
                "applied_on": pd.to_datetime(renew_on).astype("datetime64[s]"),
                "requested_fen": np.array([ln["outstanding"] for ln in due], dtype=np.int64), "decision": "approved",
                "decided_on": pd.to_datetime(renew_on).astype("datetime64[s]")})], ignore_index=True)
        # (firm, bank, amount in fen, application, decided on, kind): the new loans, then the renewals
        lend = [(idx[j], bank[j], int(amount[j] * 100), app_ids[j], decided_on[j], None, pd_obs[j], pd_true[j])
                for j in np.flatnonzero(approved)]
        lend += [(ln["i"], ln["bank"], ln["outstanding"], a, d, "renewal", o, t)
                 for ln, a, d, o, t in zip(due, renew_ids, renew_on, r_obs, r_true)]
        new_loans = []
        for i, b, amt, app_id, decided, kind, p_obs, p_true in lend:
            self.loan_seq += 1
            loan_id = f"L{self.loan_seq:09d}"
            renewal = kind == "renewal"
            disbursed = decided if renewal else decided + timedelta(days=int(rng.integers(1, 5)))
            kind = kind or ("credit" if self.borrowed[i] else "first_loan")
            self.borrowed[i] = True
            rate_bp = int(np.clip(365 + 2500 * p_obs + (r_rng if renewal else rng).integers(0, 60), 365, 600))
            defaults = (r_rng if renewal else rng).random() < p_true
            stop = int((r_rng if renewal else rng).integers(1, 10)) if defaults else NEVER
            maturity = month_start(k + 13) - timedelta(days=1)
            bullet = renewal or r_rng.random() < BULLET_SHARE
            self.loans.append({"loan_id": loan_id, "k": k, "amount": amt, "outstanding": amt, "rate_bp": rate_bp,
                               "stop": stop, "term": 12, "written_off": False, "recovered": 0, "i": i, "bank": b,
                               "bullet": bullet})
            new_loans.append({"loan_id": loan_id, "application_id": app_id, "uscc": self.uscc[i],
                              "bank_id": self.bank_ids[b], "disbursed_on": disbursed, "amount_fen": amt,
                              "term_months": 12, "rate_bp": rate_bp, "maturity_on": maturity, "product_kind": kind})
            self.truth_loans.append({"loan_id": loan_id, "uscc": self.uscc[i], "disbursed_period": period_of(k),
                                     "pd_12m_true": float(p_true), "pd_12m_observable": float(p_obs),
                                     "defaulted_12m": bool(defaults)})
        loans = pd.DataFrame(new_loans, columns=list(contract_for("loans").column_names))
        for c in ("disbursed_on", "maturity_on"):
            loans[c] = pd.to_datetime(loans[c]).astype("datetime64[s]")
        status, recov = self._loan_status(k, rng)
        return {"loan_applications": apps, "loans": loans, "loan_status": status, "loan_recoveries": recov}

    def _loan_status(self, k: int, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
        status, recov, keep = [], [], []
        period = period_of(k)
        for ln in self.loans:
            age = k - ln["k"]  # months since disbursement; status starts the month after
            if age < 1:
                keep.append(ln)
                continue
            paid_p = paid_i = 0
            if age < ln["stop"]:
                # an amortising loan repays in equal parts, a bullet loan (先息后本) all at maturity
                due = (0 if ln["bullet"] else ln["amount"] // ln["term"]) if age < ln["term"] else ln["outstanding"]
                paid_p = min(due, ln["outstanding"])
                paid_i = ln["outstanding"] * ln["rate_bp"] // 120000
                dpd = 0
            else:
                dpd = 30 * (age - ln["stop"] + 1)
            ln["outstanding"] -= paid_p
            cls = "正常" if dpd == 0 else "关注" if dpd <= 90 else "次级" if dpd <= 180 else "可疑" if dpd <= 360 else "损失"
            if dpd > 90 and ln["outstanding"] > 0:
                if rng.random() < 0.3:
                    amt = int(ln["outstanding"] * rng.uniform(0.05, 0.2))
                    if amt > 0:
                        ln["outstanding"] -= amt
                        recov.append((f"RV{ln['loan_id']}{k:05d}", ln["loan_id"], month_end(k), "recovery", amt))
                if dpd >= 360 and ln["outstanding"] > 0:
                    recov.append((f"WO{ln['loan_id']}", ln["loan_id"], month_end(k), "write_off", ln["outstanding"]))
                    ln["outstanding"] = 0
                    ln["written_off"] = True
            status.append((ln["loan_id"], period, paid_p, paid_i, ln["outstanding"], dpd, cls))
            if ln["outstanding"] > 0:
                keep.append(ln)
        self.loans = keep
        s = pd.DataFrame(status, columns=list(contract_for("loan_status").column_names))
        r = pd.DataFrame(recov, columns=list(contract_for("loan_recoveries").column_names))
        r["event_date"] = pd.to_datetime(r["event_date"]).astype("datetime64[s]")
        return s, r


def simulate(cfg: SimConfig, progress=None) -> SimSummary:
    """Write the landing zone for `cfg` and return what was written."""
    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    uni = Universe(cfg)
    contracts = {c.source: c for c in CONTRACTS}
    writer = LandingWriter(out, cfg.fault_rate, cfg.seed, uni.unknown_uscc)
    banks = pd.DataFrame({"bank_id": uni.bank_ids, "bank_name": list(PARTNER_BANKS)})
    writer.write(contracts["banks"], "all", delivery_date(uni.k_first - 1, 1), banks)
    periods: list[str] = []
    registers = [c for c in CONTRACTS if c.cadence == "monthly" and "period" not in c.key and c.source != "registry"]
    history: dict[str, list[pd.DataFrame]] = {c.source: [] for c in registers}
    panels = [c for c in CONTRACTS if c.cadence == "monthly" and "period" in c.key and not c.source.startswith("loan")]
    for k in range(uni.k0, uni.k_end + 1):
        month = uni.step(k)
        if k < uni.k_first:
            # a department joining the platform delivers its history with its first regular delivery:
            # the monthly panels of the months before the window, and its registers' rows
            for c in panels:
                if c.source in month:
                    writer.write(c, period_of(k), delivery_date(uni.k_first, c.delivery_day), month[c.source])
            for c in registers:
                if c.source in month:
                    history[c.source].append(month[c.source])
            continue
        if history:
            # the registers' history arrives with the first month (the latest row per key: a case
            # listed and later removed arrives once, removed)
            for c in registers:
                frames = [f for f in [*history[c.source], month.get(c.source)] if f is not None and len(f)]
                if frames:
                    month[c.source] = pd.concat(frames, ignore_index=True).drop_duplicates(list(c.key), keep="last")
            history = {}
        periods.append(period_of(k))
        uni.write_outcomes(k, out / "_truth" / "outcomes")
        h = uni.log_odds(k)
        month.update(uni.loan_month(k, h))
        for source in [c.source for c in CONTRACTS if c.cadence == "monthly"]:
            c = contracts[source]
            writer.write(c, period_of(k), delivery_date(k, c.delivery_day), month[source])
        if k % 12 == 4:  # annual settlement for last year arrives in June
            year = k // 12 - 1
            if year in uni.true_rev_year:
                c = contracts["tax_annual"]
                writer.write(c, str(year), date(year + 1, 6, c.delivery_day), uni.tax_annual(year))
        if progress:
            progress(period_of(k))
    writer.apply_file_faults(contracts)
    writer.finish()

    truth = out / "_truth"
    h = uni.log_odds(uni.k_end + 1)
    pd.DataFrame({
        "uscc": uni.uscc, "pd_12m_true": sigmoid(h + SIGMA_UNSEEN * uni.u), "pd_12m_observable": observable_pd(h),
        "latent_z": uni.z, "fraud_from": [period_of(int(k)) if k < NEVER else None for k in uni.fraud_k],
        "tax_abnormal_from": [uni.abnormal_from.get(i) for i in range(uni.n)],
        "financing_platform": uni.platform_ever,
    }).to_parquet(truth / "firms.parquet", index=False)
    pd.DataFrame(uni.truth_loans, columns=["loan_id", "uscc", "disbursed_period", "pd_12m_true",
                                            "pd_12m_observable", "defaulted_12m"]).to_parquet(truth / "loans.parquet", index=False)
    summary = SimSummary(
        firms=cfg.firms, periods=periods, files=len(writer.manifest), rows=int(sum(m["rows"] for m in writer.manifest)),
        loans=len(uni.truth_loans), faults=len(writer.faults), seconds=round(time.perf_counter() - started, 2),
        out=str(out), by_source={},
    )
    for m in writer.manifest:
        summary.by_source[m["source"]] = summary.by_source.get(m["source"], 0) + m["rows"]
    cfg_dump = {k: str(v) for k, v in asdict(cfg).items() if k != "out"}  # where is not what
    (truth / "config.json").write_text(json.dumps(cfg_dump, indent=2, sort_keys=True))
    return summary
