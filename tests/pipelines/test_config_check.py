"""`valuecredit config check` validates every configuration file as the night does: version and hash
of each, or the file, line, field and rule of what is wrong (exit 2); `run` refuses a broken file
before it touches the store."""

import re
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.config_check import CONFIG_FILES, check_config

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def folder(tmp_path):
    for f in CONFIG_FILES:
        shutil.copy(f.in_force(), tmp_path / f.filename)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_the_shipped_configuration_is_valid_with_versions_and_hashes(capsys, folder):
    assert main(["config", "check", "--config", str(folder)]) == 0
    results = check_config(folder)
    assert [c.error for c in results] == [""] * len(CONFIG_FILES)
    assert all(re.fullmatch(r"[0-9a-f]{64}", c.content_hash) for c in results)
    assert {c.path.name: c.version for c in results}["catalogue.yaml"] == "1"
    out = capsys.readouterr().out
    assert "catalogue.yaml" in out and results[0].content_hash[:12] in out


BREAKAGES = [
    # (file, old text, new text, the text on the line the error must name, what the message says)
    ("catalogue.yaml", "{id: N08, rule: arrears, params: {months: 3}", "{id: N08, rule: arrears, params: {months: 6}",
     "id: N08", r"negative_list\[7\]: the mandatory exclusion arrears"),
    ("catalogue.yaml", "{id: N01, rule: dishonest_debtor,", "{id: N01, enabled: false, rule: dishonest_debtor,",
     "id: N01", r"negative_list\[0\]: the mandatory exclusion dishonest_debtor"),
    ("products.yaml", "base_bp: ", "base_bp: 5000 #", "base_bp: 5000", r"products\[0\]\.pricing\.base_bp: must lie in \[1, 2999\]"),
    ("pool.yaml", "cap_bp: 400", "cap_bp: 100", "cap_bp: 100", r"cap_bp: the cap \(100 bp\) is below"),
]


@pytest.mark.parametrize("name,old,new,on_line,says", BREAKAGES)
def test_an_error_names_file_line_field_and_rule(capsys, folder, name, old, new, on_line, says):
    edit(folder / name, old, new)
    assert main(["config", "check", "--config", str(folder)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, lines  # one problem, one line
    expected = rf"error: {re.escape(str(folder / name))}: {says}.*\(line {line_of(folder / name, on_line)}\)$"
    assert re.match(expected, lines[0]), lines[0]


def test_broken_yaml_is_named_with_its_line(capsys, folder):
    (folder / "calendar_overrides.yaml").write_text("years:\n  2027: [unclosed\n", encoding="utf-8")
    assert main(["config", "check", "--config", str(folder)]) == 2
    assert re.search(r"calendar_overrides\.yaml: not valid YAML at line \d+", capsys.readouterr().err.replace("\n", ""))


def test_the_run_refuses_a_broken_configuration_before_touching_the_store(capsys, folder, tmp_path, monkeypatch):
    edit(folder / "catalogue.yaml", "{id: N01, rule: dishonest_debtor,", "{id: N01, enabled: false, rule: dishonest_debtor,")
    monkeypatch.setenv("VALUECREDIT_CATALOGUE", str(folder / "catalogue.yaml"))
    db = tmp_path / "store" / "vc.duckdb"
    code = main(["run", "--date", "2026-11-28", "--landing", str(tmp_path / "landing"), "--db", str(db)])
    assert code == 2
    assert "the mandatory exclusion dishonest_debtor" in capsys.readouterr().err.replace("\n", "")
    assert not db.exists() and not (tmp_path / "landing").exists()  # nothing simulated, nothing written


def test_the_run_names_each_problem_of_a_broken_file_on_its_own_line(capsys, folder, tmp_path, monkeypatch):
    edit(folder / "catalogue.yaml", "version: 1", "version: 0\ncolour: red")
    monkeypatch.setenv("VALUECREDIT_CATALOGUE", str(folder / "catalogue.yaml"))
    assert main(["run", "--date", "2026-11-28", "--landing", str(tmp_path / "landing"), "--db", str(tmp_path / "s.duckdb")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("valuecredit run: error: ") and "version: must lie in [1, 1000000], found 0 (line" in lines[0]
    assert lines[1].startswith("valuecredit run: error: ") and "colour: not a known key" in lines[1]
