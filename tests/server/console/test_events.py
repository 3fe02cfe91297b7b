"""The event feed: every change announced once, including a row committed late with an earlier time stamp."""

from __future__ import annotations

import json

from sqlalchemy import update

from server.central import open_central_db, store_alerts
from server.central.tables import alerts
from server.console.events import ChangeFeed, Watermark
from server.console.sessions import iso, now_utc

from .chain import alert_document


def test_a_watermark_announces_new_keys_and_changed_stamps_once() -> None:
    mark = Watermark()
    assert mark.fresh([("a", "2026-03-01T10:00:00.000000Z"), ("b", "2026-03-01T10:00:01.000000Z")]) == ["a", "b"]
    assert mark.since == "2026-03-01T10:00:01.000000Z"
    assert mark.fresh([("a", "2026-03-01T10:00:00.000000Z"), ("b", "2026-03-01T10:00:01.000000Z")]) == []
    assert mark.fresh([("b", "2026-03-01T10:00:02.000000Z")]) == ["b"]  # the same row changed again
    assert mark.window_start() == "2026-03-01T09:59:57.000000Z"  # 5 s behind its watermark


def test_the_feed_sees_a_late_commit_stamped_before_what_it_already_announced(central: str) -> None:
    with open_central_db(central) as db:
        feed = ChangeFeed(db)
        feed.prime()
        assert feed.poll() == []
        with db.write() as connection:
            document = alert_document("acme", "s1", 9, "red", 80, False)
            store_alerts(connection, "acme", "s1", [(document, json.dumps(document))], iso(now_utc()))
        (first,) = feed.poll()
        assert (first.kind, first.data["alert_id"], first.store) == ("alert", "acme-s1-000009", ("acme", "s1"))
        with db.write() as connection:  # a slower writer commits a row stamped 2 s before the one announced
            late = alert_document("acme", "s1", 10, "orange", 50, False)
            store_alerts(connection, "acme", "s1", [(late, json.dumps(late))], iso(now_utc()))
            connection.execute(update(alerts).where(alerts.c.alert_id == "acme-s1-000010").values(
                received_at=feed.marks["alert"].window_start(lag=3.0)))
        assert [e.data["alert_id"] for e in feed.poll() if e.kind == "alert"] == ["acme-s1-000010"]
        assert feed.poll() == []
