"""What every data-quality check returns, whichever layer it guards: the Dagster asset checks turn
it into an `AssetCheckResult`, the CLI prints it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict
