"""Pool parameters: versioned configuration, validated at load with the file, key and problem."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from valuecredit.configfile import ConfigError, content_hash, read_yaml

DEFAULT_POOL = Path(__file__).resolve().parents[2] / "config" / "pool.yaml"


class PoolConfigError(ConfigError):
    """The pool parameters are unusable; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class RewardTier:
    max_npl_bp: int
    reward_bp: int


@dataclass(frozen=True)
class PoolConfig:
    path: str
    version: int
    content_hash: str
    accrual_bp: int
    cap_bp: int
    government_share_bp: int
    payout_within_working_days: int  # the pool pays a complete claim within this many working days
    loan_cap_fen: int                # the largest programme loan
    zjtx_loan_cap_fen: int           # the largest for a firm holding 专精特新 status on the disbursement date...
    zjtx_cap_from: date              # ...from this date on
    auto_claim: bool
    rewards_enabled: bool
    rewards_posted_on: tuple[int, int]  # (month, day) of the following year
    reward_tiers: tuple[RewardTier, ...]
    subsidy_enabled: bool
    subsidy_rate_bp: int


    def loan_cap(self, on: date, zhuanjingtexin: bool) -> int:
        """The loan cap in force on a disbursement date, in fen, for a firm with or without 专精特新 status."""
        return self.zjtx_loan_cap_fen if zhuanjingtexin and on >= self.zjtx_cap_from else self.loan_cap_fen


def share(amount_fen: int, bp: int) -> int:
    """bp basis points of an amount in fen, rounded half up (amounts are never negative here)."""
    return (amount_fen * bp + 5_000) // 10_000


def load_pool_config(path: str | Path | None = None) -> PoolConfig:
    path = Path(path or DEFAULT_POOL)
    return parse_pool_config(read_yaml(path, PoolConfigError, "pool configuration"), str(path))


def parse_pool_config(doc: Any, path: str = "<pool>") -> PoolConfig:
    def fail(key: str, problem: str) -> PoolConfigError:
        return PoolConfigError(f"{path}: {key}: {problem}")

    def integer(obj: Any, key: str, where: str, lo: int, hi: int) -> int:
        full = f"{where}.{key}" if where else key
        if not isinstance(obj, dict) or key not in obj:
            raise fail(full, "missing")
        v = obj[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise fail(full, f"expected a whole number (basis points are integers), found {v!r}")
        if not lo <= v <= hi:
            raise fail(full, f"must lie in [{lo}, {hi}], found {v}")
        return v

    def flag(obj: Any, key: str, where: str) -> bool:
        v = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(v, bool):
            raise fail(f"{where}.{key}" if where else key, f"expected true or false, found {v!r}")
        return v

    if not isinstance(doc, dict):
        raise fail("(top level)", "expected a mapping of keys")
    rewards, subsidy, caps = doc.get("rewards"), doc.get("interest_subsidy"), doc.get("loan_cap")
    if not isinstance(caps, dict):
        raise fail("loan_cap", "missing or not a mapping")
    cap_from = caps.get("zhuanjingtexin_from")
    if isinstance(cap_from, str):
        try:
            cap_from = date.fromisoformat(cap_from)
        except ValueError:
            pass
    if not isinstance(cap_from, date):
        raise fail("loan_cap.zhuanjingtexin_from", f"expected a date YYYY-MM-DD, found {cap_from!r}")
    standard_cap = integer(caps, "standard_fen", "loan_cap", 1, 10**13)
    zjtx_cap = integer(caps, "zhuanjingtexin_fen", "loan_cap", 1, 10**13)
    if zjtx_cap < standard_cap:
        raise fail("loan_cap.zhuanjingtexin_fen", f"the 专精特新 cap ({zjtx_cap} fen) is below the standard cap "
                                                  f"({standard_cap} fen)")
    if not isinstance(rewards, dict):
        raise fail("rewards", "missing or not a mapping")
    if not isinstance(subsidy, dict):
        raise fail("interest_subsidy", "missing or not a mapping")
    posted = str(rewards.get("posted_on", ""))
    try:
        month, day = (int(x) for x in posted.split("-"))
        date(2001, month, day)  # a day every year has (no 29 February)
    except ValueError:
        raise fail("rewards.posted_on", f"expected a month and day MM-DD that every year has, found {posted!r}") from None
    tiers = rewards.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise fail("rewards.tiers", "expected a list of {max_npl_bp, reward_bp}")
    parsed = [RewardTier(integer(t, "max_npl_bp", f"rewards.tiers[{n}]", 0, 10_000),
                         integer(t, "reward_bp", f"rewards.tiers[{n}]", 0, 50)) for n, t in enumerate(tiers)]
    if any(a.max_npl_bp >= b.max_npl_bp or a.reward_bp < b.reward_bp for a, b in zip(parsed, parsed[1:])):
        raise fail("rewards.tiers", "list tiers best first: rising max_npl_bp, non-increasing reward_bp")
    accrual, cap = integer(doc, "accrual_bp", "", 0, 10_000), integer(doc, "cap_bp", "", 0, 10_000)
    if cap < accrual:
        raise fail("cap_bp", f"the cap ({cap} bp) is below a single loan's accrual ({accrual} bp)")
    return PoolConfig(
        path=path, version=integer(doc, "version", "", 1, 10**6), content_hash=content_hash(doc),
        accrual_bp=accrual, cap_bp=cap, government_share_bp=integer(doc, "government_share_bp", "", 0, 10_000),
        payout_within_working_days=integer(doc, "payout_within_working_days", "", 1, 250),
        loan_cap_fen=standard_cap, zjtx_loan_cap_fen=zjtx_cap, zjtx_cap_from=cap_from,
        auto_claim=flag(doc, "auto_claim", ""), rewards_enabled=flag(rewards, "enabled", "rewards"),
        rewards_posted_on=(month, day), reward_tiers=tuple(parsed),
        subsidy_enabled=flag(subsidy, "enabled", "interest_subsidy"),
        subsidy_rate_bp=integer(subsidy, "rate_bp", "interest_subsidy", 0, 2_000))
