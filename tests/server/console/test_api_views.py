"""Store health, footfall and conversion, model rounds, measured uplift and decay, through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.central import open_central_db
from server.console.app import create_app
from server.console.settings import ConsoleSettings
from tests.postgres import postgres_database

from .chain import RED_CONTROL, RED_TREATED, populate
from .conftest import Login, log_in


def test_store_health_shows_state_outbox_model_cameras_alarms_and_missing_alerts(login: Login) -> None:
    # The chain's database is written once per test session: a status "at" its start must not read as stale.
    fresh = ConsoleSettings(stale_after_seconds=86_400)
    stores = {f"{s['chain']}/{s['store_id']}": s for s in login("vera", fresh).get("/api/stores").json()}
    assert list(stores) == ["acme/s1", "acme/s2", "bravo/s1"]
    s1, s2, bravo = stores["acme/s1"], stores["acme/s2"], stores["bravo/s1"]
    assert (s1["state"], s1["silent"], s1["outbox_unacked"], s1["model_version"], s1["camera_state"]) == (
        "online", False, 3, "fed-2026-02-28-r3-abcd1234", "ok")
    assert (s2["state"], s2["reason"], s2["last_seen"]) == ("offline", "connection lost", "2026-03-01T05:00:00.000000Z")
    assert (s2["model_version"], s2["cameras"], s2["camera_state"]) == (
        "central-2026-02-01", [{"source": "door", "state": "stalled"}], "degraded")
    assert s2["alarms"] == {"disk": "120 MB free"}
    assert (s2["open_gaps"], s2["missing_alerts"], s2["alerts"]) == (1, 2, 7)
    assert (bravo["state"], bravo["alerts"], bravo["camera_state"]) == ("unknown", 2, "none")


def test_an_online_store_without_a_recent_status_is_shown_silent(login: Login) -> None:
    stores = login("vera", ConsoleSettings(stale_after_seconds=0.0)).get("/api/stores").json()
    assert [(s["store_id"], s["state"], s["silent"]) for s in stores][:2] == [("s1", "online", True),
                                                                              ("s2", "offline", False)]


def test_footfall_and_conversion_per_day_and_per_hour(login: Login) -> None:
    client = login("sam")
    daily = client.get("/api/stores/acme/s1/footfall").json()
    assert [(p["period"], p["entries"], p["transactions"], p["conversion"]) for p in daily["points"]] == [
        ("2026-02-27", 400, 100, 0.25), ("2026-02-28", 500, 200, 0.4)]
    last_day = client.get("/api/stores/acme/s1/footfall", params={"days": 1, "bucket": "hour"}).json()["points"]
    assert [p["period"] for p in last_day] == [f"2026-02-28T{h:02d}:00" for h in range(9, 19)]
    assert {(p["entries"], p["exits"], p["transactions"], p["conversion"]) for p in last_day} == {(50, 50, 20, 0.4)}
    assert login("ada").get("/api/stores/acme/s2/footfall").json()["points"] == []


def test_model_rounds_show_auc_stores_privacy_budget_and_cost_per_round(login: Login) -> None:
    (release,) = login("sam").get("/api/rounds").json()
    assert (release["version"], release["chain"], release["auc"], release["epsilon"]) == (
        "fed-2026-02-28-r3-abcd1234", "acme", 0.87, 4.5)
    assert [(r["round"], r["auc"], r["trained"], r["failures"], r["epsilon"]) for r in release["rounds"]] == [
        (1, 0.81, ["s1", "s2"], 0, 1.5), (2, 0.84, ["s1"], 1, 3.0), (3, 0.86, ["s1", "s2"], 0, 4.5)]
    # what each round cost: wall time, the slowest store's training, and the rest (unknown where not recorded)
    assert [(r["wall_seconds"], r["train_seconds"], r["overhead_seconds"]) for r in release["rounds"]] == [
        (9.5, 6.0, 3.5), (12.0, 5.0, 7.0), (None, None, None)]


def record_red_outcomes(client: TestClient) -> None:
    """Red alerts: with action 3 of 4 stayed (one actual cost 25), in the control group 1 of 4."""
    for alert_id, outcome in zip(RED_TREATED, ("stayed", "stayed", "stayed", "churned"), strict=True):
        body = {"outcome": outcome, "cost": 25.0 if alert_id == RED_TREATED[0] else None}
        assert client.post(f"/api/alerts/{alert_id}/outcome", json=body).status_code == 200
    for alert_id, outcome in zip(RED_CONTROL, ("stayed", "churned", "churned", "churned"), strict=True):
        assert client.post(f"/api/alerts/{alert_id}/outcome", json={"outcome": outcome}).status_code == 200


def test_uplift_per_level_and_action_with_intervals_and_roi(login: Login) -> None:
    ada = login("ada")
    assert ada.get("/api/uplift").json()["by_level"] == []
    record_red_outcomes(ada)
    report = ada.get("/api/uplift").json()
    (red,) = report["by_level"]
    assert red["key"] == "red" and report["confidence"] == 0.95
    treated, control = red["treated"], red["control"]
    assert (treated["n"], treated["stayed"], control["n"], control["stayed"]) == (4, 3, 4, 1)
    assert (red["treated"]["rate"], red["control"]["rate"], red["uplift"]) == (0.75, 0.25, 0.5)
    # Newcombe by hand: Wilson(3/4) = (0.3006, 0.9544), Wilson(1/4) = (0.0456, 0.6994)
    assert red["uplift_low"] == pytest.approx(-0.1355, abs=5e-4)
    assert red["uplift_high"] == pytest.approx(0.7891, abs=5e-4)
    assert red["clv"] == 3200 and red["cost"] == 40 + 40 + 40 + 25  # the caps, and the cost recorded
    assert red["recovered"] == pytest.approx(1600) and red["net"] == pytest.approx(1455)
    assert red["roi"] == pytest.approx(1455 / 145)
    (action,) = report["by_action"]
    assert (action["key"], action["uplift"], action["control"]["n"]) == ("service_plan", 0.5, 4)
    assert report["total"]["levels"] == ["red"] and report["total"]["net"] == pytest.approx(1455)
    # a store's own view counts its own alerts only: s1 has 3 treated (all stayed) and 1 control (stayed)
    s1 = ada.get("/api/uplift", params={"chain": "acme", "store_id": "s1"}).json()["by_level"][0]
    assert (s1["treated"]["n"], s1["treated"]["rate"], s1["control"]["n"], s1["control"]["rate"]) == (3, 1.0, 1, 1.0)
    assert s1["uplift"] == 0.0
    assert login("sam").get("/api/uplift").json()["by_level"][0]["treated"]["n"] == 3


def test_decay_raises_the_retrain_signal_when_live_precision_falls_below_the_threshold(login: Login) -> None:
    ada = login("ada")
    record_red_outcomes(ada)
    report = ada.get("/api/decay").json()
    (march,) = report["periods"]
    assert (march["period"], march["outcomes"], march["churned"], march["precision"]) == ("2026-03", 4, 3, 0.75)
    assert march["expected"] == pytest.approx((70 + 74 + 69 + 62) / 4 / 100)
    assert report["signal"]["retrain"] is False
    assert report["signal"]["reason"] == "4 control outcome(s) known, 30 needed to judge"
    strict = login("ada", ConsoleSettings(retrain_below=0.8, decay_min_outcomes=4)).get("/api/decay").json()["signal"]
    assert strict["retrain"] is True and strict["current"]["precision"] == 0.75
    assert strict["reason"] == "live precision 75% (2026-03, 4 outcomes) is below 80%: retrain the model"
    lenient = login("ada", ConsoleSettings(retrain_below=0.5, decay_min_outcomes=4)).get("/api/decay").json()["signal"]
    assert lenient["retrain"] is False


def test_the_api_runs_the_same_on_postgresql(quick_passwords: None) -> None:
    with postgres_database() as url:
        populate(url)
        with open_central_db(url) as db:
            ada = log_in(TestClient(create_app(db)), "ada")
            sam = log_in(TestClient(create_app(db)), "sam")
            assert ada.get("/api/alerts", params={"level": "red"}).json()["total"] == 8
            assert sam.get("/api/alerts").json()["total"] == 8
            assert sam.get("/api/alerts/acme-s2-000001").status_code == 404
            record_red_outcomes(ada)
            (red,) = ada.get("/api/uplift").json()["by_level"]
            assert (red["uplift"], red["cost"], red["roi"]) == (0.5, 145, pytest.approx(1455 / 145))
            assert ada.get("/api/decay").json()["periods"][0]["precision"] == 0.75
            assert [s["store_id"] for s in ada.get("/api/stores").json()] == ["s1", "s2", "s1"]
            assert len(ada.get("/api/stores/acme/s1/footfall").json()["points"]) == 2
            assert ada.get("/api/rounds").json()[0]["rounds"][2]["epsilon"] == 4.5
            assert ada.get("/api/actions").json() == ["callback", "manager_contact", "member_offer", "service_plan"]
