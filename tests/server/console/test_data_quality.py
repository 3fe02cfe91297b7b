"""Data quality per store through the API: each input's days, and the late-export and quarantine-jump alarms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from server.central import open_central_db, record_metrics, utc_now_iso
from server.console.data_quality import DataQualityRules
from server.console.settings import ConsoleSettings

from .conftest import Login

TODAY = datetime.now(UTC).date()
EVENTS_LATE = "data_quality.events.export_late"
POS_JUMP = "data_quality.pos.quarantine_jump"


def day(days_ago: int, accepted: int, quarantined: int = 0, reasons: dict[str, int] | None = None,
        runs: int = 1, failed: int = 0) -> dict[str, Any]:
    return {"day": (TODAY - timedelta(days=days_ago)).isoformat(), "runs": runs, "failed": failed,
            "accepted": accepted, "quarantined": quarantined, "reasons": reasons or ({"bad amount": quarantined}
                                                                                   if quarantined else {})}


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(central: str, inputs: dict[str, Any], gaps: list[dict[str, Any]] | None = None, store_id: str = "s1",
         today: date = TODAY) -> None:
    """A metrics message of acme/`store_id` as the aggregator stores it."""
    document = {"schema": "retail.store-metrics/1", "chain": "acme", "store_id": store_id, "at": utc_now_iso(),
                "alarms": {"disk": "120 MB free"} if store_id == "s2" else {},
                "data_quality": {"today": today.isoformat(), "days": 14, "inputs": inputs,
                                 "camera_gaps": gaps or []}}
    with open_central_db(central) as db, db.write() as connection:
        record_metrics(connection, "acme", store_id, document, utc_now_iso())


def a_bad_day(central: str) -> None:
    """POS: a normal fortnight (0.5% quarantined), then 10% today; customer events: nightly until two days ago."""
    send(central, {
        "pos": {"last_export_at": hours_ago(2), "daily": [day(d, 1000, 5) for d in range(1, 14)] + [
            day(0, 900, 100, {"bad amount": 80, "missing timestamp": 20})]},
        "events": {"last_export_at": hours_ago(50), "daily": [day(d, 300) for d in range(2, 14)]},
        "identities": {"last_export_at": None, "daily": []},
    }, gaps=[{"day": day(1, 0)["day"], "source": "camera:door", "gaps": 2, "seconds": 330.0}])


def alarms(client: Any, store_id: str = "s1") -> dict[str, str]:
    (store,) = [s for s in client.get("/api/stores").json() if (s["chain"], s["store_id"]) == ("acme", store_id)]
    return dict(store["alarms"])


def test_the_board_shows_each_input_per_day_with_its_rate_reasons_and_last_export(login: Login, central: str) -> None:
    a_bad_day(central)
    board = login("sam").get("/api/stores/acme/s1/data-quality", params={"days": 7}).json()
    assert (board["today"], board["days"]) == (TODAY.isoformat(), 7)
    assert [i["input"] for i in board["inputs"]] == ["events", "identities", "pos"]
    pos = {i["input"]: i for i in board["inputs"]}["pos"]
    assert [d["day"] for d in pos["days"]] == [day(d, 0)["day"] for d in range(6, -1, -1)]
    assert pos["days"][-1] == {**day(0, 900, 100, {"bad amount": 80, "missing timestamp": 20}), "rate": 0.1}
    assert (pos["today_rate"], round(pos["trailing_rate"], 6)) == (0.1, round(5 / 1005, 6))
    assert board["camera_gaps"] == [{"day": day(1, 0)["day"], "source": "camera:door", "gaps": 2, "seconds": 330.0}]
    assert set(board["alarms"]) == {EVENTS_LATE, POS_JUMP}
    assert board["alarms"][POS_JUMP] == ("10.0% of today's POS rows quarantined (100 of 1000), usually 0.5% "
                                         "(last 14 days)")
    assert board["alarms"][EVENTS_LATE].startswith("no customer events export for 50 h (last ")


def test_the_alarms_join_the_stores_own_in_the_store_list_and_clear_when_the_data_recovers(
        login: Login, central: str) -> None:
    a_bad_day(central)
    send(central, {"pos": {"last_export_at": hours_ago(1), "daily": [day(d, 1000) for d in range(5)]}},
         store_id="s2")
    vera = login("vera")
    assert set(alarms(vera)) == {EVENTS_LATE, POS_JUMP}
    assert alarms(vera, "s2") == {"disk": "120 MB free"}, "a store whose data is fine keeps only its own alarms"
    send(central, {  # tonight's events arrived, and the POS export was re-sent clean
        "pos": {"last_export_at": hours_ago(0.5), "daily": [day(0, 1000, 4)]},
        "events": {"last_export_at": hours_ago(1), "daily": [day(0, 300)]},
    })
    assert alarms(vera) == {}


def test_the_thresholds_are_the_consoles_settings(login: Login, central: str) -> None:
    a_bad_day(central)
    patient = ConsoleSettings(data_quality=DataQualityRules(export_late_hours=72, jump_ratio=30))
    assert alarms(login("vera", patient)) == {}
    assert set(alarms(login("vera", ConsoleSettings(data_quality=DataQualityRules(min_rows=5000))))) == {EVENTS_LATE}


def test_no_alarm_for_what_the_store_does_not_normally_send_or_for_a_quiet_day(login: Login, central: str) -> None:
    send(central, {
        "events": {"last_export_at": hours_ago(60), "daily": [day(3, 300), day(9, 300)]},  # only now and then
        "identities": {"last_export_at": hours_ago(24 * 40), "daily": [day(d, 90) for d in range(40, 50)]},  # stopped
        "pos": {"last_export_at": hours_ago(3), "daily": [day(d, 1000) for d in range(1, 10)] + [day(0, 20, 10)]},
    })
    client = login("vera")
    assert alarms(client) == {}, "two exports in four weeks, one stopped 40 days ago, 30 rows today"
    events = {i["input"]: i for i in client.get("/api/stores/acme/s1/data-quality").json()["inputs"]}
    assert events["pos"]["today_rate"] == 1 / 3


def test_a_store_that_reports_no_data_quality_has_an_empty_board(login: Login) -> None:
    board = login("sam").get("/api/stores/acme/s1/data-quality").json()
    assert (board["today"], board["inputs"], board["camera_gaps"], board["alarms"]) == (None, [], [], {})


def test_a_staff_account_sees_only_its_stores_board(login: Login, central: str) -> None:
    a_bad_day(central)
    assert login("sol").get("/api/stores/acme/s1/data-quality").status_code == 403
    assert login("sol").get("/api/stores/acme/s2/data-quality").status_code == 200
    assert login("ada").get("/api/stores/acme/s1/data-quality", params={"days": 0}).status_code == 422
