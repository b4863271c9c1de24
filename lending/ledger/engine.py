"""The pool's rules as double-entry postings, in integer fen.

`Pool` holds the account balances, each loan's state and the claims waiting for quota; `apply(event)`
turns one business event into its postings (none, one, or a reversal and its corrected posting) and
the payouts it releases, and updates the state. It is pure Python over plain data, so the same engine
serves the nightly run, a full rebuild and the property tests. Posting ids are derived from the
business event: applying an event twice is a duplicate and changes nothing; the same event with other
amounts is a correction: a reversal of the posting in force and the corrected posting, both with new
ids derived from the original id and the correction, never an edit.

The programme's rules (config/pool.yaml; sources in the README's pool section):
- a loan counts for the programme up to the loan cap in force on its disbursement date (3,000,000 RMB;
  10,000,000 RMB for a firm holding 专精特新 status on that date, from 2023-01-01). A loan above it is
  put on the exception list and only its programme share enters the pool: the accrual is on the capped
  amount, and its principal (which stays on the ledger whole, so the ledger reconciles with the loan
  book) counts as programme balance, for the 4 % cap and for claims, pro rata: outstanding x cap /
  disbursed, rounded down. Principal above the cap is not programme balance.
- 2 % of the programme amount accrues to the bank's quota, up to 4 % of its programme balance.
- a claim lodged on a non-performing loan is due within 10 working days of its lodging (the pool's
  promise of payout speed). It owes 80 % of the loan's unrecovered programme principal less what the
  government already paid net of recoveries returned; it is paid at once from the available quota
  (min(quota, 4 % of the programme balance)); what the quota cannot cover waits, and is paid when quota
  frees (a new accrual), claims in order of lodging per bank (ties by loan id), the first waiting claim taking whatever
  is available (partial payouts). Each payout is its own posting, dated the day it is made; the claim
  records when it was lodged, when it was due and each payout, on time or late.

Accounts, per bank (normal side in brackets):
  loan_principal [D] / bank_funding [C]     principal outstanding (whole loans), and the bank's money in it
  quota_accrued [D] / quota_available [C]   quota granted by the government / quota the bank may draw
  quota_used [C]                            quota drawn by compensation payouts
  gov_compensation [D] / bank_compensation [C]   compensation paid by the government, net of recoveries returned
  written_off [D]                           principal written off
  gov_rewards [D] / bank_rewards [C]        annual performance rewards
  gov_interest_subsidy [D] / bank_interest_subsidy [C]   the 2-point interest subsidy (with each month's servicing)
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from lending.calendar import WorkingDays
from lending.ledger.config import PoolConfig, share

NORMAL_SIDE = {
    "loan_principal": "D", "bank_funding": "C", "quota_accrued": "D", "quota_available": "C", "quota_used": "C",
    "gov_compensation": "D", "bank_compensation": "C", "written_off": "D", "gov_rewards": "D", "bank_rewards": "C",
    "gov_interest_subsidy": "D", "bank_interest_subsidy": "C",
}
# a servicing posting's legs, in order: principal repaid (debit, credit), then the subsidy (debit, credit)
SERVICING_ACCOUNTS = ("bank_funding", "loan_principal", "gov_interest_subsidy", "bank_interest_subsidy")
EVENT_ORDER = {"disbursement": 0, "servicing": 1, "non_performing": 3, "claim": 4,
               "recovery": 5, "write_off": 6, "reward": 7}
CORRECTABLE = ("disbursement", "servicing", "recovery", "write_off")  # the events that carry amounts


class LedgerError(RuntimeError):
    """An event contradicts the ledger (unknown loan, a correction it cannot take, ...)."""


class Event(NamedTuple):
    type: str
    effective_date: date  # when it happened
    business_date: date   # when the platform learned it: the date every statement figure counts it on
    bank_id: str
    loan_id: str = ""
    amount_fen: int = 0
    key: str = ""         # what makes the event unique besides type and loan (a period, an event id, a year)
    extra_fen: int = 0    # servicing: the month's interest subsidy (amount_fen is the principal repaid);
                          # disbursement: 1 if the firm held 专精特新 status on the disbursement date, else 0

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
    claim_id: str = ""      # the claim lodged on it ('' = none yet)
    paid_fen: int = 0       # compensation paid by the government on this loan
    returned_fen: int = 0   # of which returned from recoveries
    eligible_fen: int = 0   # the programme share of the disbursement: min(disbursed, the loan cap in force)

    def programme(self, fen: int) -> int:
        """The programme share of an amount of this loan's principal (pro rata above the cap, rounded down)."""
        return fen if self.eligible_fen >= self.disbursed_fen else fen * self.eligible_fen // self.disbursed_fen


