"""The pool's rules as double-entry postings, in integer fen.

`Pool` holds the account balances and each loan's state; `apply(event)` turns one business event
into zero or one posting (a balanced set of legs) or a refused claim, and updates the state. It is
pure Python over plain data, so the same engine serves the nightly run, a full rebuild and the
property tests. Posting ids are derived from the business event: applying an event twice is a
duplicate and changes nothing; the same id with different legs is an error.

Accounts, per bank (normal side in brackets):
  loan_principal [D] / bank_funding [C]     programme principal outstanding, and the bank's money in it
  quota_accrued [D] / quota_available [C]   quota granted by the government / quota the bank may draw
  quota_used [C]                            quota drawn by compensation payouts
  gov_compensation [D] / bank_compensation [C]   compensation paid by the government, net of recoveries returned
  written_off [D]                           principal written off
  gov_rewards [D] / bank_rewards [C]        annual performance rewards
  gov_interest_subsidy [D] / bank_interest_subsidy [C]   the 2-point interest subsidy (with each month's servicing)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from valuecredit.calendar import WorkingDays
from valuecredit.ledger.config import PoolConfig, share

NORMAL_SIDE = {
    "loan_principal": "D", "bank_funding": "C", "quota_accrued": "D", "quota_available": "C", "quota_used": "C",
    "gov_compensation": "D", "bank_compensation": "C", "written_off": "D", "gov_rewards": "D", "bank_rewards": "C",
    "gov_interest_subsidy": "D", "bank_interest_subsidy": "C",
}
# a servicing posting's legs, in order: principal repaid (debit, credit), then the subsidy (debit, credit)
SERVICING_ACCOUNTS = ("bank_funding", "loan_principal", "gov_interest_subsidy", "bank_interest_subsidy")
EVENT_ORDER = {"disbursement": 0, "servicing": 1, "non_performing": 3, "claim": 4,
               "recovery": 5, "write_off": 6, "reward": 7}


class LedgerError(RuntimeError):
    """An event contradicts the ledger (unknown loan, same posting id with other amounts, ...)."""


class Event(NamedTuple):
    type: str
    effective_date: date  # when it happened
    business_date: date   # when the platform learned it
    bank_id: str
    loan_id: str = ""
    amount_fen: int = 0
    key: str = ""         # what makes the event unique besides type and loan (a period, an event id, a year)
    extra_fen: int = 0    # servicing only: the month's interest subsidy (amount_fen is the principal repaid)

    @property
    def sort_key(self) -> tuple:
        return (self.effective_date, EVENT_ORDER[self.type], self.loan_id, self.key)


class Leg(NamedTuple):
    account: str
    debit_fen: int
    credit_fen: int


class Posting(NamedTuple):
    posting_id: str
    event_type: str
    bank_id: str
    loan_id: str
    effective_date: date
    business_date: date
    legs: tuple[Leg, ...]
    memo: str = ""


@dataclass
class LoanState:
    bank_id: str
    disbursed_year: int
    disbursed_fen: int
    outstanding_fen: int = 0  # disbursed - repaid - recovered - written off
    written_off_fen: int = 0
    npl_on: date | None = None
    claim_deadline: date | None = None
    claimed: bool = False
    paid_fen: int = 0       # compensation paid by the government on this loan
    returned_fen: int = 0   # of which returned from recoveries


@dataclass(frozen=True)
class ClaimDecision:
    loan_id: str
    bank_id: str
    npl_on: date | None
    deadline: date | None
    claimed_on: date
    status: str             # paid, refused_late, refused_not_non_performing, refused_duplicate, no_quota
    unrecovered_fen: int
    claimed_fen: int
    paid_fen: int
    posting_id: str


class Applied(NamedTuple):
    posting: Posting | None
    claim: ClaimDecision | None
    duplicate: bool = False


def account(kind: str, bank_id: str) -> str:
    return f"{kind}:{bank_id}"


def posting_id(event: Event) -> str:
    raw = f"{event.type}|{event.bank_id}|{event.loan_id}|{event.key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass
class Pool:
    cfg: PoolConfig
    calendar: WorkingDays
    balances: dict[str, int] = field(default_factory=dict)  # debit minus credit, per account
    loans: dict[str, LoanState] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # posting id of every event applied -> amounts
    lending_by_year: dict[tuple[str, int], int] = field(default_factory=dict)
    npl_by_year: dict[tuple[str, int], int] = field(default_factory=dict)  # by disbursement year

    def __post_init__(self) -> None:
        self._handlers = {t: getattr(self, f"_{t}") for t in EVENT_ORDER}
        self._servicing_accounts: dict[str, tuple[str, ...]] = {}

    # -- balances ---------------------------------------------------------------------------
    def balance(self, kind: str, bank_id: str) -> int:
        """The account's balance on its normal side."""
        b = self.balances.get(account(kind, bank_id), 0)
        return b if NORMAL_SIDE[kind] == "D" else -b

    def quota_available(self, bank_id: str) -> int:
        """What a claim may draw: min(quota balance, cap x outstanding balance)."""
        return max(0, min(self.balance("quota_available", bank_id),
                          share(self.balance("loan_principal", bank_id), self.cfg.cap_bp)))

    # -- events -----------------------------------------------------------------------------
    def apply(self, ev: Event, pid: str | None = None) -> Applied:
        """Apply one event; `pid` is its posting id when the caller has computed it already."""
        pid = pid or posting_id(ev)
        if pid in self.seen:  # the event was applied before: nothing changes, unless it now says otherwise
            self._check_duplicate(ev, pid)
            return Applied(None, None, duplicate=True)
        handler = self._handlers.get(ev.type)
        if handler is None:
            raise LedgerError(f"unknown event type {ev.type!r}")
        if ev.type != "disbursement" and ev.type != "reward":
            self._loan(ev)
        elif ev.amount_fen < 0:
            raise LedgerError(f"{ev.type} {ev.loan_id or ev.bank_id}: negative amount {ev.amount_fen}")
        out = handler(ev, pid)
        self.seen[pid] = (ev.amount_fen, ev.extra_fen)
        posting, claim = out if type(out) is tuple else (out, None)  # only a claim returns a pair
        return Applied(posting, claim)

    def _check_duplicate(self, ev: Event, pid: str) -> None:
        if self.seen[pid] != (ev.amount_fen, ev.extra_fen):
            raise LedgerError(f"{ev.type} {ev.loan_id or ev.bank_id} {ev.key}: posting {pid} exists with amounts "
                              f"{self.seen[pid]} fen, now {(ev.amount_fen, ev.extra_fen)} fen; correct it with a "
                              "reversing entry")

    def _post(self, ev: Event, pid: str, legs: list[Leg], memo: str = "") -> Posting | None:
        kept = [leg for leg in legs if leg[1] or leg[2]]  # (account, debit, credit); zero legs are dropped
        if not kept:
            return None
        debits = credits = 0
        for _, debit, credit in kept:
            debits += debit
            credits += credit
        if debits != credits:
            raise LedgerError(f"posting {pid} ({ev.type} {ev.loan_id}) does not balance")
        balances = self.balances
        for acct, debit, credit in kept:
            balances[acct] = balances.get(acct, 0) + debit - credit
        legs = tuple(kept)
        return Posting(pid, ev.type, ev.bank_id, ev.loan_id, ev.effective_date, ev.business_date, legs, memo)

    def _disbursement(self, ev: Event, pid: str) -> Posting | None:
        if ev.loan_id in self.loans:
            raise LedgerError(f"loan {ev.loan_id} disbursed twice with different posting ids")
        b = ev.bank_id
        self.loans[ev.loan_id] = LoanState(b, ev.effective_date.year, ev.amount_fen, ev.amount_fen)
        year = (b, ev.effective_date.year)
        self.lending_by_year[year] = self.lending_by_year.get(year, 0) + ev.amount_fen
        legs = [Leg(account("loan_principal", b), ev.amount_fen, 0), Leg(account("bank_funding", b), 0, ev.amount_fen)]
        # the accrual is checked against the cap as it posts: the quota never exceeds 4 % of the
        # balance outstanding after this loan
        due = share(ev.amount_fen, self.cfg.accrual_bp)
        outstanding = self.balance("loan_principal", b) + ev.amount_fen
        headroom = max(0, share(outstanding, self.cfg.cap_bp) - self.balance("quota_available", b))
        accrued = min(due, headroom)
        legs += [Leg(account("quota_accrued", b), accrued, 0), Leg(account("quota_available", b), 0, accrued)]
        memo = f"accrual {accrued} of {due} due" + (f"; {due - accrued} above the cap" if accrued < due else "")
        return self._post(ev, pid, legs, memo)

    def _loan(self, ev: Event) -> LoanState:
        """The loan an event is about, which must be known, with amounts that are not negative."""
        loan = self.loans.get(ev.loan_id)
        if loan is None:
            raise LedgerError(f"{ev.type} on {ev.effective_date} for unknown loan {ev.loan_id!r} (bank {ev.bank_id})")
        if ev.amount_fen < 0 or ev.extra_fen < 0:
            raise LedgerError(f"{ev.type} {ev.loan_id}: negative amount {min(ev.amount_fen, ev.extra_fen)}")
        return loan

    def _principal_down(self, ev: Event, what: str) -> tuple[LoanState, int]:
        loan = self.loans[ev.loan_id]
        if ev.amount_fen > loan.outstanding_fen:
            raise LedgerError(f"{what} of {ev.amount_fen} fen on loan {ev.loan_id} exceeds its outstanding "
                              f"{loan.outstanding_fen} fen")
        loan.outstanding_fen -= ev.amount_fen
        return loan, ev.amount_fen

    def _servicing(self, ev: Event, pid: str) -> Posting | None:
        """A loan's monthly status: the principal repaid and, if interest was paid, the interest subsidy."""
        b, amt, sub = self._service_core(ev)
        names = self._servicing_names(b)
        legs = ((Leg(names[0], amt, 0), Leg(names[1], 0, amt)) if amt else ()) + (
            (Leg(names[2], sub, 0), Leg(names[3], 0, sub)) if sub else ())
        return Posting(pid, ev.type, b, ev.loan_id, ev.effective_date, ev.business_date, legs, "") if legs else None

    def service(self, ev: Event, pid: str) -> int | None:
        """The servicing event without building objects, for the nightly bulk (a loan a month): None
        for a duplicate, else the number of legs posted. The store writes those legs set-wise; they
        are the legs `_servicing` would build."""
        if pid in self.seen:
            self._check_duplicate(ev, pid)
            return None
        _, amt, sub = self._service_core(ev)
        self.seen[pid] = (amt, sub)
        return (2 if amt else 0) + (2 if sub else 0)

    def _service_core(self, ev: Event) -> tuple[str, int, int]:
        self._loan(ev)
        loan, amt = self._principal_down(ev, "repayment")
        sub = ev.extra_fen
        b = loan.bank_id
        names, balances = self._servicing_names(b), self.balances
        if amt:  # each pair balances by construction
            balances[names[0]] = balances.get(names[0], 0) + amt
            balances[names[1]] = balances.get(names[1], 0) - amt
        if sub:
            balances[names[2]] = balances.get(names[2], 0) + sub
            balances[names[3]] = balances.get(names[3], 0) - sub
        return b, amt, sub

    def _servicing_names(self, bank_id: str) -> tuple[str, ...]:
        names = self._servicing_accounts.get(bank_id)
        if names is None:
            names = self._servicing_accounts[bank_id] = tuple(account(k, bank_id) for k in SERVICING_ACCOUNTS)
        return names

    def _recovery(self, ev: Event, pid: str) -> Posting | None:
        loan, amt = self._principal_down(ev, "recovery")
        b = loan.bank_id
        legs = [Leg(account("bank_funding", b), amt, 0), Leg(account("loan_principal", b), 0, amt)]
        # after a payout, recoveries flow back: the government's share, up to what it paid
        back = min(share(amt, self.cfg.government_share_bp), loan.paid_fen - loan.returned_fen)
        loan.returned_fen += back
        legs += [Leg(account("bank_compensation", b), back, 0), Leg(account("gov_compensation", b), 0, back)]
        return self._post(ev, pid, legs, f"recovery {amt}; {back} returned to the government" if back else "")

    def _write_off(self, ev: Event, pid: str) -> Posting | None:
        loan, amt = self._principal_down(ev, "write-off")
        loan.written_off_fen += amt
        b = loan.bank_id
        return self._post(ev, pid, [Leg(account("written_off", b), amt, 0), Leg(account("loan_principal", b), 0, amt)])

    def _non_performing(self, ev: Event, pid: str) -> None:
        loan = self.loans[ev.loan_id]
        if loan.npl_on is None:
            loan.npl_on = ev.effective_date
            loan.claim_deadline = self.calendar.add_working_days(ev.effective_date, self.cfg.claim_window_working_days)
            year = (loan.bank_id, loan.disbursed_year)
            self.npl_by_year[year] = self.npl_by_year.get(year, 0) + loan.disbursed_fen
        return None

    def _claim(self, ev: Event, pid: str) -> tuple[Posting | None, ClaimDecision]:
        loan = self.loans[ev.loan_id]
        unrecovered = loan.outstanding_fen + loan.written_off_fen  # written off is lost, not recovered
        claimed = share(unrecovered, self.cfg.government_share_bp)

        def decision(status: str, paid: int = 0, posting: str = "") -> ClaimDecision:
            return ClaimDecision(ev.loan_id, loan.bank_id, loan.npl_on, loan.claim_deadline, ev.effective_date, status,
                                 unrecovered, claimed, paid, posting)

        if loan.npl_on is None:
            return None, decision("refused_not_non_performing")
        if loan.claimed:
            return None, decision("refused_duplicate")
        if ev.effective_date > loan.claim_deadline:
            return None, decision("refused_late")
        loan.claimed = True
        paid = min(claimed, self.quota_available(loan.bank_id))
        if paid == 0:
            return None, decision("no_quota")
        loan.paid_fen += paid
        b = loan.bank_id
        posting = self._post(ev, pid, [
            Leg(account("quota_available", b), paid, 0), Leg(account("quota_used", b), 0, paid),
            Leg(account("gov_compensation", b), paid, 0), Leg(account("bank_compensation", b), 0, paid)],
            f"claim on {unrecovered} unrecovered: {claimed} claimed, {paid} paid, {unrecovered - paid} borne by the bank")
        return posting, decision("paid", paid, pid)

    def _reward(self, ev: Event, pid: str) -> Posting | None:
        """A year's performance reward: a tier of the year's lending by the share that became non-performing."""
        year = int(ev.key)
        lent = self.lending_by_year.get((ev.bank_id, year), 0)
        if not lent:
            return None
        npl_bp = self.npl_by_year.get((ev.bank_id, year), 0) * 10_000 // lent
        tier = next((t for t in self.cfg.reward_tiers if npl_bp <= t.max_npl_bp), None)
        amt = share(lent, tier.reward_bp) if tier else 0
        return self._post(ev, pid, [Leg(account("gov_rewards", ev.bank_id), amt, 0),
                                    Leg(account("bank_rewards", ev.bank_id), 0, amt)],
                          f"{year}: lending {lent}, non-performing {npl_bp} bp, reward {amt}")
