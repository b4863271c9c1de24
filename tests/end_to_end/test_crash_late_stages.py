"""The crash test of test_crash_early_stages.py for the stages from the PD on: warnings, eligibility,
publication, the audit pack and the reports."""

from tests.end_to_end.crash import LATE_STAGES, killed_in_turn


def test_a_night_killed_in_the_middle_of_each_stage_in_turn_and_run_again_ends_byte_identical(
        crash_nights, night_in_child, clean_landing, tmp_path):
    killed_in_turn(crash_nights, night_in_child, clean_landing, LATE_STAGES, tmp_path)
