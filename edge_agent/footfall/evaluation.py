"""Counted crossings against a hand count: matching, precision, recall and F1.

Totals hide errors that cancel (a missed entry and an invented one make a
perfect total), so every counted crossing is matched to one hand-labelled
crossing of the same direction within a few frames, or to none. This is how
the counter is evaluated (`benchmarks/footfall.py --truth`) and how an
installer checks a camera against a hand count (docs/footfall.md).

A truth file is JSON: `{"lines": [{"name": ..., "segment": [x1, y1, x2, y2],
"crossings": [{"frame": 175, "direction": "entry"}, ...]}, ...]}`; frames are
0-based in decode order, like `edge-agent footfall --events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .settings import FootfallError

DIRECTIONS = ("entry", "exit")
TOLERANCE_FRAMES = 15


@dataclass(frozen=True)
class TruthLine:
    name: str
    segment: tuple[float, float, float, float]
    crossings: tuple[tuple[int, str], ...]  # (frame, direction)


@dataclass(frozen=True)
class Score:
    """Matches of one direction (or both) on one line."""

    matched: int
    counted: int
    truth: int

    @property
    def precision(self) -> float:
        return self.matched / self.counted if self.counted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    @property
    def f1(self) -> float:
        total = self.counted + self.truth
        return 2 * self.matched / total if total else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(self.matched + other.matched, self.counted + other.counted, self.truth + other.truth)


def load_truth(path: Path) -> list[TruthLine]:
    """The lines of a truth file; a malformed one is a one-line error naming what is wrong."""
    try:
        raw = json.loads(path.read_text())
        lines = []
        for item in raw["lines"]:
            segment = tuple(float(v) for v in item["segment"])
            if len(segment) != 4:
                raise ValueError("segment must be [x1, y1, x2, y2]")
            crossings = tuple((int(c["frame"]), str(c["direction"])) for c in item["crossings"])
            if any(d not in DIRECTIONS for _, d in crossings):
                raise ValueError("direction must be entry or exit")
            lines.append(TruthLine(str(item.get("name", f"line {len(lines) + 1}")), segment, crossings))  # type: ignore[arg-type]
    except OSError as exc:
        raise FootfallError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FootfallError(f"{path}: not a footfall truth file ({exc})") from None
    return lines


def match_frames(counted: Iterable[int], truth: Iterable[int], tolerance: int = TOLERANCE_FRAMES) -> list[tuple[int, int]]:
    """The most one-to-one pairs (counted, truth) with |counted - truth| <= tolerance.

    Greedy in time order, which is optimal for points on a line: the earliest
    of the two lists' heads either pairs with the other head or with nothing.
    """
    counted, truth = sorted(counted), sorted(truth)
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < len(counted) and j < len(truth):
        if abs(counted[i] - truth[j]) <= tolerance:
            pairs.append((counted[i], truth[j]))
            i, j = i + 1, j + 1
        elif counted[i] < truth[j]:
            i += 1
        else:
            j += 1
    return pairs


def unmatched(counted: Iterable[int], truth: Iterable[int], tolerance: int = TOLERANCE_FRAMES) -> tuple[list[int], list[int]]:
    """(invented, missed): counted frames with no hand-labelled partner, and hand-labelled ones never counted."""
    counted, truth = sorted(counted), sorted(truth)
    pairs = match_frames(counted, truth, tolerance)
    invented, missed = list(counted), list(truth)
    for a, b in pairs:
        invented.remove(a)
        missed.remove(b)
    return invented, missed


def score_line(
    counted: Iterable[Mapping[str, object]], truth: TruthLine, tolerance: int = TOLERANCE_FRAMES
) -> dict[str, Score]:
    """Per direction and for both: counted events (`frame`, `direction`) against the hand count."""
    events = [(int(e["frame"]), str(e["direction"])) for e in counted]  # type: ignore[call-overload]
    scores = {}
    for direction in DIRECTIONS:
        mine = [f for f, d in events if d == direction]
        theirs = [f for f, d in truth.crossings if d == direction]
        scores[direction] = Score(len(match_frames(mine, theirs, tolerance)), len(mine), len(theirs))
    scores["both"] = scores["entry"] + scores["exit"]
    return scores
