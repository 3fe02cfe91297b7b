"""The simulated chain's calendar: which days exist, which are holidays, how busy a day is.

Day indices run from 0 (the first day of the warm-up, which is simulated but not
written, so that customers have a past before the export starts, as in a real
POS system) to `total_days - 1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> set[date]:
    """Days the stores are closed: a generic European set."""
    easter = easter_sunday(year)
    return {
        date(year, 1, 1),
        easter + timedelta(days=1),
        date(year, 5, 1),
        date(year, 12, 25),
        date(year, 12, 26),
    }


@dataclass(frozen=True)
class Calendar:
    """`days` written days ending on `end`, preceded by `warmup` unwritten days."""

    end: date
    days: int
    warmup: int = 120

    @property
    def total_days(self) -> int:
        return self.warmup + self.days

    @property
    def first_day(self) -> date:
        """Day index 0 (the start of the warm-up)."""
        return self.end - timedelta(days=self.total_days - 1)

    @property
    def first_written_day(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    def date_of(self, index: int) -> date:
        return self.first_day + timedelta(days=int(index))

    @cached_property
    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.total_days)]

    @cached_property
    def weekday(self) -> np.ndarray:
        """0 = Monday ... 6 = Sunday, per day index."""
        return np.array([d.weekday() for d in self.dates], dtype=np.int8)

    @cached_property
    def holiday(self) -> np.ndarray:
        years = {d.year for d in self.dates}
        closed = set().union(*(public_holidays(y) for y in years))
        return np.array([d in closed for d in self.dates], dtype=bool)

    @cached_property
    def season(self) -> np.ndarray:
        """Relative shopping activity by time of year: a December peak, a summer dip,
        and the rush of the days before Christmas."""
        doy = np.array([d.timetuple().tm_yday for d in self.dates], dtype=float)
        level = 1.0 + 0.10 * np.cos(2 * np.pi * (doy - 350) / 365.25)
        level -= 0.08 * np.exp(-(((doy - 220) / 18) ** 2))  # holidays away in August
        pre_christmas = np.array([d.month == 12 and 18 <= d.day <= 24 for d in self.dates])
        return level * np.where(pre_christmas, 1.35, 1.0)