@dataclass
class Claim:
    claim_id: str           # the posting id of the claim event
    loan_id: str
    bank_id: str
    npl_on: date | None
    lodged_on: date
    due_on: date | None     # lodged + the payout window in working days (None for a refused claim)
    business_date: date
    status: str             # waiting, paid, settled (recoveries covered it), refused_not_non_performing, refused_duplicate
    unrecovered_fen: int    # the loan's unrecovered programme principal when lodged
    claimed_fen: int        # the government's share of it
    paid_fen: int = 0
    payouts: int = 0
    last_paid_on: date | None = None


class Payout(NamedTuple):
    posting_id: str
    claim_id: str
    n: int                  # the claim's n-th payout
    loan_id: str
    bank_id: str
    lodged_on: date
    due_on: date
    paid_on: date
    business_date: date
    amount_fen: int
    on_time: bool


class OverCap(NamedTuple):
    posting_id: str
    bank_id: str
    loan_id: str
    disbursed_on: date
    business_date: date
    amount_fen: int
    cap_fen: int
    reason: str


class Applied(NamedTuple):
    posting: Posting | None = None           # the event's own posting (for a correction: the corrected one)
    claim: Claim | None = None               # the claim an event lodged
    duplicate: bool = False
    postings: tuple[Posting, ...] = ()       # every posting, in order: a reversal, the event's, payouts released
    payouts: tuple[Payout, ...] = ()
    over_cap: OverCap | None = None


def account(kind: str, bank_id: str) -> str:
    return f"{kind}:{bank_id}"


def posting_id(event: Event) -> str:
    raw = f"{event.type}|{event.bank_id}|{event.loan_id}|{event.key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def correction_id(original: str, n: int, amounts: tuple[int, int]) -> str:
    """The id of an event's n-th corrected posting (n = 0: the original)."""
    return original if n == 0 else hashlib.sha256(f"{original}|correction {n}|{amounts}".encode()).hexdigest()[:24]


def reversal_id(reversed_id: str) -> str:
    return hashlib.sha256(f"reversal|{reversed_id}".encode()).hexdigest()[:24]


def payout_id(claim_id: str, n: int) -> str:
    return hashlib.sha256(f"payout|{claim_id}|{n}".encode()).hexdigest()[:24]


