"""A night killed (SIGKILL) in the middle of each stage in turn, then re-run, ends with the same
tables, ledger, publication and reports, byte for byte, as a night that was never interrupted; and
what the crash leaves behind is never a partial publication or a partial posting.

The killed night runs in a child process (`tests.crash_harness`), which counts the run's DuckDB
statements and kills itself just before the chosen one: the midpoint of the stage's statements, so
inside its transaction, between two sources, between two banks' files or two reports. This file
kills the ingestion and scoring stages; test_crash_late_stages.py the rest (tests/end_to_end/crash.py)."""

import pytest

from tests.end_to_end.crash import EARLY_STAGES, killed_and_rerun


@pytest.mark.parametrize("stage", EARLY_STAGES)
def test_a_night_killed_in_the_middle_of_a_stage_and_rerun_ends_byte_identical(crash_nights, night_in_child,
                                                                                  clean_landing, stage, tmp_path):
    killed_and_rerun(crash_nights, night_in_child, clean_landing, stage, tmp_path)
