"""A night killed (SIGKILL) in the middle of each stage in turn, each run after a crash being killed
in the next stage, then run to the end, ends with the same tables, ledger, publication and reports,
byte for byte, as a night that was never interrupted; and what each crash leaves behind is never a
partial publication or a partial posting.

The killed night runs in a child process (`tests.crash_harness`), which counts the run's DuckDB
statements and kills itself just before the chosen one: the midpoint of the stage's statements, so
inside its transaction, between two sources, between two banks' files or two reports. This file
kills the ingestion and scoring stages; test_crash_late_stages.py the rest (tests/end_to_end/crash.py)."""

from tests.end_to_end.crash import EARLY_STAGES, killed_in_turn


def test_a_night_killed_in_the_middle_of_each_stage_in_turn_and_run_again_ends_byte_identical(
        crash_nights, night_in_child, clean_landing, tmp_path):
    killed_in_turn(crash_nights, night_in_child, clean_landing, EARLY_STAGES, tmp_path)