@dataclass
class Pool:
    cfg: PoolConfig
    calendar: WorkingDays
    balances: dict[str, int] = field(default_factory=dict)  # debit minus credit, per account
    loans: dict[str, LoanState] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # posting id of every event applied -> amounts
    corrections: dict[str, int] = field(default_factory=dict)  # event id -> corrections applied (absent: none)
    lending_by_year: dict[tuple[str, int], int] = field(default_factory=dict)  # programme lending
    npl_by_year: dict[tuple[str, int], int] = field(default_factory=dict)  # by disbursement year
    claims: dict[str, Claim] = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)  # per bank, claim ids in order of lodging
    over_cap: dict[str, set[str]] = field(default_factory=dict)  # per bank, loans above the cap
    changed_claims: set[str] = field(default_factory=set)  # claims lodged, paid or settled since the pool was loaded
    # the legs of an earlier posting (a correction reverses them); the store reads them from its table
    legs_of: Callable[[str], tuple[Leg, ...]] | None = None

    def __post_init__(self) -> None:
        self._handlers = {t: getattr(self, f"_{t}") for t in EVENT_ORDER}
        self._servicing_accounts: dict[str, tuple[str, ...]] = {}
        self._posted: dict[str, tuple[Leg, ...]] = {}  # this pool's postings other than set-wise servicing

    # -- balances ---------------------------------------------------------------------------
    def balance(self, kind: str, bank_id: str) -> int:
        """The account's balance on its normal side."""
        b = self.balances.get(account(kind, bank_id), 0)
        return b if NORMAL_SIDE[kind] == "D" else -b

    def programme_balance(self, bank_id: str) -> int:
        """The bank's outstanding programme balance: principal outstanding less what lies above the loan cap."""
        above = 0
        for lid in self.over_cap.get(bank_id, ()):
            loan = self.loans[lid]
            above += loan.outstanding_fen - loan.programme(loan.outstanding_fen)
        return self.balance("loan_principal", bank_id) - above

    def quota_available(self, bank_id: str) -> int:
        """What a claim may draw: min(quota balance, cap x programme balance)."""
        return max(0, min(self.balance("quota_available", bank_id),
                          share(self.programme_balance(bank_id), self.cfg.cap_bp)))

    # -- events -----------------------------------------------------------------------------
    def apply(self, ev: Event, pid: str | None = None) -> Applied:
        """Apply one event; `pid` is its posting id when the caller has computed it already."""
        pid = pid or posting_id(ev)
        if pid in self.seen:  # applied before: nothing changes, unless it now says otherwise
            if self.seen[pid] == (ev.amount_fen, ev.extra_fen):
                return Applied(duplicate=True)
            return self._correct(ev, pid)
        handler = self._handlers.get(ev.type)
        if handler is None:
            raise LedgerError(f"unknown event type {ev.type!r}")
        if ev.type != "disbursement" and ev.type != "reward":
            self._loan(ev)
        elif ev.amount_fen < 0:
            raise LedgerError(f"{ev.type} {ev.loan_id or ev.bank_id}: negative amount {ev.amount_fen}")
        out = handler(ev, pid)
        self.seen[pid] = (ev.amount_fen, ev.extra_fen)
        return out if type(out) is Applied else Applied(out, postings=(out,) if out else ())

    def _check_duplicate(self, ev: Event, pid: str) -> None:
        if self.seen[pid] != (ev.amount_fen, ev.extra_fen):
            raise LedgerError(f"{ev.type} {ev.loan_id or ev.bank_id} {ev.key}: posting {pid} exists with amounts "
                              f"{self.seen[pid]} fen, now {(ev.amount_fen, ev.extra_fen)} fen: a correction goes "
                              "through Pool.apply")

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
        legs = self._posted[pid] = tuple(kept)
        return Posting(pid, ev.type, ev.bank_id, ev.loan_id, ev.effective_date, ev.business_date, legs,
                       memo)

    def _disbursement(self, ev: Event, pid: str) -> Applied:
        if ev.loan_id in self.loans:
            raise LedgerError(f"loan {ev.loan_id} disbursed twice with different posting ids")
        self.loans[ev.loan_id] = LoanState(ev.bank_id, ev.effective_date.year, 0)
        return self._disburse(ev, pid, self.loans[ev.loan_id])

    def _disburse(self, ev: Event, pid: str, loan: LoanState) -> Applied:
        """The disbursement's principal on a loan with none (new, or its earlier posting reversed): the loan
        cap in force decides its programme share, which alone accrues quota."""
        b, amount = loan.bank_id, ev.amount_fen
        cap = self.cfg.loan_cap(ev.effective_date, bool(ev.extra_fen))
        loan.disbursed_fen, loan.eligible_fen = amount, min(amount, cap)
        loan.outstanding_fen += amount
        year = (b, loan.disbursed_year)
        self.lending_by_year[year] = self.lending_by_year.get(year, 0) + loan.eligible_fen
        if loan.npl_on is not None:
            self.npl_by_year[year] = self.npl_by_year.get(year, 0) + loan.eligible_fen
        flagged = None
        if amount > cap:
            self.over_cap.setdefault(b, set()).add(ev.loan_id)
            kind = "专精特新" if cap == self.cfg.zjtx_loan_cap_fen and ev.extra_fen else "standard"
            flagged = OverCap(pid, b, ev.loan_id, ev.effective_date, ev.business_date, amount, cap,
                              f"disbursed {amount / 100:,.2f} RMB, above the {kind} loan cap of {cap / 100:,.2f} RMB "
                              f"in force on {ev.effective_date}: quota accrues on, and claims cover, "
                              f"{cap / 100:,.2f} RMB of it")
        else:
            self.over_cap.get(b, set()).discard(ev.loan_id)
        legs = [Leg(account("loan_principal", b), amount, 0), Leg(account("bank_funding", b), 0, amount)]
        # the accrual is checked against the cap as it posts: the quota never exceeds 4 % of the
        # programme balance outstanding after this loan (its principal is not posted yet)
        due = share(loan.eligible_fen, self.cfg.accrual_bp)
        headroom = max(0, share(self.programme_balance(b) + amount, self.cfg.cap_bp) - self.balance("quota_available", b))
        accrued = min(due, headroom)
        legs += [Leg(account("quota_accrued", b), accrued, 0), Leg(account("quota_available", b), 0, accrued)]
        memo = f"accrual {accrued} of {due} due" + (f"; {due - accrued} above the cap" if accrued < due else "")
        if flagged:
            memo += f"; loan above the {cap} fen loan cap: {amount - cap} fen outside the programme"
        posting = self._post(ev, pid, legs, memo)
        postings, payouts = self._pay_waiting(b, ev)  # a new accrual may free quota for waiting claims
        return Applied(posting, postings=((posting,) if posting else ()) + postings, payouts=payouts,
                       over_cap=flagged)

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
        legs = self._servicing_legs(b, amt, sub)
        return Posting(pid, ev.type, b, ev.loan_id, ev.effective_date, ev.business_date, legs, "") if legs else None

    def _servicing_legs(self, bank_id: str, amt: int, sub: int) -> tuple[Leg, ...]:
        names = self._servicing_names(bank_id)
        return ((Leg(names[0], amt, 0), Leg(names[1], 0, amt)) if amt else ()) + (
            (Leg(names[2], sub, 0), Leg(names[3], 0, sub)) if sub else ())

    def service(self, ev: Event, pid: str) -> int | None:
        """The servicing event without building objects, for the nightly bulk (a loan a month): None
        for a duplicate, else the number of legs posted. The store writes those legs set-wise; they
        are the legs `_servicing` would build. A correction goes through `apply`."""
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
        # after a payout, recoveries flow back: the government's share of the programme part, up to what it paid
        back = min(share(loan.programme(amt), self.cfg.government_share_bp), loan.paid_fen - loan.returned_fen)
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
            year = (loan.bank_id, loan.disbursed_year)
            self.npl_by_year[year] = self.npl_by_year.get(year, 0) + loan.eligible_fen
        return None

    # -- claims -----------------------------------------------------------------------------
    def owed(self, loan: LoanState) -> int:
        """What the government still owes on a loan's claim: its share of the unrecovered programme
        principal (written off is lost, not recovered), less what it paid net of recoveries returned."""
        unrecovered = loan.programme(loan.outstanding_fen + loan.written_off_fen)
        return max(0, share(unrecovered, self.cfg.government_share_bp) - (loan.paid_fen - loan.returned_fen))

    def _claim(self, ev: Event, pid: str) -> Applied:
        loan = self.loans[ev.loan_id]
        unrecovered = loan.programme(loan.outstanding_fen + loan.written_off_fen)
        claim = Claim(pid, ev.loan_id, loan.bank_id, loan.npl_on, ev.effective_date, None, ev.business_date, "",
                      unrecovered, share(unrecovered, self.cfg.government_share_bp))
        if loan.npl_on is None:
            claim.status = "refused_not_non_performing"
        elif loan.claim_id:
            claim.status = "refused_duplicate"
        else:  # complete: due within the payout window, paid now or when quota frees
            claim.status = "waiting"
            claim.due_on = self.calendar.add_working_days(ev.effective_date, self.cfg.payout_within_working_days)
            loan.claim_id = pid
        self.claims[pid] = claim
        self.changed_claims.add(pid)
        if claim.status == "waiting":  # in order of lodging (ties by loan), however the nights split the events
            bisect.insort(self.waiting.setdefault(loan.bank_id, []), pid, key=self._lodging)
        postings, payouts = self._pay_waiting(loan.bank_id, ev)
        return Applied(None, claim, postings=postings, payouts=payouts)

    def _lodging(self, claim_id: str) -> tuple[date, str, str]:
        claim = self.claims[claim_id]
        return claim.lodged_on, claim.loan_id, claim_id

    def _pay_waiting(self, bank_id: str, ev: Event) -> tuple[tuple[Posting, ...], tuple[Payout, ...]]:
        """Pay the bank's waiting claims in order of lodging from the quota available now; the first
        takes what there is, the rest wait for the next accrual."""
        queue = self.waiting.get(bank_id)
        postings: list[Posting] = []
        payouts: list[Payout] = []
        while queue:
            claim = self.claims[queue[0]]
            loan = self.loans[claim.loan_id]
            owed = self.owed(loan)
            if owed == 0:  # paid in full, or recoveries covered what remained
                claim.status = "paid" if claim.paid_fen else "settled"
                self.changed_claims.add(claim.claim_id)
                queue.pop(0)
                continue
            amount = min(owed, self.quota_available(bank_id))
            if amount == 0:
                break
            self.changed_claims.add(claim.claim_id)
            claim.payouts += 1
            claim.paid_fen += amount
            claim.last_paid_on = ev.effective_date
            loan.paid_fen += amount
            pid = payout_id(claim.claim_id, claim.payouts)
            # counted on the later of the two business dates: the claim's and the one that freed the quota
            on = Event("claim", ev.effective_date, max(ev.business_date, claim.business_date), bank_id, claim.loan_id)
            b = bank_id
            postings.append(self._post(on, pid, [
                Leg(account("quota_available", b), amount, 0), Leg(account("quota_used", b), 0, amount),
                Leg(account("gov_compensation", b), amount, 0), Leg(account("bank_compensation", b), 0, amount)],
                f"claim {claim.claim_id} lodged {claim.lodged_on}, due {claim.due_on}: payout {claim.payouts} of "
                f"{amount}; {owed - amount} still owed"))
            payouts.append(Payout(pid, claim.claim_id, claim.payouts, claim.loan_id, b, claim.lodged_on, claim.due_on,
                                  ev.effective_date, on.business_date, amount, ev.effective_date <= claim.due_on))
            if amount == owed:
                claim.status = "paid"
                queue.pop(0)
        return tuple(postings), tuple(payouts)

    def _reward(self, ev: Event, pid: str) -> Posting | None:
        """A year's performance reward: a tier of the year's programme lending by the share that became
        non-performing (compared exactly: 1.0001 % is above a 1 % bound)."""
        year = int(ev.key)
        lent = self.lending_by_year.get((ev.bank_id, year), 0)
        if not lent:
            return None
        npl = self.npl_by_year.get((ev.bank_id, year), 0)
        tier = next((t for t in self.cfg.reward_tiers if npl * 10_000 <= t.max_npl_bp * lent), None)
        amt = share(lent, tier.reward_bp) if tier else 0
        return self._post(ev, pid, [Leg(account("gov_rewards", ev.bank_id), amt, 0),
                                    Leg(account("bank_rewards", ev.bank_id), 0, amt)],
                          f"{year}: lending {lent}, non-performing {npl * 10_000 // lent} bp (rounded down), reward {amt}")

    # -- corrections ------------------------------------------------------------------------
    def _correct(self, ev: Event, pid: str) -> Applied:
        """An event seen before with other amounts: reverse the posting in force and post the corrected
        one, each under a new id derived from the original id and the correction."""
        if ev.type not in CORRECTABLE:
            raise LedgerError(f"{ev.type} {ev.loan_id or ev.bank_id} {ev.key}: event {pid} changed its amounts from "
                              f"{self.seen[pid]} to {(ev.amount_fen, ev.extra_fen)}; a {ev.type} carries no amount "
                              "to correct")
        loan = self._loan(ev)
        old, n = self.seen[pid], self.corrections.get(pid, 0)
        # the loan's principal after the correction must not go below zero: checked before anything changes
        delta = ev.amount_fen - old[0]
        after = loan.outstanding_fen + (delta if ev.type == "disbursement" else -delta)
        if after < 0:
            raise LedgerError(f"correction of {ev.type} {ev.loan_id} {ev.key} from {old[0]} to {ev.amount_fen} fen "
                              f"would leave the loan's outstanding at {after} fen")
        current = correction_id(pid, n, old)
        legs = (self._servicing_legs(loan.bank_id, *old) if ev.type == "servicing"
                else self._posted.get(current) or (self.legs_of(current) if self.legs_of else ()))
        if not legs and old != (0, 0):  # a reversal of nothing would leave balances and the loan's state apart
            raise LedgerError(f"correction of {ev.type} {ev.loan_id} {ev.key}: the legs of posting {current} cannot "
                              "be found, so it cannot be reversed")
        reversal = self._post(ev, reversal_id(current), [Leg(a, c, d) for a, d, c in legs],
                              f"reversal of {current}: {ev.type} corrected from {old} to {(ev.amount_fen, ev.extra_fen)}")
        if ev.type == "disbursement":  # undo the loan's principal and its programme lending
            year = (loan.bank_id, loan.disbursed_year)
            self.lending_by_year[year] -= loan.eligible_fen
            if loan.npl_on is not None:
                self.npl_by_year[year] -= loan.eligible_fen
            loan.outstanding_fen -= old[0]
        else:
            loan.outstanding_fen += old[0]
            if ev.type == "write_off":
                loan.written_off_fen -= old[0]
            elif ev.type == "recovery":
                loan.returned_fen -= sum(c for a, _, c in legs if a.startswith("gov_compensation:"))
        n += 1
        self.corrections[pid] = n
        self.seen[pid] = (ev.amount_fen, ev.extra_fen)
        new = correction_id(pid, n, self.seen[pid])
        if ev.type == "disbursement":
            out = self._disburse(ev, new, loan)
        else:
            out = Applied(self._handlers[ev.type](ev, new))
            out = out._replace(postings=(out.posting,) if out.posting else ())
        return out._replace(postings=((reversal,) if reversal else ()) + out.postings)
