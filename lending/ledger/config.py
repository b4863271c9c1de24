"""Pool parameters: versioned configuration, validated at load (pydantic) with the file, key, problem and line."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import StrictBool, StrictStr, field_validator

from valuecredit.configfile import ConfigError, IsoDate, Schema, Version, bounded, content_hash, not_below, validated

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


Bp = bounded(0, 10_000)  # basis points of a whole
Fen = bounded(1, 10**13)  # a loan cap


class _Tier(Schema):
    max_npl_bp: Bp
    reward_bp: bounded(0, 50)


class _Rewards(Schema):
    enabled: StrictBool
    posted_on: StrictStr  # MM-DD of the following year
    tiers: list[_Tier]

    @field_validator("posted_on")
    @classmethod
    def _a_day_every_year_has(cls, posted: str) -> str:
        try:
            month, day = (int(x) for x in posted.split("-"))
            date(2001, month, day)  # no 29 February
        except ValueError:
            raise ValueError(f"expected a month and day MM-DD that every year has, found {posted!r}") from None
        return posted

    @field_validator("tiers")
    @classmethod
    def _best_first(cls, tiers: list[_Tier]) -> list[_Tier]:
        if not tiers:
            raise ValueError("expected a list of {max_npl_bp, reward_bp}")
        if any(a.max_npl_bp >= b.max_npl_bp or a.reward_bp < b.reward_bp for a, b in zip(tiers, tiers[1:])):
            raise ValueError("list tiers best first: rising max_npl_bp, non-increasing reward_bp")
        return tiers


class _Subsidy(Schema):
    enabled: StrictBool
    rate_bp: bounded(0, 2_000)


class _LoanCap(Schema):
    standard_fen: Fen
    zhuanjingtexin_fen: Fen
    zhuanjingtexin_from: IsoDate

    _not_below_the_standard = field_validator("zhuanjingtexin_fen")(
        not_below("standard_fen", "the 专精特新 cap ({value} fen) is below the standard cap ({floor} fen)"))


class _PoolFile(Schema):
    """config/pool.yaml as the operator writes it."""

    version: Version
    accrual_bp: Bp
    cap_bp: Bp
    government_share_bp: Bp
    payout_within_working_days: bounded(1, 250)
    loan_cap: _LoanCap
    auto_claim: StrictBool
    rewards: _Rewards
    interest_subsidy: _Subsidy

    _cap_holds_one_accrual = field_validator("cap_bp")(
        not_below("accrual_bp", "the cap ({value} bp) is below a single loan's accrual ({floor} bp)"))


def load_pool_config(path: str | Path | None = None) -> PoolConfig:
    path = Path(path or DEFAULT_POOL)
    f, doc = validated(path, _PoolFile, PoolConfigError, "pool configuration")
    month, day = (int(x) for x in f.rewards.posted_on.split("-"))
    return PoolConfig(
        path=str(path), version=f.version, content_hash=content_hash(doc), accrual_bp=f.accrual_bp, cap_bp=f.cap_bp,
        government_share_bp=f.government_share_bp, payout_within_working_days=f.payout_within_working_days,
        loan_cap_fen=f.loan_cap.standard_fen, zjtx_loan_cap_fen=f.loan_cap.zhuanjingtexin_fen,
        zjtx_cap_from=f.loan_cap.zhuanjingtexin_from, auto_claim=f.auto_claim, rewards_enabled=f.rewards.enabled,
        rewards_posted_on=(month, day),
        reward_tiers=tuple(RewardTier(t.max_npl_bp, t.reward_bp) for t in f.rewards.tiers),
        subsidy_enabled=f.interest_subsidy.enabled, subsidy_rate_bp=f.interest_subsidy.rate_bp)
