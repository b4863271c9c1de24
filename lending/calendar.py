"""Chinese working days (with 调休) for deadlines: chinesecalendar, or the operator's override file.

A deadline is never computed from a guessed calendar: a year that neither the installed
chinesecalendar nor the override file declares is an error naming the year and the file to edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

from valuecredit.configfile import ConfigError, read_yaml

DEFAULT_OVERRIDES = Path(__file__).resolve().parents[1] / "config" / "calendar_overrides.yaml"


class CalendarError(ConfigError):
    """A date's working-day status is unknown, or the override file is unusable."""


@dataclass(frozen=True)
class YearOverride:
    """A year as the State Council announced it: the holidays on weekdays and the weekend working days."""

    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass
class WorkingDays:
    overrides_path: Path = DEFAULT_OVERRIDES
    overrides: dict[int, YearOverride] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> WorkingDays:
        path = Path(path or DEFAULT_OVERRIDES)
        if not path.exists():
            return cls(path, {})
        doc = read_yaml(path, CalendarError, "calendar override") or {}
        years = doc.get("years", {}) if isinstance(doc, dict) else None
        if not isinstance(years, dict):
            raise CalendarError(f"{path}: years: expected a mapping of year to holidays and workdays")
        out = {}
        for year, spec in years.items():
            where = f"{path}: years.{year}"
            if not isinstance(year, int) or not isinstance(spec, dict) or set(spec) - {"holidays", "workdays"}:
                raise CalendarError(f"{where}: expected `YEAR: {{holidays: [dates], workdays: [dates]}}`")
            days = {}
            for kind in ("holidays", "workdays"):
                values = spec.get(kind) or []
                for v in values:
                    if not isinstance(v, date) or v.year != year:
                        raise CalendarError(f"{where}.{kind}: {v!r} is not a date in {year}")
                days[kind] = frozenset(values)
            if days["holidays"] & days["workdays"]:
                raise CalendarError(f"{where}: {sorted(days['holidays'] & days['workdays'])} listed as both holiday and workday")
            if not days["holidays"]:
                raise CalendarError(f"{where}.holidays: a declared year needs its public holidays")
            out[year] = YearOverride(days["holidays"], days["workdays"])
        return cls(path, out)

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
