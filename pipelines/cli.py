"""The `valuecredit` command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from valuecredit.configfile import ConfigError
from valuecredit.sqltext import message_lines

console = Console()
err_console = Console(stderr=True)  # errors never mix with what a script reads from stdout
DEFAULT_LANDING = Path("data/landing")
DEFAULT_DB = Path("data/valuecredit.duckdb")
DEFAULT_REPORTS = Path("build/reports")


def _today() -> date:
    """The latest business date there can be: today here, or in Beijing if it is already tomorrow there."""
    return max(date.today(), datetime.now(ZoneInfo("Asia/Shanghai")).date())


def _date(text: str) -> date:
    """A business date: one that has begun (there is no data for the future, and Dagster no partition)."""
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if d > _today():
        raise argparse.ArgumentTypeError(f"{text} is in the future (today is {_today()}): no business date after today")
    return d


def _uscc(text: str) -> str:
    """A unified social credit code, checked when the command line is read: before any heavy work."""
    from data_contracts.identifiers import validate_uscc

    try:
        return validate_uscc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line on stderr (exit 2), not usage and error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line(exc: BaseException) -> str:
    """An error's message on one line, without the `LINE n:` and caret lines DuckDB adds under it."""
    text = " ".join(message_lines(str(exc))) or "no message"
    return text if isinstance(exc, ValueError | RuntimeError) else f"{type(exc).__name__}: {text}"


def _existing(db: str | Path) -> Path:
    if not Path(db).is_file():
        raise ValueError(f"--db {db}: no such store: run `valuecredit run` first")
    return Path(db)


def _in_force(args: argparse.Namespace, resource: str, given: str | None, attr: str = "path") -> Path:
    """`given` (the command line's) or where the nightly run of this store reads or writes it: its
    environment variable when set, else beside the store (registry, publication) or config/ (the
    operator's files)."""
    if given:
        return Path(given)
    from pipelines.resources import resources

    return Path(getattr(resources(str(args.db))[resource], attr))


def _catalogue(args: argparse.Namespace):
    """The catalogue the store's nights score with (--catalogue, else theirs)."""
    from scoring.catalogue import load_catalogue

    return load_catalogue(_in_force(args, "catalogue", getattr(args, "catalogue", None)))


def _pool(args: argparse.Namespace):
    """The pool parameters the store's nights apply (--pool, else theirs)."""
    from lending.ledger.config import load_pool_config

    return load_pool_config(_in_force(args, "pool_files", getattr(args, "pool", None), "pool"))


@contextmanager
def read_store(db: str | Path):
    """The store, read-only, for a command that reports on what the nightly run wrote; closed after."""
    from valuecredit.store import connect

    con = connect(_existing(db), read_only=True)
    try:
        yield con
    finally:
        con.close()


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulate import SimConfig

    _simulate(SimConfig(firms=args.firms, seed=args.seed, months=args.months, end_period=args.end or "",
                        fault_rate=args.fault_rate, out=Path(args.out)))
    return 0


