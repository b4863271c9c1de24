"""Property tests: whatever a department puts in a file, ingestion loads or quarantines every row,
or rejects the file with a reason. It never crashes and never loses a row silently."""

import hashlib
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_contracts.contracts import CONTRACTS
from ingestion.ingest import ingest_source
from tests.conftest import ingest_all
from valuecredit.store import connect

FIRMS = ["91500103123456788W", "91500112006000378W"]
cell = st.one_of(
    st.sampled_from(["", " ", "-5", "1e30", "12.5", "abc", "NULL", "2026-13", "2026-10", "３", "\x07", "张三", "42"]),
    st.text(max_size=12),
    st.integers(-10**20, 10**20).map(str),
)
COLUMNS = ["uscc", "period", "insured_headcount", "technical_staff", "contribution_fen", "arrears_months"]
row = st.fixed_dictionaries({
    "uscc": st.one_of(st.sampled_from(FIRMS + ["91500103123456788X", ""]), st.text(max_size=20)),
    "period": st.one_of(st.sampled_from(["2026-09", "2026-10", "2027-01"]), cell),
    "insured_headcount": cell, "technical_staff": cell, "contribution_fen": cell, "arrears_months": cell,
})


def _write(landing, rows: list[dict], encoding="utf-8") -> None:
    folder = landing / "social" / "social_insurance"
    folder.mkdir(parents=True, exist_ok=True)
    data = pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False).encode(encoding, errors="replace")
    (folder / "social_insurance_2026-10.csv").write_bytes(data)
    registry = landing / "market" / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    reg = pd.DataFrame({"uscc": FIRMS, "name": ["重庆甲有限公司", "重庆乙有限公司"], "district_code": "500103",
                        "industry": "C", "industry_division": "34", "founded_on": "2010-01-01", "registered_capital_fen": 100,
                        "size_class": "小型", "status": "存续", "status_date": "2010-01-01",
                        "legal_rep_name": "张三", "legal_rep_id": "11010519491231002X"})
    reg_bytes = reg.to_csv(index=False).encode("gbk")
    (registry / "registry_2026-10.csv").write_bytes(reg_bytes)
    manifest = pd.DataFrame([
        {"file": "market/registry/registry_2026-10.csv", "source": "registry", "department": "market",
         "period": "2026-10", "delivered_on": "2026-11-03", "format": "csv", "encoding": "gbk",
         "rows": 2, "bytes": len(reg_bytes), "sha256": hashlib.sha256(reg_bytes).hexdigest()},
        {"file": "social/social_insurance/social_insurance_2026-10.csv", "source": "social_insurance",
         "department": "social", "period": "2026-10", "delivered_on": "2026-11-12", "format": "csv",
         "encoding": "utf-8", "rows": len(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    ])
    manifest.to_csv(landing / "manifest.csv", index=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=0, max_size=12))
def test_any_file_is_loaded_quarantined_or_rejected_never_crashes(tmp_path_factory, rows):
    landing = tmp_path_factory.mktemp("fuzz")
    _write(landing, rows)
    con = connect(landing / "db.duckdb")
    ingest_source(con, landing, "registry", date(2026, 11, 28))
    out = ingest_source(con, landing, "social_insurance", date(2026, 11, 28))
    assert len(out.files) == 1
    f = out.files[0]
    if f.status == "rejected":
        assert f.reason.split(":")[0] in {"unparseable", "wrong_encoding", "file_empty", "column_mismatch"}
    else:
        assert f.rows_read == len(rows) and f.rows_loaded + f.rows_quarantined == f.rows_read
        q = con.execute("SELECT count(*), count(DISTINCT \"row\") FROM quarantine.rows").fetchone()
        assert q == (f.rows_quarantined, f.rows_quarantined)
        # what was loaded obeys the contract
        bad = con.execute("""SELECT count(*) FROM staging.social_insurance WHERE insured_headcount < 0
                             OR contribution_fen < 0 OR period > '2026-11' OR uscc NOT IN (SELECT uscc FROM staging.registry)""").fetchone()[0]
        assert bad == 0
    con.close()


def test_a_duplicate_header_rejects_the_file_by_name(tmp_path):
    _write(tmp_path, [{"uscc": FIRMS[0], "period": "2026-10", "insured_headcount": "3", "technical_staff": "1",
                       "contribution_fen": "100", "arrears_months": "0"}])
    path = tmp_path / "social" / "social_insurance" / "social_insurance_2026-10.csv"
    text = path.read_text().replace("arrears_months", "period", 1)
    path.write_text(text)
    m = pd.read_csv(tmp_path / "manifest.csv")
    m.loc[1, ["bytes", "sha256"]] = [len(text.encode()), hashlib.sha256(text.encode()).hexdigest()]
    m.to_csv(tmp_path / "manifest.csv", index=False)
    con = connect(tmp_path / "db.duckdb")
    out = ingest_source(con, tmp_path, "social_insurance", date(2026, 11, 28))
    assert out.rejected[0].reason.startswith("header_duplicate: column(s) period")


CJK = "重庆市渝中区江北沙坪坝九龙坡南岸科技贸易有限公司机械电子信息工程建设发展服务张王李赵刘陈杨黄周吴"
REGISTRY = ["uscc", "name", "district_code", "industry", "industry_division", "founded_on", "registered_capital_fen",
            "size_class", "status", "status_date", "legal_rep_name", "legal_rep_id"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(alphabet=CJK, min_size=4, max_size=14), min_size=2, max_size=2),
       line_encodings=st.lists(st.sampled_from(["utf-8", "gbk"]), min_size=2, max_size=2),
       declared=st.sampled_from(["utf-8", "gbk"]))
