"""Chinese working days (with 调休) for deadlines: chinesecalendar, or the operator's override file.

A deadline is never computed from a guessed calendar: a year that neither the installed
chinesecalendar nor the override file declares is an error naming the year and the file to edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
from pydantic import StrictInt, field_validator, model_validator

from valuecredit.configfile import ConfigError, IsoDate, Schema, validated

DEFAULT_OVERRIDES = Path(__file__).resolve().parents[1] / "config" / "calendar_overrides.yaml"


class CalendarError(ConfigError):
    """A date's working-day status is unknown, or the override file is unusable."""


@dataclass(frozen=True)
class YearOverride:
    """A year as the State Council announced it: the holidays on weekdays and the weekend working days."""

    holidays: frozenset[date]
    workdays: frozenset[date]


class _Year(Schema):
    holidays: list[IsoDate]  # the weekdays off
    workdays: list[IsoDate] = []  # the weekend days worked (调休)

    @field_validator("holidays")
    @classmethod
    def _announced(cls, holidays: list[date]) -> list[date]:
        if not holidays:
            raise ValueError("a declared year needs its public holidays")
        return holidays

    @model_validator(mode="after")
    def _not_both(self) -> _Year:
        if both := sorted(set(self.holidays) & set(self.workdays)):
            raise ValueError(f"{[d.isoformat() for d in both]} listed as both holiday and workday")
        return self


class _OverridesFile(Schema):
    """config/calendar_overrides.yaml: the State Council's notice for each year chinesecalendar lacks."""

    years: dict[StrictInt, _Year] = {}

    @field_validator("years")
    @classmethod
    def _dates_of_their_year(cls, years: dict[int, _Year]) -> dict[int, _Year]:
        for year, y in years.items():
            for kind in ("holidays", "workdays"):
                if wrong := [d.isoformat() for d in getattr(y, kind) if d.year != year]:
                    raise ValueError(f"{year}.{kind}: {', '.join(wrong)} is not a date in {year}")
        return years


@dataclass
class WorkingDays:
    overrides_path: Path = DEFAULT_OVERRIDES
    overrides: dict[int, YearOverride] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> WorkingDays:
        path = Path(path or DEFAULT_OVERRIDES)
        if not path.exists():
            return cls(path, {})
        f, _ = validated(path, _OverridesFile, CalendarError, "calendar override", empty={})
        return cls(path, {year: YearOverride(frozenset(y.holidays), frozenset(y.workdays))
                          for year, y in f.years.items()})

    def is_workday(self, d: date) -> bool:
        if d.year in self.overrides:  # the operator's declaration wins, also over chinesecalendar
            o = self.overrides[d.year]
            if d in o.workdays:
                return True
            return d.weekday() < 5 and d not in o.holidays
        try:
            return chinese_calendar.is_workday(d)
        except NotImplementedError:
            raise CalendarError(
                f"{d.isoformat()}: the working-day calendar for {d.year} is not known (chinesecalendar "
                f"{getattr(chinese_calendar, '__version__', '')} covers up to "
                f"{max(x.year for x in chinese_calendar.constants.holidays)}); add the State Council's "
                f"{d.year} holiday notice to {self.overrides_path} under years.{d.year}") from None

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (start itself not counted)."""
        d, left = start, n
        while left > 0:
            d += timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        return d