def _simulate(cfg) -> None:
    from simulate import simulate

    with Progress(TextColumn("simulating {task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(cfg.end_period, total=cfg.months)
        summary = simulate(cfg, progress=lambda p: bar.update(task, advance=1, description=p))
    console.print(f"[green]wrote[/] {summary.files:,} files, {summary.rows:,} rows, {summary.loans:,} loans, "
                  f"{summary.faults:,} injected faults for {summary.firms:,} firms "
                  f"({summary.periods[0]} to {summary.periods[-1]}) to {summary.out} in {summary.seconds:.1f} s")


class RichProgress:
    def __init__(self, bar: Progress, task) -> None:
        self.bar, self.task = bar, task

    def done(self, step: str, detail: str) -> None:
        self.bar.console.print(f"  [cyan]{step:<22}[/] {detail}")
        task = self.bar.tasks[self.task]
        # a first night also trains a model: one step more than the night's assets
        total = max(task.total or 0, task.completed + 1)
        self.bar.update(self.task, advance=1, total=total, description=step)


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.definitions import nightly_assets
    from pipelines.run import run_nightly
    from simulate import SimConfig
    from simulate.landing import add_months
    from valuecredit.store import writer_lock

    business_date = args.date or date.today()
    landing, db = Path(args.landing), Path(args.db)
    if errors := config_errors():  # the files the night would read: refused before anything starts
        more = f"\n(and {len(errors) - 1} more files with problems: `valuecredit config check`)" if len(errors) > 1 else ""
        raise ConfigError(errors[0] + more)
    if not landing.is_dir() and landing != DEFAULT_LANDING:
        # only the default landing zone is simulated when absent: a mistyped --landing is not
        raise ValueError(f"--landing {landing}: no such folder (the departments' deliveries and their manifest.csv)")
    with writer_lock(db):
        if not (landing / "manifest.csv").exists():
            end = add_months(f"{business_date:%Y-%m}", -1)
            console.print(f"[yellow]{landing} is empty:[/] simulating the default universe "
                          f"(20,000 firms, seed 0, 36 months to {end})")
            _simulate(SimConfig(firms=20_000, seed=0, months=36, end_period=end, out=landing))
        console.print(f"nightly run for business date [bold]{business_date}[/] on {db}")
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("starting", total=len(nightly_assets))
            summary = run_nightly(business_date, landing, db, RichProgress(bar, task),
                                  full="asked for on the command line (--full)" if args.full else "")
    _print_summary(summary)
    return 0 if summary.succeeded else 1


def _print_summary(s) -> None:
    t = Table(title=f"tables after {s.business_date}", show_lines=False,
              caption="a table kept by validity range: its rows for the night")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in s.table_rows.items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    if s.quarantined_by_rule:
        q = Table(title="rows quarantined this run, by rule")
        q.add_column("rule")
        q.add_column("rows", justify="right")
        for rule, n in s.quarantined_by_rule.items():
            q.add_row(rule, f"{n:,}")
        console.print(q)
    if s.trained:
        console.print(f"no PD model was registered yet: trained and promoted [bold]{s.trained}[/] "
                      f"({s.model_decision}; retrain with `valuecredit model train`)", soft_wrap=True)
    for step, why in s.errors.items():
        console.print(f"[red]step failed[/] {step}: {why}", soft_wrap=True)
    for asset, why in s.failed_checks.items():
        console.print(f"[red]check failed[/] {asset}: {why}")
    for asset, why in s.warnings.items():
        console.print(f"[yellow]warning[/] {asset}: {why}", soft_wrap=True)
    if s.blocked:
        console.print(f"[red]blocked (not rebuilt, last good version kept):[/] {', '.join(s.blocked)}")
    status = "[green]succeeded[/]" if s.succeeded else "[red]stopped by failed checks[/]"
    console.print(f"run {status} in {s.seconds:.1f} s; outputs in {s.db} "
                  "(schemas staging, features, scores, decisions, ledger, quarantine, meta, and bank_<id> for each bank; "
                  "quarantined rows in quarantine.rows; the banks' files in publish/ beside the store unless VALUECREDIT_PUBLISH says otherwise)")


TRUTH_HELP = ("simulated data only: the simulator's loans.parquet (DIR/_truth/loans.parquet) with the observable PD "
              "per loan, to report the gap to the ceiling; never read unless given")


def _truth_file(path: Path | None) -> Path | None:
    if path is not None and not path.is_file():
        raise ValueError(f"--truth {path}: no such file")
    return path


def cmd_calibrate(args: argparse.Namespace) -> int:
    from valuecredit.store import writer_lock

    cat = _catalogue(args)
    truth = Path(args.truth) if args.truth else None
    # adopting writes the catalogue a run reads at several steps: not while one is running
    with writer_lock(_existing(args.db)) if args.adopt else nullcontext():
        return _calibrate(args, cat, truth)


def _calibrate(args: argparse.Namespace, cat, truth: Path | None) -> int:
    from scoring.calibrate import adopt, calibrate, write_report

    with read_store(args.db) as con:
        report = calibrate(con, cat, args.date or date.today(), _truth_file(truth))
    md, js = write_report(report, Path(args.out))
    console.print(md.read_text(encoding="utf-8"))
    console.print(f"report written to {md} and {js}")
    if args.adopt:
        archived = adopt(report, Path(cat.path))
        console.print(f"[green]adopted:[/] {cat.path} is now version {report.candidate['version']}; "
                      f"version {cat.version} kept as {archived}")
    else:
        console.print("nothing adopted: the catalogue in force is unchanged (add --adopt to adopt the fitted weights)")
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    from lending.ledger.statements import COUNTS, statement
    from reports.vocabulary import load_vocabulary
    from valuecredit.spreadsheet import neutral_frame

    end = args.to or date.today()
    start = getattr(args, "from") or date(end.year, 1, 1)
    cfg = _pool(args)  # the cap the nights apply
    with read_store(args.db) as con:
        frame = statement(con, start, end, args.bank, cfg)
    if args.csv:
        neutral_frame(frame).to_csv(args.csv, index=False, encoding="utf-8-sig")  # amounts in fen; opens in Excel
        console.print(f"every bank's statement (fen) written to {args.csv}")
    row = frame[frame.bank_id == (args.bank or "programme")]
    t = Table(title=f"{args.bank or 'programme'}: risk-compensation pool, business dates {start} to {end}")
    t.add_column("line")
    t.add_column("RMB / count", justify="right")
    words = load_vocabulary()
    for col in frame.columns[1:]:
        v = int(row[col].iloc[0]) if len(row) else 0
        t.add_row(words.name("pool_lines", col, "en"), str(v) if col in COUNTS else f"{v / 100:,.2f}")
    console.print(t)
    return 0


def cmd_exceptions(args: argparse.Namespace) -> int:
    """The loans disbursed above the loan cap in force, with the cap and the reason."""
    from lending.ledger.statements import over_cap_loans

    with read_store(args.db) as con:
        rows = over_cap_loans(con, args.bank)
    t = Table(title=f"{args.bank or 'every bank'}: loans above the loan cap ({len(rows)})")
    for col in ("bank", "loan", "disbursed on", "amount RMB", "cap RMB", "reason"):
        t.add_column(col, justify="right" if col.endswith("RMB") else "left")
    for bank, loan, on, amount, cap, reason in rows:
        # ids and reasons as delivered by the banks: text, never terminal markup
        t.add_row(escape(bank), escape(loan), str(on), f"{amount / 100:,.2f}", f"{cap / 100:,.2f}", escape(reason))
    console.print(t)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from lending.calendar import WorkingDays
    from lending.ledger.store import rebuild
    from valuecredit.store import connect, writer_lock

    cfg, calendar = _pool(args), \
        WorkingDays.load(_in_force(args, "pool_files", args.calendar, "calendar_overrides"))
    with writer_lock(_existing(args.db)):  # a mistyped --db is not a new, empty store
        con = connect(args.db)
        try:
            done = rebuild(con, cfg, calendar)
        finally:
            con.close()
    console.print(f"ledger rebuilt from the loan book: {len(done)} business dates, "
                  f"{sum(s.postings for s in done):,} postings")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from models.evaluate import MODELS, EvaluationInputError, cross_validate, prepare

    try:
        codes = [float(c) for c in (args.special_codes or "").split(",") if c.strip()]
    except ValueError:
        codes = None
    if codes is None or not all(math.isfinite(c) for c in codes):
        raise EvaluationInputError(f"--special-codes {args.special_codes!r}: expected finite numbers, e.g. -7,-8,-9")
    if args.lang not in ("zh", "en"):
        raise EvaluationInputError(f"--lang {args.lang!r}: expected zh or en")
    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise EvaluationInputError(f"--budget {args.budget}: expected a number of seconds above 0")
    if not 0 <= args.seed < 2**32:
        raise EvaluationInputError(f"--seed {args.seed}: expected a whole number from 0 to 4294967295")
    data = prepare(Path(args.data), args.target, args.bad, args.drop, codes, args.monotone)
    if args.report:  # said before the cross-validation, not after it
        report = Path(args.report)
        if report.exists() and not report.is_dir():
            raise EvaluationInputError(f"--report {args.report}: exists and is not a directory")
        try:
            report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EvaluationInputError(f"--report {args.report}: cannot be made ({exc.strerror or exc})") from None
        if not os.access(report, os.W_OK | os.X_OK):
            raise EvaluationInputError(f"--report {args.report}: not writable")
    evaluation = cross_validate(data, args.folds, args.seed, args.budget)
    result = evaluation.summary
    if args.report:
        from reports.validation import write_validation_report

        result["report"] = str(write_validation_report(Path(args.report), data, evaluation, Path(args.data).name,
                                                       args.lang))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, allow_nan=False))
        return 0
    t = Table(title=escape(f"{args.data}: {result['rows']:,} rows, bad rate {result['bad_rate']:.1%}, "
                           f"{args.folds}-fold stratified CV (seed {args.seed})"))
    for col in ("model", "AUC mean", "AUC std", "KS mean"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name in MODELS:
        m = result[name]
        t.add_row(name + (" (better)" if name == result["better"] else ""), f"{m['auc_mean']:.4f}",
                  f"{m['auc_std']:.4f}", f"{m['ks_mean']:.4f}")
    console.print(t)
    console.print("identifier columns not used as features (by name): "
                  + (", ".join(result["dropped_identifiers"]) or "none"), soft_wrap=True, markup=False)
    for note in result["input_notes"]:
        console.print(f"[yellow]input:[/] {escape(note)}", soft_wrap=True)
    for warning in result["warnings"]:
        console.print(f"[yellow]scorecard warning:[/] {escape(warning)}", soft_wrap=True)
    for fold in result["per_fold"]:
        console.print(f"fold {fold['fold']}: GBM {fold['gbm']['params']} ({fold['gbm']['candidates_tried']} settings "
                      f"tried), scorecard {fold['scorecard']['params']}", soft_wrap=True, markup=False)
    if args.report:
        console.print(f"validation report: {result['report']}", soft_wrap=True, markup=False)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from models.train import retrain
    from valuecredit.store import writer_lock

    truth = _truth_file(Path(args.truth) if args.truth else None)
    catalogue = _catalogue(args)
    # the registry's champion pin is what a running night scores with: not changed under it
    with writer_lock(_existing(args.db)), read_store(args.db) as con:
        registry = _in_force(args, "registry", args.registry)
        report = retrain(con, catalogue, registry, args.date or date.today(), truth, args.seed)
    t = Table(title=f"model {report['version']}: out of time, {report['out_of_time']['gbm']['loans']:,} loans")
    for col in ("model", "AUC", "KS", "Brier", "ECE"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, m in report["out_of_time"].items():
        t.add_row(name, f"{m['auc']:.4f}", f"{m['ks']:.4f}", *(f"{m[k]:.5f}" if k in m else "" for k in ("brier", "ece")))
    console.print(t)
    pop, vs = report["population"], report["population"]["versus_score"]
    console.print(f"method {report['method']} ({report['method_reason']}); on the population out of time "
                  f"({pop['rows']:,} firm-months, {pop['events']:,} court defaults): AUC {pop['auc']['model']:.4f} "
                  f"against the 4+19+1 score's {pop['auc']['score_4_19_1']:.4f} (difference {vs['difference']:+.4f}, "
                  f"95 % interval {vs['interval_95'][0]:+.4f} to {vs['interval_95'][1]:+.4f})", soft_wrap=True)
    if report.get("refinement"):
        from reports.audit import refinement_text
        console.print(f"refinement on the loans: {refinement_text(report['refinement'], 'en', report.get('refinement_validated'))}", soft_wrap=True)
    if "gap_to_ceiling" in report:
        g = report["gap_to_ceiling"]
        console.print(f"gbm AUC {g['auc_gap']:.4f} below the simulator's ceiling "
                      f"(90 % paired-bootstrap interval {g['interval_90'][0]:.4f} to {g['interval_90'][1]:.4f})")
    d = report["decision"]
    verdict = ("promoted to champion" if d["promoted"] else f"not promoted; the champion stays {d['champion']}"
               if d["champion"] else "not promoted; no champion: the programme runs on the 4+19+1 score and its rules alone")
    console.print(f"registered {report['version']} in {registry}: {verdict} ({d['reason']}); "
                  f"validation in {registry / report['version'] / 'validation.json'}", soft_wrap=True)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from models.nightly import replay

    with read_store(args.db) as con:
        r = replay(con, _latest_scored(con, args), _catalogue(args),
                   _in_force(args, "registry", args.registry))
    same = r.pd_identical and r.explanations_identical
    console.print(f"replayed {r.as_of} for {r.firms:,} firms with model {r.model_version} from the raw deliveries "
                  f"known that day: PDs {'identical' if r.pd_identical else f'differ (max {r.max_pd_difference:.3g})'}, "
                  f"explanations {'identical' if r.explanations_identical else 'differ'}", soft_wrap=True)
    return 0 if same else 1


def cmd_match(args: argparse.Namespace) -> int:
    from lending.eligibility import match
    from reports.firm import firm_name
    from reports.vocabulary import load_vocabulary, money_fen, percent, shortfall

    firm = args.firm
    with read_store(args.db) as con:
        as_of = _latest_decided(con, args)
        rows = match(con, firm, as_of)
        name = firm_name(con, firm)
    voc = load_vocabulary()
    # narrow: five short columns, and what a product lacks on its own folded line below it (80 columns)
    t = Table(title=f"{name or firm} ({firm}): {int(rows['eligible'].sum())} of {len(rows)} products on {as_of}",
              expand=False, show_lines=False)
    t.add_column("product / what it lacks", overflow="fold", ratio=1)
    for col in ("eligible", "limit", "rate", "match"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows.itertuples():
        # each gate with the rules that closed it (a night decided before they were named: the gate alone)
        gates = (r.gate_reasons.split("; ") if isinstance(r.gate_reasons, str) and r.gate_reasons
                 else [voc.name("gates", g, "en") for g in r.gates])
        lacks = "; ".join([f"gate: {g}" for g in gates] +
                          [shortfall(s["condition"], s["value"], s["required"], "en") for s in r.shortfalls])
        t.add_row(f"{escape(r.product_name)} [dim]{r.bank_id}[/]" + (f"\n[dim]  {escape(lacks)}[/]" if lacks else ""),
                  "yes" if r.eligible else "no", money_fen(r.limit_fen, "en") if r.eligible else "",
                  percent(r.rate_bp / 10_000, 2) if r.eligible else "", percent(r.match_degree, 0))
    console.print(t)
    return 0


def cmd_firms(args: argparse.Namespace) -> int:
    from reports.firm import find_firms
    from reports.vocabulary import load_vocabulary

    text = args.search.strip()
    if len(text) < 2:
        raise ValueError("--search: give at least two characters of a firm's name or code")
    with read_store(args.db) as con:
        found = find_firms(con, text, args.limit)
    if found.empty:
        console.print(f"no firm's name contains {escape(text)!r} and no code starts with it")
        return 1
    voc = load_vocabulary()
    t = Table(title=f"firms matching {escape(text)!r} (at most {args.limit})", expand=False)
    t.add_column("code", no_wrap=True)
    t.add_column("name / district, industry, status", overflow="fold", ratio=1)
    t.add_column("score", justify="right", no_wrap=True)
    for r in found.itertuples():
        where = ", ".join((voc.labelled("districts", r.district_code, "en"), voc.labelled("industries", r.industry, "en"),
                           voc.name("statuses", r.status, "en")))
        score = f"{r.total:.0f} {r.grade}" if r.total == r.total and r.total is not None else ""
        t.add_row(r.uscc, f"{escape(r.name)}\n[dim]{escape(where)}[/]", score)
    console.print(t)
    return 0


def _latest_decided(con, args) -> date:
    from lending.gate import latest_decision_date

    as_of = args.date or latest_decision_date(con)
    if as_of is None:
        raise ValueError(f"{args.db} has no eligibility yet: run `valuecredit run` first")
    return as_of


def _latest_scored(con, args) -> date:
    from scoring.score import latest_scored_date

    as_of = args.date or latest_scored_date(con)
    if as_of is None:
        raise ValueError(f"{args.db} has no scores yet: run `valuecredit run` first")
    return as_of


def cmd_report_firm(args: argparse.Namespace) -> int:
    from reports.browser import to_pdf
    from reports.firm import write_firm_report

    firm = args.firm
    with read_store(args.db) as con:
        as_of = _latest_scored(con, args)
        html = write_firm_report(con, firm, as_of, _catalogue(args), Path(args.out) / as_of.isoformat(), args.lang)
    pdf = to_pdf(html, html.with_suffix(".pdf")) if not args.no_pdf else None
    console.print(f"report for {firm} on {as_of}: {html}" + (f" and {pdf}" if pdf else ""), soft_wrap=True)
    return 0


def cmd_report_bank(args: argparse.Namespace) -> int:
    from lending.products import load_products
    from reports.firm import bank_batch

    bank = load_products(_in_force(args, "products", args.products)).bank(args.bank)  # before any path is built from it
    with read_store(args.db) as con:
        s = bank_batch(con, bank, _latest_scored(con, args), _catalogue(args), Path(args.out),
                       args.lang, args.limit)
    console.print(f"{s.reports:,} reports for {s.bank_id} on {s.as_of}: {s.folder}/index.html", soft_wrap=True)
    return 0


def cmd_report_portfolio(args: argparse.Namespace) -> int:
    from lending.products import load_products
    from reports.portfolio import write_portfolio

    bank = load_products(_in_force(args, "products", args.products)).bank(args.bank) if args.bank is not None else None
    # the catalogue and pool the store's nights use: the pool statement's cap and the indicators' names
    cat = _catalogue(args)
    pool = _pool(args)
    with read_store(args.db) as con:
        path = write_portfolio(con, _latest_scored(con, args), Path(args.out) / "portfolio", bank, args.lang, cat, pool)
    console.print(f"portfolio report for {args.bank or 'the programme'}: {path}", soft_wrap=True)
    return 0


def cmd_audit_pack(args: argparse.Namespace) -> int:
    from reports.audit import audit_pack

    with read_store(args.db) as con:
        path = audit_pack(con, _latest_scored(con, args), _in_force(args, "registry", args.registry),
                          _catalogue(args), Path(args.out), args.lang)
    console.print(f"audit pack: {path}", soft_wrap=True)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from valuecredit.backup import backup

    s = backup(Path(args.db), Path(args.to), _in_force(args, "registry", args.registry))
    console.print(f"backed up {args.db} ({s.tables} tables, {s.rows:,} rows, sha256 {s.sha256[:16]}) to {s.folder}",
                  soft_wrap=True)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from valuecredit.backup import restore

    s = restore(Path(args.source), Path(args.db), _in_force(args, "registry", args.registry))
    console.print(f"restored {args.db} from {s.folder} ({s.tables} tables, {s.rows:,} rows); "
                  "re-run the nights since the backup with `valuecredit run --date D`", soft_wrap=True)
    return 0


def cmd_bank_rebuild(args: argparse.Namespace) -> int:
    from lending.access import published_folder
    from lending.delta import rebuild
    from lending.products import load_products

    products = load_products(_in_force(args, "products", args.products))
    day, folder = published_folder(_in_force(args, "publish_folder", args.publish), args.bank, args.date, products)
    path = rebuild(folder.parent, day, args.start, Path(args.out))
    start = args.start or "the last full table"
    console.print(f"bank {args.bank}: the table of {day} rebuilt from {start} and the changes since, in {path.parent}")
    return 0


def cmd_bank_query(args: argparse.Namespace) -> int:
    import duckdb

    from lending.access import bank_connection, default_memory, default_timeout, memory_bytes
    from lending.products import load_products
    from valuecredit.spreadsheet import neutral_frame

    timeout = args.timeout if args.timeout is not None else default_timeout()
    memory = args.memory or default_memory()
    view = bank_connection(_in_force(args, "publish_folder", args.publish), args.bank, args.date,
                           load_products(_in_force(args, "products", args.products)), memory)
    # DuckDB's own limits do not bound one huge value (`repeat('ab', 300000000)`) nor the copies made
    # of a result after the query: the process itself is bounded, and ended if it outlives its time
    with process_limits(3 * memory_bytes(memory), timeout + 10, f"bank {view.bank_id}'s query"):
        try:
            frame = view.query(args.sql, timeout)
            text = neutral_frame(frame).to_csv(index=False)  # a CSV a person may open in a spreadsheet
        except duckdb.Error as exc:  # the sandbox refusing a file, or a mistake in the SQL: say which, no stack trace
            raise ValueError(f"bank {view.bank_id}, publication of {view.business_date}: {exc}".splitlines()[0]) from None
        except MemoryError:
            raise ValueError(f"bank {view.bank_id}: the query's result needs more memory than its limit "
                             f"({memory}); ask for less") from None
        finally:
            view.con.close()
    sys.stdout.write(text)
    return 0


@contextmanager
def process_limits(extra_memory: int, seconds: float, what: str) -> Iterator[None]:
    """This process may grow by `extra_memory` bytes of address space at most, and ends (exit 2, one
    line) if the block has not finished after `seconds`: for a command that runs untrusted SQL."""
    import resource
    import threading

    def overdue() -> None:
        sys.stderr.write(f"valuecredit: error: {what} was still running after {seconds:g} s and was stopped\n")
        sys.stderr.flush()
        os._exit(2)

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = used + extra_memory if hard == resource.RLIM_INFINITY else min(hard, used + extra_memory)
    watchdog = threading.Timer(seconds, overdue)
    watchdog.daemon = True
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _seconds(text: str) -> float:
    from lending.access import AccessError, checked_seconds

    try:
        return checked_seconds(text, "--timeout")
    except AccessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_audit_replay(args: argparse.Namespace) -> int:
    from lending.products import load_products
    from reports.audit import replay_decision

    firm = args.firm
    products = load_products(args.products) if args.products else None
    with read_store(args.db) as con:
        r = replay_decision(con, firm, _latest_decided(con, args), _in_force(args, "registry", args.registry), products)
    head = (f"{firm} on {r.as_of}: {r.compared} product decisions and the PD (model {r.model_version or 'none'}) "
            f"replayed with product catalogue {r.products_version}")
    if r.identical:
        console.print(f"{head}: identical to what was decided", soft_wrap=True)
        return 0
    t = Table(title=f"{head}: {len(r.differences)} differences")
    for col in ("what", "product", "decided", "replayed"):
        t.add_column(col)
    for x in r.differences:
        t.add_row(x["what"], x["product_id"] or "", str(x["decided"]), str(x["replayed"]))
    console.print(t)
    return 1


def cmd_products_preview(args: argparse.Namespace) -> int:
    from lending.products import load_products
    from reports.preview import write_preview

    draft, pool = load_products(args.products), _pool(args)  # refused before the store is opened
    with read_store(args.db) as con:
        as_of = _latest_decided(con, args)
        r = write_preview(con, draft, as_of, pool, Path(args.out), args.lang)
    changed = [p for p in r.figures["products"] if p["newly_reached"] or p["no_longer_reached"]]
    console.print(f"preview of {args.products} on {as_of}: {len(changed)} of {len(r.figures['products'])} products "
                  f"change their reach; {r.html_path} and {r.json_path}", soft_wrap=True)
    return 0


def config_errors() -> list[str]:
    from pipelines.config_check import check_config

    return [c.error for c in check_config() if c.error]


def cmd_config_check(args: argparse.Namespace) -> int:
    from pipelines.config_check import check_config

    results = check_config(Path(args.config) if args.config else None)
    t = Table(title="configuration files, as the nightly run reads them")
    for col in ("file", "what", "version", "content sha256"):
        t.add_column(col, overflow="fold")
    for c in results:
        t.add_row(c.path.name, c.name, c.version or "-", c.content_hash[:12] if not c.error else "[red]invalid[/]")
    console.print(t)
    console.print("folders: " + ", ".join(sorted({str(c.path.parent) for c in results})), soft_wrap=True)
    for c in results:
        if c.error:
            for line in c.error.splitlines():
                err_console.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    return 2 if any(c.error for c in results) else 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="valuecredit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a synthetic landing zone with a known truth")
    s.add_argument("--firms", type=int, default=20_000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--months", type=int, default=36)
    s.add_argument("--end", help="last simulated month, YYYY-MM (default: last month)")
    s.add_argument("--fault-rate", type=float, default=0.0, dest="fault_rate")
    s.add_argument("--out", default=str(DEFAULT_LANDING))
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", help="run the nightly job for one business date")
    r.add_argument("--date", type=_date, help="business date, YYYY-MM-DD (default: today)")
    r.add_argument("--landing", default=str(DEFAULT_LANDING))
    r.add_argument("--db", default=str(DEFAULT_DB))
    r.add_argument("--full", action="store_true",
                   help="compute every firm again, even where nothing changed since the previous night")
    r.set_defaults(func=cmd_run)

    cf = sub.add_parser("config", help="the operator's configuration files").add_subparsers(dest="config_command",
                                                                                           required=True)
    cc = cf.add_parser("check", help="validate every configuration file as the nightly run does; versions and hashes")
    cc.add_argument("--config", help="a folder holding the files by their usual names (default: what the run reads)")
    cc.set_defaults(func=cmd_config_check)

    sc = sub.add_parser("score", help="the 4+19+1 score").add_subparsers(dest="score_command", required=True)
    c = sc.add_parser("calibrate", help="fit the catalogue's weights to observed loan outcomes (sample testing)")
    c.add_argument("--db", default=str(DEFAULT_DB))
    c.add_argument("--catalogue", help="catalogue YAML (default: $VALUECREDIT_CATALOGUE, else config/catalogue.yaml)")
    c.add_argument("--date", type=_date, help="date of the report (default: today)")
    c.add_argument("--truth", help=TRUTH_HELP)
    c.add_argument("--out", default="build/calibration")
    c.add_argument("--adopt", action="store_true", help="write the fitted weights as the next catalogue version")
    c.set_defaults(func=cmd_calibrate)

    ld = sub.add_parser("ledger", help="the risk-compensation pool ledger").add_subparsers(dest="ledger_command", required=True)
    st = ld.add_parser("statement", help="opening quota, movements and closing quota per bank and for the programme")
    st.add_argument("--db", default=str(DEFAULT_DB))
    st.add_argument("--bank", help="one bank id, e.g. B03 (default: every bank and the programme total)")
    st.add_argument("--from", type=_date, help="first business date (default: 1 January of --to's year)")
    st.add_argument("--to", type=_date, help="last business date (default: today)")
    st.add_argument("--csv", help="also write every bank's statement to this CSV file (amounts in fen)")
    st.add_argument("--pool", help="pool parameters (default: $VALUECREDIT_POOL, else config/pool.yaml)")
    st.set_defaults(func=cmd_statement)
    ex = ld.add_parser("exceptions", help="the loans disbursed above the loan cap in force (the exception list)")
    ex.add_argument("--db", default=str(DEFAULT_DB))
    ex.add_argument("--bank", help="one bank id, e.g. B03 (default: every bank)")
    ex.set_defaults(func=cmd_exceptions)
    rb = ld.add_parser("rebuild", help="replay every posted business date from the loan book into an empty ledger")
    rb.add_argument("--db", default=str(DEFAULT_DB))
    rb.add_argument("--pool", help="pool parameters (default: $VALUECREDIT_POOL, else config/pool.yaml)")
    rb.add_argument("--calendar", help="working-day overrides (default: $VALUECREDIT_CALENDAR, else config/calendar_overrides.yaml)")
    rb.set_defaults(func=cmd_rebuild)

    md = sub.add_parser("model", help="the PD model layer").add_subparsers(dest="model_command", required=True)
    ev = md.add_parser("evaluate", help="cross-validate the GBM and the scorecard on any labelled CSV")
    ev.add_argument("--data", required=True, help="a CSV with one row per case")
    ev.add_argument("--target", required=True, help="the outcome column (two values)")
    ev.add_argument("--bad", help="the target value that means default; 1, 1.0, '1' and True are one value (default: 1)")
    ev.add_argument("--drop", help="columns to leave out, comma-separated")
    ev.add_argument("--folds", type=int, default=5)
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--special-codes", dest="special_codes",
                    help="values that mean 'no record', e.g. -7,-8,-9: binned apart in the scorecard, missing in the GBM")
    ev.add_argument("--monotone", help="known directions, e.g. 'debt_ratio:+1,years:-1' (+1: higher value, higher risk)")
    ev.add_argument("--budget", type=float, default=100.0,
                    help="seconds for the GBM's settings search over all folds (default 100)")
    ev.add_argument("--report", help="write a validation report (HTML and CSV) into this directory")
    ev.add_argument("--lang", default="zh", help="the report's language: zh (default) or en")
    ev.add_argument("--json", action="store_true", help="print exactly one JSON object")
    ev.set_defaults(func=cmd_evaluate)
    tr = md.add_parser("train", help="train the PD models on the loan book, validate out of time, register the champion")
    tr.add_argument("--db", default=str(DEFAULT_DB))
    tr.add_argument("--catalogue", help="catalogue YAML (for the negative-list feature; default: config/catalogue.yaml)")
    tr.add_argument("--registry", help="where model versions are kept (default: models/ beside the store, as the nightly run)")
    tr.add_argument("--truth", help=TRUTH_HELP)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--date", type=_date, help="the date of the promotion decision, YYYY-MM-DD (default: today)")
    tr.set_defaults(func=cmd_train)
    rp = md.add_parser("replay", help="score a past date again with the model version it used; compare bit for bit")
    rp.add_argument("--date", type=_date, help="business date (default: the latest scored)")
    rp.add_argument("--db", default=str(DEFAULT_DB))
    rp.add_argument("--catalogue", help="catalogue YAML (default: $VALUECREDIT_CATALOGUE, else config/catalogue.yaml)")
    rp.add_argument("--registry", help="where model versions are kept (default: models/ beside the store)")
    rp.set_defaults(func=cmd_replay)
    fs = sub.add_parser("firms", help="find a firm's code by part of its name or the start of its code")
    fs.add_argument("--search", required=True, help="part of the name (e.g. 建材) or the first characters of the code")
    fs.add_argument("--limit", type=int, default=20)
    fs.add_argument("--db", default=str(DEFAULT_DB))
    fs.set_defaults(func=cmd_firms)
    mt = sub.add_parser("match", help="every product for one firm: eligible first, with limit, rate and shortfalls")
    mt.add_argument("--firm", required=True, type=_uscc, help="the firm's unified social credit code (`valuecredit firms --search` finds it)")
    mt.add_argument("--date", type=_date, help="business date (default: the latest with eligibility)")
    mt.add_argument("--db", default=str(DEFAULT_DB))
    mt.set_defaults(func=cmd_match)
    rep = sub.add_parser("report", help="reports people read").add_subparsers(dest="report_command", required=True)
    rf = rep.add_parser("firm", help="one firm's score report, HTML and PDF (Chinese unless --lang en)")
    rf.add_argument("firm", type=_uscc, help="the firm's unified social credit code (`valuecredit firms --search` finds it)")
    rb = rep.add_parser("bank", help="a bank's batch: a report for each firm eligible for one of its products, and an index")
    rb.add_argument("bank", help="bank id, as in config/products.yaml (B01 ...)")
    rb.add_argument("--limit", type=int, help="only the N firms with the largest limits")
    rpf = rep.add_parser("portfolio", help="portfolio monitoring for the programme, or one bank with --bank")
    rpf.add_argument("--bank", help="bank id (default: the programme)")
    rpf.set_defaults(func=cmd_report_portfolio)
    ap = sub.add_parser("audit", help="for the regulator").add_subparsers(dest="audit_command", required=True)
    pk = ap.add_parser("pack", help="model card, SHAP importance and dependence, outcomes by segment, version history")
    pk.add_argument("--registry", help="where model versions are kept (default: models/ beside the store)")
    pk.set_defaults(func=cmd_audit_pack)
    for q in (rf, rb, rpf, pk):
        q.add_argument("--date", type=_date, help="business date (default: the latest scored)")
        q.add_argument("--lang", choices=("zh", "en"), default="zh")
        q.add_argument("--db", default=str(DEFAULT_DB))
        q.add_argument("--catalogue", help="catalogue YAML (default: $VALUECREDIT_CATALOGUE, else config/catalogue.yaml)")
        q.add_argument("--out", default=str(DEFAULT_REPORTS), help="where reports go (default: build/reports, ignored by git)")
    rf.add_argument("--no-pdf", action="store_true", dest="no_pdf", help="HTML only")
    for q in (rb, rpf):
        q.add_argument("--products", help="the product catalogue whose bank ids are valid (default: $VALUECREDIT_PRODUCTS, else config/products.yaml)")
    rf.set_defaults(func=cmd_report_firm)
    ar = ap.add_parser("replay", help="recompute a firm's decisions of a past night; show they match, or what differs")
    ar.add_argument("--firm", required=True, type=_uscc, help="the firm's unified social credit code")
    ar.add_argument("--date", type=_date, help="business date (default: the latest with eligibility)")
    ar.add_argument("--products", help="replay with this product catalogue instead of the one in force that day")
    ar.add_argument("--db", default=str(DEFAULT_DB))
    ar.add_argument("--registry", help="where model versions are kept (default: models/ beside the store)")
    ar.set_defaults(func=cmd_audit_replay)
    pr = sub.add_parser("products", help="the product catalogue").add_subparsers(dest="products_command", required=True)
    pv = pr.add_parser("preview", help="what a draft catalogue would change on the latest night (read-only): reach, "
                                       "who, expected loss, pool quota, firms at the margin; JSON and HTML")
    pv.add_argument("--products", required=True, help="the draft product catalogue (YAML, as config/products.yaml)")
    pv.add_argument("--date", type=_date, help="a decided night (default: the latest)")
    pv.add_argument("--db", default=str(DEFAULT_DB))
    pv.add_argument("--out", default=str(DEFAULT_REPORTS / "preview"), help="where the preview goes (default: build/reports/preview)")
    pv.add_argument("--lang", choices=("zh", "en"), default="zh")
    pv.set_defaults(func=cmd_products_preview)
    bq = sub.add_parser("bank", help="what one bank sees").add_subparsers(dest="bank_command", required=True)
    qy = bq.add_parser("query", help="SQL on one bank's publication alone (tables eligibility and early_warnings), "
                                     "in a sandbox that can read nothing else; CSV on standard output")
    qy.add_argument("sql")
    qy.add_argument("--bank", required=True)
    qy.add_argument("--date", type=_date, help="a published date (default: the bank's LATEST)")
    qy.add_argument("--db", default=str(DEFAULT_DB), help="the store, whose publish/ folder is read")
    qy.add_argument("--publish", help="the publication folder (default: publish/ beside the store)")
    qy.add_argument("--products", help="the product catalogue whose bank ids are valid (default: $VALUECREDIT_PRODUCTS, else config/products.yaml)")
    qy.add_argument("--timeout", type=_seconds, help="stop the query after this many seconds "
                                                     "(default: $VALUECREDIT_BANK_QUERY_TIMEOUT, else 30)")
    qy.add_argument("--memory", help="DuckDB memory limit, e.g. 512MB (default: $VALUECREDIT_BANK_QUERY_MEMORY, else 1GB)")
    qy.set_defaults(func=cmd_bank_query)
    br = bq.add_parser("rebuild", help="a published date's full table rebuilt from an earlier full table and the "
                                       "change files since, checked against the table published (to check a bank's "
                                       "copy; a past date may hold firms that have withdrawn since: not for a bank)")
    br.add_argument("--bank", required=True)
    br.add_argument("--date", type=_date, help="the date to rebuild (default: the bank's LATEST)")
    br.add_argument("--from", dest="start", type=_date, help="the earlier published date with a full table to start "
                                                              "from (default: the last full table before --date)")
    br.add_argument("--out", required=True, help="a folder for eligibility.parquet and eligibility.csv")
    br.add_argument("--db", default=str(DEFAULT_DB), help="the store, whose publish/ folder is read")
    br.add_argument("--publish", help="the publication folder (default: publish/ beside the store)")
    br.add_argument("--products", help="the product catalogue whose bank ids are valid (default: $VALUECREDIT_PRODUCTS, else config/products.yaml)")
    br.set_defaults(func=cmd_bank_rebuild)
    bk = sub.add_parser("backup", help="copy the store and the model registry into a new folder, with a manifest")
    bk.add_argument("--to", required=True, help="a new folder for the backup")
    rs = sub.add_parser("restore", help="put a verified backup in place of the store and the model registry")
    rs.add_argument("source", help="a folder written by `valuecredit backup`")
    for q in (bk, rs):
        q.add_argument("--db", default=str(DEFAULT_DB))
        q.add_argument("--registry", help="the model registry (default: models/ beside the store)")
    bk.set_defaults(func=cmd_backup)
    rs.set_defaults(func=cmd_restore)
    rb.set_defaults(func=cmd_report_bank)
    return p


# options whose value may start with '-' (argparse would take `--special-codes -7,-8` for two options)
VALUES_MAY_START_WITH_A_DASH = ("--special-codes", "--monotone")


def _attach_dash_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUES_MAY_START_WITH_A_DASH and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 1 a run stopped by failed checks or a replay that differs, 2 an error (one line on
    stderr: what, where, why), 3 the store's writer lock held by another writer.
    VALUECREDIT_DEBUG=1 shows the traceback instead."""
    from valuecredit.store import StoreLocked

    args = build_parser().parse_args(_attach_dash_values(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except Exception as exc:
        if os.environ.get("VALUECREDIT_DEBUG") == "1":
            raise
        # an operator's file with several problems: one line each; any other error: one line
        lines = str(exc).splitlines() if isinstance(exc, ConfigError) else [_one_line(exc)]
        sys.stderr.write("".join(f"{_prog(args)}: error: {line}\n" for line in lines))
        return 3 if isinstance(exc, StoreLocked) else 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{_prog(args)}: interrupted\n")
        return 130


def _prog(args: argparse.Namespace) -> str:
    """The command as typed, e.g. `valuecredit ledger rebuild`."""
    return " ".join(["valuecredit", args.command, getattr(args, f"{args.command}_command", "")]).strip()


if __name__ == "__main__":
    sys.exit(main())
