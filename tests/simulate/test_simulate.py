import hashlib

import numpy as np
import pandas as pd
from stdnum.cn import uscc

from data_contracts.contracts import contract_for
from simulate import SimConfig, simulate
from simulate.landing import FILE_FAULTS


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_landing(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        simulate(SimConfig(firms=300, seed=seed, months=6, end_period="2026-10", fault_rate=0.02, out=out))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_universe_looks_like_chongqing(clean_landing):
    manifest = pd.read_csv(clean_landing / "manifest.csv")
    reg_files = manifest[manifest.source == "registry"].file
    registry = pd.concat([pd.read_csv(clean_landing / f, encoding="gbk", dtype=str) for f in reg_files])
    assert registry.uscc.map(uscc.is_valid).all()
    assert (registry.uscc.str[2:4] == "50").mean() > 0.98  # a few firms registered outside the region
    assert registry.name.str.startswith("重庆").all() and registry.name.str.endswith("有限公司").all()
    assert set(registry.industry) >= {"C", "F", "I", "M"}
    # one file per department and period, GBK for market regulation, Parquet for tax and power
    assert set(manifest[manifest.department == "market"].encoding) == {"gbk"}
    assert set(manifest[manifest.source.isin(["tax_monthly", "power"])].format) == {"parquet"}
    # 27 months in the window, and the 14 before it delivered as history with the first month's files
    tax = manifest[manifest.source == "tax_monthly"]
    assert tax.period.nunique() == 27 + 14
    history = tax[tax.period < "2024-08"]
    assert len(history) == 14 and set(history.delivered_on) == {"2024-09-15"}
    tax = pd.concat(pd.read_parquet(clean_landing / f) for f in manifest[manifest.source == "tax_monthly"].file)
    # Spring Festival: February 2026 revenue is well below January and March
    by_month = tax.groupby("period").revenue_fen.sum()
    assert by_month["2026-02"] < 0.85 * by_month["2026-01"] and by_month["2026-02"] < 0.85 * by_month["2026-03"]


def test_truths_are_written_and_consistent(clean_landing):
    firms = pd.read_parquet(clean_landing / "_truth" / "firms.parquet")
    loans = pd.read_parquet(clean_landing / "_truth" / "loans.parquet")
    assert {"uscc", "pd_12m_true", "pd_12m_observable"} <= set(firms.columns)
    assert firms.pd_12m_true.between(0, 1).all() and firms.pd_12m_observable.between(0, 1).all()
    # the observable PD averages the unseen part out: same mean, less spread
    assert abs(firms.pd_12m_true.mean() - firms.pd_12m_observable.mean()) < 0.02
    assert firms.pd_12m_observable.std() < firms.pd_12m_true.std()
    assert {"loan_id", "pd_12m_true", "pd_12m_observable"} <= set(loans.columns) and len(loans) > 50
    # realised defaults follow the true PD
    assert abs(loans.defaulted_12m.mean() - loans.pd_12m_true.mean()) < 0.05


def test_faults_are_recorded_per_class(faulty_landing):
    faults = pd.read_csv(faulty_landing / "_truth" / "faults.csv")
    assert set(FILE_FAULTS) <= set(faults.fault)
    assert faults[faults.fault.isin(FILE_FAULTS)].row.isna().all()
    row_faults = faults[~faults.fault.isin(FILE_FAULTS) & (faults.fault != "missing_month")]
    assert row_faults.row.notna().all() and (row_faults.row >= 1).all()
    for cls in ("uscc_invalid", "firm_unknown", "key_null", "amount_negative", "amount_absurd", "period_future",
                "duplicate_exact", "duplicate_conflict", "missing_month"):
        assert (faults.fault == cls).sum() > 0, cls


def test_realised_outcomes_are_written_for_every_month_end(clean_landing):
    firms = pd.read_parquet(clean_landing / "_truth" / "firms.parquet")
    folder = clean_landing / "_truth" / "outcomes"
    months = sorted(p.stem for p in folder.glob("*.parquet"))
    assert len(months) == 27 and months[-1] == "2026-10"
    last = pd.read_parquet(folder / "2026-10.parquet")
    assert (last["as_of"] == pd.Timestamp("2026-10-31")).all() and last["uscc"].is_unique
    # the last month-end's PDs are the firms' truth: the same log-odds, for the firms still active
    both = last.merge(firms, on="uscc", suffixes=("", "_firms"))
    assert len(both) == len(last) > 0.9 * len(firms)
    np.testing.assert_allclose(both["pd_12m_true"], both["pd_12m_true_firms"], rtol=1e-12)
    np.testing.assert_allclose(both["pd_12m_observable"], both["pd_12m_observable_firms"], rtol=1e-12)
    # one outcome drawn per firm and month-end from its true PD, with a seed of its own
    every = pd.concat([pd.read_parquet(folder / f"{m}.parquet") for m in months])
    assert abs(every["defaulted_12m"].mean() - every["pd_12m_true"].mean()) < 0.005
    assert not every.set_index(["uscc", "as_of"]).index.has_duplicates


def test_production_code_never_reads_the_simulators_truth():
    """Only validation by simulation looks at `_truth/`: benchmarks and tests read it, and the CLI
    only where the user names a file with --truth (its help says what it is for); no production
    module builds a path into it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    mentions = {str(p.relative_to(root)) for package in ("valuecredit", "data_contracts", "ingestion", "scoring", "models",
                                                         "lending", "reports", "pipelines")
                for p in (root / package).rglob("*.py") if "_truth" in p.read_text(encoding="utf-8")}
    assert mentions == {"pipelines/cli.py"}
    lines = [line for line in (root / "pipelines/cli.py").read_text(encoding="utf-8").splitlines() if "_truth" in line]
    assert lines and all("TRUTH_HELP" in line or "_truth_file" in line for line in lines)  # help text, the flag's check
    assert not any('"_truth"' in line for line in lines)  # no path built into it


def test_the_highest_fault_rate_outlasts_its_pool_of_unknown_firms(tmp_path):
    """At the highest fault rate the rows given a code no firm holds outnumber the pool of such
    codes (1,000 for 1,000 firms): the pool is reused, and the simulation does not stop half way."""
    simulate(SimConfig(firms=1000, seed=5, months=3, end_period="2026-10", fault_rate=0.2, out=tmp_path))
    faults = pd.read_csv(tmp_path / "_truth" / "faults.csv")
    unknown = faults[faults.fault == "firm_unknown"]
    assert len(unknown) > 1000
    firms = set(pd.read_parquet(tmp_path / "_truth" / "firms.parquet")["uscc"])
    manifest = pd.read_csv(tmp_path / "manifest.csv").set_index("file")
    codes = []
    for file, rows in unknown.groupby("file"):
        frame = (pd.read_csv(tmp_path / file, dtype=str, encoding=manifest.loc[file, "encoding"])
                 if manifest.loc[file, "format"] == "csv" else pd.read_parquet(tmp_path / file))
        codes += frame.iloc[rows.row.astype(int) - 1][contract_for(rows.source.iloc[0]).firm_column].tolist()
    assert len(codes) > 1000 and len(set(codes)) <= 1000  # more rows than codes: some codes serve twice
    assert all(uscc.is_valid(c) and c not in firms for c in codes)


def test_every_file_fault_finds_a_file_when_few_sources_are_gbk(tmp_path):
    """Each file-level fault hits a file of another source where it can; when the GBK files' sources
    are all hit already (seed 1 here), a wrong encoding goes to another file instead of stopping
    the simulation."""
    simulate(SimConfig(firms=200, seed=1, months=3, end_period="2026-10", fault_rate=0.05, out=tmp_path))
    faults = pd.read_csv(tmp_path / "_truth" / "faults.csv")
    hit = faults[faults.fault.isin(FILE_FAULTS)]
    assert sorted(hit.fault) == sorted(FILE_FAULTS) and hit.file.is_unique
