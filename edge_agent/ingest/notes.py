"""A staff member's free-text note, reduced to one word of a fixed vocabulary.

Notes are typed by people and hold whatever they typed: names, numbers,
health details. The box keeps only a category, found by a word stem in the
note (first match in the order below), so the text itself is never stored, not
even in quarantine, and nothing of it can leave the box.
"""

from __future__ import annotations

import re

OTHER = "other"
# category → word stems that put a note in it; a category's own name is among them, so categories
# read back (a quarantined row exported for fixing) keep their category
NOTE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "delivery": ("deliver", "parcel", "shipping", "courier", "late"),
    "staff": ("staff", "rude", "employee", "cashier", "manager", "impolite"),
    "product": ("product", "quality", "broken", "defect", "damag", "faulty", "expired", "stale", "rotten"),
    "price": ("price", "pricing", "expensive", "overcharg", "charged"),
    "queue": ("queue", "wait", "checkout", "till"),
    "stock": ("stock", "unavailable", "sold", "shortage"),
    "exchange": ("exchange", "refund", "return"),
    "loyalty": ("loyalty", "card", "points", "coupon", "voucher"),
    "opening_hours": ("opening", "hours", "closed"),
    "question": ("question", "ask", "info", "enquir", "inquir"),
}
VOCABULARY = (*NOTE_CATEGORIES, OTHER)
_WORDS = re.compile(r"[^\W\d_]+")
_CACHE_LIMIT = 10_000


class NoteCategories:
    """note text → category (None for an empty note); remembers frequent notes, which repeat a lot."""

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def category(self, note: object) -> str | None:
        if note is None or note == "":
            return None
        text = note if note.__class__ is str else str(note)
        found = self._cache.get(text)  # type: ignore[arg-type]
        if found is None and text not in self._cache:
            found = categorise(text)  # type: ignore[arg-type]
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[text] = found  # type: ignore[index]
        return found


def categorise(text: str) -> str | None:
    words = _WORDS.findall(text.lower())
    if not words:
        return None if not text.strip() else OTHER
    for category, stems in NOTE_CATEGORIES.items():
        if any(word.startswith(stems) for word in words):
            return category
    return OTHER