def test_a_file_of_mixed_encodings_is_rejected_never_loaded_as_mojibake(tmp_path_factory, names, line_encodings,
                                                                         declared):
    """Each line of the registry file in its own encoding: if anything is loaded, it is the text as written."""
    landing = tmp_path_factory.mktemp("encodings")
    lines = [",".join(REGISTRY).encode()] + [
        ",".join([firm, name, "500103", "C", "34", "2010-01-01", "100", "小型", "存续", "2010-01-01", name[:2],
                  "11010519491231002X"]).encode(encoding) for firm, name, encoding in zip(FIRMS, names, line_encodings)]
    data = b"\n".join(lines) + b"\n"
    (landing / "market" / "registry").mkdir(parents=True)
    (landing / "market" / "registry" / "registry_2026-10.csv").write_bytes(data)
    pd.DataFrame([{"file": "market/registry/registry_2026-10.csv", "source": "registry", "department": "market",
                   "period": "2026-10", "delivered_on": "2026-11-03", "format": "csv", "encoding": declared,
                   "rows": 2, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
                 ).to_csv(landing / "manifest.csv", index=False)
    con = connect(landing / "db.duckdb")
    f = ingest_source(con, landing, "registry", date(2026, 11, 28)).files[0]
    if set(line_encodings) == {declared}:
        assert f.status == "loaded", f.reason
    if f.status == "rejected":
        assert f.reason.startswith("wrong_encoding: ") and set(line_encodings) != {declared}
    else:
        loaded = dict(con.execute("SELECT uscc, name FROM staging.registry").fetchall())
        assert loaded == dict(zip(FIRMS, names))
    con.close()



@pytest.fixture(scope="module")
def real_rows(clean_landing) -> dict[str, pd.DataFrame]:
    """Up to 40 rows, as delivered, of each source's latest file with rows in the simulated landing zone."""
    manifest = pd.read_csv(clean_landing / "manifest.csv", dtype={"rows": int}).astype({"delivered_on": str})
    rows = {}
    for c in CONTRACTS:
        entry = manifest[(manifest.source == c.source) & (manifest.rows > 0)].sort_values(["delivered_on", "file"]).iloc[-1]
        path = clean_landing / entry.file
        frame = (pd.read_parquet(path).astype("string") if c.file_format == "parquet" else
                 pd.read_csv(path, dtype=str, keep_default_na=False, encoding=c.encoding))
        rows[c.source] = frame.head(40).reset_index(drop=True)
    return rows


@pytest.fixture(scope="module")
def registered(clean_landing, tmp_path_factory) -> Path:
    """A store holding the simulated registry, ingested once: each example starts from a copy."""
    db = tmp_path_factory.mktemp("registered") / "db.duckdb"
    con, _ = ingest_all(clean_landing, db, sources=("registry",))
    con.close()
    return db


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.source)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_departments_file_with_mutated_rows_is_loaded_quarantined_or_rejected(
        tmp_path_factory, clean_landing, real_rows, registered, contract, data):
    """For each of the 23 sources, in its own format and encoding: real rows, some repeated, some
    with one cell replaced by a random one. Every row is loaded or quarantined, or the file rejected
    with a reason; an untouched file loads whole."""
    template = real_rows[contract.source]
    mutation = st.one_of(st.none(), st.tuples(st.sampled_from(list(contract.column_names)), cell))
    picks = data.draw(st.lists(st.tuples(st.integers(0, len(template) - 1), mutation), max_size=8))
    frame = template.iloc[[i for i, _ in picks]].reset_index(drop=True).astype(object)
    for n, (_, change) in enumerate(picks):
        if change is not None:
            frame.loc[n, change[0]] = change[1]
    landing = tmp_path_factory.mktemp("mutate_" + contract.source)
    manifest = pd.read_csv(clean_landing / "manifest.csv", dtype=str)
    registry = manifest[manifest.source == "registry"] if contract.source != "registry" else manifest.iloc[:0]
    for f in registry.file:
        (landing / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clean_landing / f, landing / f)
    path = landing / contract.department / contract.source / f"{contract.source}_mutated.{contract.file_format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if contract.file_format == "parquet":
        frame.astype("string").to_parquet(path, index=False)
        raw = path.read_bytes()
    else:
        raw = frame.to_csv(index=False).encode(contract.encoding, errors="replace")
        path.write_bytes(raw)
    entry = {"file": path.relative_to(landing).as_posix(), "source": contract.source, "department": contract.department,
             "period": "2026-10", "delivered_on": "2026-11-27", "format": contract.file_format,
             "encoding": contract.encoding, "rows": len(frame), "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    pd.concat([registry, pd.DataFrame([entry])]).to_csv(landing / "manifest.csv", index=False)
    if contract.source != "registry":
        shutil.copy(registered, landing / "db.duckdb")
    con = connect(landing / "db.duckdb")
    [f] = ingest_source(con, landing, contract.source, date(2026, 11, 28)).files
    if f.status == "rejected":
        assert f.reason.split(":")[0] in {"unparseable", "wrong_encoding", "file_empty", "column_mismatch",
                                          "unreadable"}, f.reason
        assert any(change is not None for _, change in picks) or not picks, f.reason  # only a changed file
    else:
        assert f.rows_read == len(frame) and f.rows_loaded + f.rows_quarantined == f.rows_read
        assert con.execute("SELECT count(*) FROM quarantine.rows WHERE source = ?",
                           [contract.source]).fetchone()[0] == f.rows_quarantined
        untouched = [i for i, change in picks if change is None]
        if len(untouched) == len(picks) == len(set(untouched)):  # real rows, each once: all of them load
            assert f.rows_loaded == len(picks), con.execute("SELECT rule, detail FROM quarantine.rows").fetchall()
    con.close()
