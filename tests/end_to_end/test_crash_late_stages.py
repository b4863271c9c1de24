"""The crash test of test_crash_early_stages.py for the stages from the PD on: warnings, eligibility,
publication, the audit pack and the reports."""

import pytest

from tests.end_to_end.crash import LATE_STAGES, killed_and_rerun


@pytest.mark.parametrize("stage", LATE_STAGES)
def test_a_night_killed_in_the_middle_of_a_stage_and_rerun_ends_byte_identical(crash_nights, night_in_child,
                                                                                  clean_landing, stage, tmp_path):
    killed_and_rerun(crash_nights, night_in_child, clean_landing, stage, tmp_path)

