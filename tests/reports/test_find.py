"""Finding a firm's code, and refusing a mistyped one before any work."""

import subprocess
import sys
import time
from pathlib import Path

from pipelines.cli import main
from reports.firm import find_firms
from valuecredit.store import connect

ROOT = Path(__file__).resolve().parents[2]
FIRMS = [("91500106685998335Y", "重庆万丰商贸有限公司"), ("91500154734918910W", "重庆万丰100%商贸有限公司"),
         ("91500101739939366F", "重庆万中矿业有限公司")]


def _store(tmp_path: Path) -> Path:
    db = tmp_path / "store.duckdb"
    con = connect(db)
    for uscc, name in FIRMS:
        con.execute("INSERT INTO raw.registry BY NAME SELECT ? AS uscc, ? AS name, '500106' AS district_code, "
                    "'F' AS industry, '存续' AS status", [uscc, name])
    con.close()
    return db


def test_a_firm_is_found_by_part_of_its_name_or_the_start_of_its_code(tmp_path, capsys):
    con = connect(_store(tmp_path), read_only=True)
    assert list(find_firms(con, "万丰").uscc) == ["91500154734918910W", "91500106685998335Y"]  # by name
    assert list(find_firms(con, "9150010").uscc) == ["91500101739939366F", "91500106685998335Y"]  # by code
    assert list(find_firms(con, "100%").uscc) == ["91500154734918910W"]  # a wildcard is a character like any other
    assert find_firms(con, "_").empty and find_firms(con, "' OR 1=1 --").empty
    con.close()
    assert main(["firms", "--search", "万中", "--db", str(tmp_path / "store.duckdb")]) == 0
    assert "91500101739939366F" in capsys.readouterr().out


def test_a_mistyped_code_is_refused_before_anything_heavy_is_loaded():
    probe = ("import sys, time; from pipelines.cli import main\nt = time.perf_counter()\n"
             "try:\n    main(['match', '--firm', '91110000XXXX'])\nexcept SystemExit as e:\n    code = e.code\n"
             "print(code, round(time.perf_counter() - t, 2), any(m in sys.modules for m in ('lightgbm', 'shap', 'dagster')))")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    code, seconds, heavy = out.stdout.split()
    assert code == "2" and "is not a valid unified social credit code" in out.stderr
    # what makes the refusal immediate (0.7 s here) is that nothing heavy was imported; a time bound
    # would only measure how busy the machine is
    assert heavy == "False", (seconds, time.perf_counter() - started)
