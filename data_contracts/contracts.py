"""The contract of every source the departments deliver.

A contract names the columns (type, nullability, range, allowed values), the natural key that
makes a row unique in staging, the column holding the firm's USCC, and how the department delivers
files (format, encoding, cadence, day of the month). Rule names used by the quarantine are the
fault classes the simulator injects, so tests can compare the two one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["uscc", "text", "period", "date", "int", "money", "float", "bool"]

# Upper bound for any money column: 100 billion RMB in fen. A single SME filing above it is absurd.
MAX_MONEY_FEN = 10_000_000_000_000

SQL_TYPES: dict[str, str] = {
    "uscc": "VARCHAR", "text": "VARCHAR", "period": "VARCHAR", "date": "DATE", "int": "BIGINT", "money": "BIGINT",
    "float": "DOUBLE", "bool": "BOOLEAN",
}

CLASSIFICATIONS = ("正常", "关注", "次级", "可疑", "损失")
CREDIT_GRADES = ("A", "B", "M", "C", "D")
FIRM_STATUSES = ("存续", "吊销", "注销", "迁出")
LOAN_KINDS = ("credit", "first_loan", "renewal", "ip_pledge", "receivables")  # lending.products.KINDS
# GB/T 4754-2017: the divisions (two digits) of each section, as the market register records a firm's industry
SECTION_DIVISIONS: dict[str, tuple[int, int]] = {
    "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52), "G": (53, 60),
    "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72), "M": (73, 75), "N": (76, 79),
    "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90), "S": (91, 96), "T": (97, 97),
}
DIVISIONS = tuple(f"{d:02d}" for lo, hi in SECTION_DIVISIONS.values() for d in range(lo, hi + 1))


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    personal: bool = False  # personal data of a natural person: masked in anything a bank sees

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]

    @property
    def lower_bound(self) -> float | None:
        return 0 if self.type == "money" and self.min is None else self.min

    @property
    def upper_bound(self) -> float | None:
        return MAX_MONEY_FEN if self.type == "money" and self.max is None else self.max


@dataclass(frozen=True)
class Contract:
    source: str
    department: str
    department_zh: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    file_format: Literal["csv", "parquet"] = "csv"
    encoding: Literal["utf-8", "gbk"] = "utf-8"
    cadence: Literal["monthly", "annual", "once"] = "monthly"
    delivery_day: int = 10
    firm_column: str | None = "uscc"
    # Columns that must not lie after the delivery (a filing for next month is impossible).
    not_after_delivery: tuple[str, ...] = field(default=())
    # (earlier, later): dates that cannot come in the other order when both are given (`date_order`)
    ordered: tuple[tuple[str, str], ...] = field(default=())
    # (column, column): two USCCs that must name different firms (`self_reference`: a firm cannot
    # confirm what it owes to itself)
    distinct: tuple[tuple[str, str], ...] = field(default=())
    # A file with no data rows is rejected (`file_empty`) unless the source lists events, of which a
    # month may have none (no new penalty, no loan repaid); a periodic filing of every firm is never empty.
    allow_empty: bool = False
    # Control characters (C0 but tab/LF/CR, DEL, C1) in a cell: the row is quarantined
    # (`control_character`), or, where the department cannot avoid them, stripped and counted.
    control_characters: Literal["quarantine", "strip"] = "quarantine"
    description: str = ""

    def __post_init__(self) -> None:
        reserved = [c.name for c in self.columns if c.name.startswith("_")]
        if reserved:  # ingestion's own columns (_f, _row, _ctrl, _file, _partition, ...) would shadow them
            raise ValueError(f"contract {self.source}: column(s) {', '.join(reserved)} start with '_', which "
                             "names ingestion's own columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.source}: no column {name!r}")

    @property
    def table(self) -> str:
        return f"staging.{self.source}"


def _c(name: str, type_: ColumnType, **kw) -> Column:
    return Column(name, type_, **kw)


UID = _c("uscc", "uscc")


def _listing(source: str, folder: str, department: str, id_column: str, delivery_day: int, description: str,
             extra: tuple[Column, ...] = (), **kw) -> Contract:
    """A register that lists firms and later removes them: an entry's id, the firm, any `extra`
    columns, the day listed and (once removed) the day removed; a month may bring no entry."""
    return Contract(source, folder, department,
                    (_c(id_column, "text"), UID, *extra, _c("listed_on", "date"), _c("removed_on", "date", nullable=True)),
                    key=(id_column,), allow_empty=True, delivery_day=delivery_day,
                    not_after_delivery=("listed_on", "removed_on"), description=description, **kw)
PERIOD = _c("period", "period")

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "registry", "market", "市场监管局",
        (
            UID,
            _c("name", "text"),
            _c("district_code", "text"),
            _c("industry", "text", allowed=tuple("ABCDEFGHIJKLMNOPQRST")),
            _c("industry_division", "text", allowed=DIVISIONS),
            _c("founded_on", "date"),
            _c("registered_capital_fen", "money"),
            _c("size_class", "text", allowed=("大型", "中型", "小型", "微型")),
            _c("status", "text", allowed=FIRM_STATUSES),
            _c("status_date", "date"),
            _c("legal_rep_name", "text", personal=True),
            _c("legal_rep_id", "text", personal=True),
        ),
        key=("uscc",), allow_empty=True, encoding="gbk", delivery_day=3, not_after_delivery=("founded_on", "status_date"),
        description="Market registration: new firms and status changes of the month (the first file is the full register); "
                    "industry as the GB/T 4754-2017 section and division.",
    ),
    Contract(
        "tax_monthly", "tax", "税务局",
        (UID, PERIOD, _c("revenue_fen", "money"), _c("vat_fen", "money"), _c("income_tax_fen", "money"),
         _c("tax_arrears_fen", "money")),
        key=("uscc", "period"), file_format="parquet", delivery_day=15, not_after_delivery=("period",),
        description="Monthly VAT and income-tax filings: taxable revenue, tax paid, arrears.",
    ),
    Contract(
        "tax_annual", "tax", "税务局",
        (UID, _c("fiscal_year", "int", min=1990, max=2100), _c("rd_expense_fen", "money"),
         _c("rd_super_deduction_fen", "money"), _c("total_assets_fen", "money"),
         _c("total_liabilities_fen", "money"), _c("credit_grade", "text", allowed=CREDIT_GRADES)),
        key=("uscc", "fiscal_year"), cadence="annual", delivery_day=10,
        description="Annual settlement (汇算清缴): R&D expense and super-deduction, balance sheet totals, tax credit grade.",
    ),
    Contract(
        "social_insurance", "social", "人力社保局",
        (UID, PERIOD, _c("insured_headcount", "int", min=0, max=1_000_000),
         _c("technical_staff", "int", min=0, max=1_000_000), _c("contribution_fen", "money"),
         _c("arrears_months", "int", min=0, max=600)),
        key=("uscc", "period"), delivery_day=12, not_after_delivery=("period",),
        description="Monthly social insurance: insured headcount, technical staff, contributions, months in arrears.",
    ),
    Contract(
        "housing_fund", "housing_fund", "住房公积金中心",
        (UID, PERIOD, _c("depositors", "int", min=0, max=1_000_000), _c("contribution_fen", "money"),
         _c("arrears_months", "int", min=0, max=600)),
        key=("uscc", "period"), delivery_day=10, not_after_delivery=("period",),
        description="Monthly housing provident fund deposits.",
    ),
    Contract(
        "power", "power", "国网重庆电力",
        (UID, PERIOD, _c("kwh", "float", min=0, max=1e10), _c("arrears_fen", "money")),
        key=("uscc", "period"), file_format="parquet", delivery_day=8, not_after_delivery=("period",),
        description="Monthly electricity consumption and arrears.",
    ),
    Contract(
        "customs", "customs", "重庆海关",
        (UID, PERIOD, _c("export_fen", "money"), _c("import_fen", "money")),
        key=("uscc", "period"), delivery_day=20, not_after_delivery=("period",),
        description="Monthly import and export declarations (trading firms only).",
    ),
    Contract(
        "patents", "ip", "知识产权局",
        (_c("patent_no", "text"), UID, _c("patent_type", "text", allowed=("invention", "utility", "design")),
         _c("applied_on", "date"), _c("granted_on", "date"), _c("status", "text", allowed=("valid", "lapsed", "invalidated"))),
        key=("patent_no",), allow_empty=True, delivery_day=5, not_after_delivery=("applied_on", "granted_on"),
        description="Patents granted or changing status in the month.",
    ),
    Contract(
        "trademarks", "ip", "知识产权局",
        (_c("reg_no", "text"), UID, _c("registered_on", "date"), _c("expires_on", "date"),
         _c("well_known", "bool")),
        key=("reg_no",), allow_empty=True, delivery_day=5, not_after_delivery=("registered_on",),
        description="Registered trademarks (驰名商标 flagged).",
    ),
    Contract(
        "software_copyrights", "ip", "版权局",
        (_c("reg_no", "text"), UID, _c("registered_on", "date")),
        key=("reg_no",), allow_empty=True, delivery_day=5, not_after_delivery=("registered_on",),
        description="Software copyright registrations.",
    ),
    Contract(
        "real_estate", "real_estate", "不动产登记中心",
        (_c("cert_no", "text"), UID, _c("acquired_on", "date"), _c("disposed_on", "date", nullable=True),
         _c("floor_area_m2", "float", min=0, max=1e7), _c("value_fen", "money")),
        key=("cert_no",), allow_empty=True, delivery_day=10, not_after_delivery=("acquired_on", "disposed_on"),
        description="Real estate held by firms: acquisitions and disposals.",
    ),
    Contract(
        "subsidies", "finance", "财政局",
        (_c("award_id", "text"), UID, _c("awarded_on", "date"),
         _c("award_type", "text", allowed=("subsidy", "honour")), _c("award_name", "text"),
         _c("amount_fen", "money")),
        key=("award_id",), allow_empty=True, delivery_day=25, not_after_delivery=("awarded_on",),
        description="Special-fund subsidies and honours.",
    ),
    Contract(
        "penalties", "market", "市场监管局",
        (_c("decision_no", "text"), UID, _c("decided_on", "date"),
         _c("severity", "text", allowed=("general", "major_safety", "major_environment")),
         _c("reason", "text"), _c("amount_fen", "money")),
        key=("decision_no",), allow_empty=True, encoding="gbk", delivery_day=3, not_after_delivery=("decided_on",),
        description="Administrative penalty decisions.",
    ),
    Contract(
        "qualifications", "economy", "经济和信息化委员会",
        (UID, _c("qualification", "text", allowed=("high_tech", "zhuanjingtexin", "tech_sme")),
         _c("granted_on", "date"), _c("expires_on", "date")),
        key=("uscc", "qualification", "granted_on"), allow_empty=True, delivery_day=20, not_after_delivery=("granted_on",),
        description="高新技术企业 / 专精特新 / 科技型中小企业 recognitions.",
    ),
    Contract(
        "receivables", "receivables", "中征应收账款融资服务平台",
        (_c("receivable_id", "text"), UID, _c("core_uscc", "uscc"), _c("core_name", "text"), _c("issued_on", "date"),
         _c("due_on", "date"), _c("amount_fen", "money", min=1), _c("confirmed_on", "date", nullable=True),
         _c("paid_on", "date", nullable=True)),
        key=("receivable_id",), allow_empty=True, delivery_day=18,
        not_after_delivery=("issued_on", "confirmed_on", "paid_on"),
        ordered=(("issued_on", "confirmed_on"), ("issued_on", "due_on"), ("issued_on", "paid_on")),
        distinct=(("uscc", "core_uscc"),),
        description="Receivables owed to a firm by a core firm (确权融资): issued, confirmed by the core firm, paid; "
                    "a receivable is delivered again when it is confirmed or paid.",
    ),
    Contract(
        "authorisations", "platform", "商业价值信用平台",
        (UID, _c("granted_on", "date"), _c("expires_on", "date"), _c("revoked_on", "date", nullable=True)),
        key=("uscc", "granted_on"), allow_empty=True, delivery_day=1, not_after_delivery=("granted_on", "revoked_on"),
        description="Firms' data-use authorisations (授权归集): grants and revocations of the month.",
    ),
    _listing("dishonest_debtors", "court", "重庆市高级人民法院", "case_no", 2,
             "失信被执行人: the firm, its legal representative or controller; entries and removals.",
             extra=(_c("subject_type", "text", allowed=("firm", "legal_rep", "controller")),
                    _c("person_id", "text", nullable=True, personal=True))),
    _listing("tax_violations", "tax", "税务局", "case_no", 15, "重大税收违法失信主体: entries and removals."),
    _listing("tax_abnormal", "tax", "税务局", "case_no", 15,
             "非正常户: taxpayers that stopped filing and could not be reached, as the tax bureau lists them; "
             "entries and removals (解除, when the firm files again)."),
    _listing("financing_platforms", "finance", "财政局", "platform_id", 25,
             "地方政府融资平台: the local government financing vehicles on the finance bureau's list; "
             "entries and removals (a platform that exits the list after its transformation)."),
    _listing("market_registers", "market", "市场监管局", "case_no", 3,
             "经营异常名录 and 严重违法失信名单: entries and removals.", encoding="gbk",
             extra=(_c("register", "text", allowed=("abnormal_operation", "serious_illegal")), _c("reason", "text"))),
    Contract(
        "banks", "bank", "合作银行",
        (_c("bank_id", "text"), _c("bank_name", "text")),
        key=("bank_id",), cadence="once", delivery_day=1, firm_column=None,
        description="The programme's partner banks.",
    ),
    Contract(
        "loan_applications", "bank", "合作银行",
        (_c("application_id", "text"), UID, _c("bank_id", "text"), _c("applied_on", "date"),
         _c("requested_fen", "money", min=1), _c("decision", "text", allowed=("approved", "declined", "pending")),
         _c("decided_on", "date", nullable=True)),
        key=("application_id",), allow_empty=True, delivery_day=6, not_after_delivery=("applied_on", "decided_on"),
        description="Loan applications and the banks' decisions.",
    ),
    Contract(
        "loans", "bank", "合作银行",
        (_c("loan_id", "text"), _c("application_id", "text"), UID, _c("bank_id", "text"),
         _c("disbursed_on", "date"), _c("amount_fen", "money", min=1), _c("term_months", "int", min=1, max=120),
         _c("rate_bp", "int", min=0, max=2400), _c("maturity_on", "date"),
         _c("product_kind", "text", allowed=LOAN_KINDS)),
        key=("loan_id",), allow_empty=True, delivery_day=6, not_after_delivery=("disbursed_on",),
        description="Disbursed programme loans, with the kind of product lent under (credit, first loan, renewal, "
                    "IP pledge, receivables).",
    ),
    Contract(
        "loan_status", "bank", "合作银行",
        (_c("loan_id", "text"), PERIOD, _c("principal_repaid_fen", "money"), _c("interest_paid_fen", "money"),
         _c("outstanding_fen", "money"), _c("dpd", "int", min=0, max=10_000),
         _c("classification", "text", allowed=CLASSIFICATIONS)),
        key=("loan_id", "period"), allow_empty=True, delivery_day=6, firm_column=None, not_after_delivery=("period",),
        description="Monthly loan status: repayments, days past due, five-tier classification.",
    ),
    Contract(
        "loan_recoveries", "bank", "合作银行",
        (_c("event_id", "text"), _c("loan_id", "text"), _c("event_date", "date"),
         _c("event_type", "text", allowed=("recovery", "write_off")), _c("amount_fen", "money", min=1)),
        key=("event_id",), allow_empty=True, delivery_day=6, firm_column=None, not_after_delivery=("event_date",),
        description="Recoveries and write-offs on non-performing loans.",
    ),
)

_BY_SOURCE = {c.source: c for c in CONTRACTS}


def contract_for(source: str) -> Contract:
    try:
        return _BY_SOURCE[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(_BY_SOURCE)}") from None
