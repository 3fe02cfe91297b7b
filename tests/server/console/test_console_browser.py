"""The console page in a real headless Chromium: log in, filter alerts, record an outcome, see uplift change.

The browser is tests/browser.py's. A screenshot of the uplift table is kept under
test-artifacts/ (or $CHURN_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from server.central import open_central_db
from tests.browser import chromium, text_of

from .chain import PASSWORD, alert_document, store_documents
from .process import ConsoleProcess

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    yield from chromium()


@pytest.fixture
def running(central: str, tmp_path: Path) -> Iterator[ConsoleProcess]:
    with httpx.Client() as client:  # outcomes known before the operator opens the page
        console = ConsoleProcess(central, tmp_path).start()
        client.base_url = httpx.URL(console.url)
        token = client.post("/api/login", json={"username": "ada", "password": PASSWORD}).json()["csrf_token"]
        for alert_id, outcome in (("acme-s1-000004", "stayed"), ("acme-s1-000007", "churned"),
                                  ("acme-s1-000003", "churned")):
            response = client.post(f"/api/alerts/{alert_id}/outcome", json={"outcome": outcome},
                                   headers={"X-CSRF-Token": token})
            assert response.status_code == 200
    yield console
    console.kill()


def artifacts() -> Path:
    folder = Path(os.environ.get("CHURN_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_operator_filters_records_an_outcome_and_sees_the_uplift_change(
        browser: WebDriver, running: ConsoleProcess, central: str) -> None:
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    browser.get(running.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
    browser.find_element(By.ID, "username").send_keys("ada")
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "login-button").click()
    wait.until(lambda d: text_of(d, "#login-error") == "wrong username or password")
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait.until(lambda d: text_of(d, "#alert-count") == "1–17 of 17 alerts")
    assert text_of(browser, "#who") == "ada (admin)"

    # the uplift before: red, 2 treated outcomes (1 stayed), 1 control (churned)
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=results]").click()
    wait.until(lambda d: text_of(d, "#uplift-level tr[data-key=red] .t-n") == "2")
    assert text_of(browser, "#uplift-level tr[data-key=red] .uplift").startswith("+50.0 pts")

    # filter the queue to acme/s1's red alerts
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=alerts]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#f-store option[value='acme/s1']"))
    Select(browser.find_element(By.ID, "f-store")).select_by_value("acme/s1")
    Select(browser.find_element(By.ID, "f-level")).select_by_value("red")
    wait.until(lambda d: text_of(d, "#alert-count") == "1–4 of 4 alerts")
    rows = wait.until(lambda d: [(r.get_attribute("data-alert-id"), r.text)
                                 for r in d.find_elements(By.CSS_SELECTOR, "#alert-table tbody tr")])
    assert [alert_id for alert_id, _ in rows] == [
        "acme-s1-000002", "acme-s1-000003", "acme-s1-000004", "acme-s1-000007"]
    assert all(text.startswith("red") and "acme/s1" in text for _, text in rows)

    # open an alert and record that the customer stayed, with what the action cost
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#alert-table tr[data-alert-id=acme-s1-000002]").click()
               or True)
    wait.until(lambda d: d.find_element(By.ID, "alert-detail").get_attribute("data-alert-id") == "acme-s1-000002")
    Select(browser.find_element(By.ID, "outcome-kind")).select_by_value("stayed")
    browser.find_element(By.ID, "outcome-cost").send_keys("25")
    browser.find_element(By.ID, "record-outcome").click()
    wait.until(lambda d: "stayed by ada (cost 25.00)" in text_of(d, "#alert-detail .history"))
    wait.until(lambda d: "stayed" in text_of(d, "#alert-table tr[data-alert-id=acme-s1-000002] .state"))

    # the uplift after: 3 treated (2 stayed), cost 2 caps of 40 and the 25 recorded
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=results]").click()
    wait.until(lambda d: text_of(d, "#uplift-level tr[data-key=red] .t-n") == "3")
    red = "#uplift-level tr[data-key=red]"
    assert text_of(browser, f"{red} .t-rate").startswith("66.7%")
    assert text_of(browser, f"{red} .uplift").startswith("+66.7 pts")
    assert text_of(browser, f"{red} .cost") == "105.00"
    assert text_of(browser, "#retrain").startswith("Model precision: 1 control outcome(s) known")
    (artifacts() / "console-uplift.png").write_bytes(browser.get_screenshot_as_png())

    # the model rounds: each round's AUC and what it cost (wall time, the slowest store's training, overhead)
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=rounds]").click()
    first = "#round-table tr[data-round='1']"
    wait.until(lambda d: text_of(d, f"{first} .overhead") == "3.5")
    assert (text_of(browser, f"{first} .wall"), text_of(browser, f"{first} .train")) == ("9.5", "6.0")
    assert text_of(browser, "#round-table tr[data-round='3'] .overhead") == "–"

    # a new alert reaches the open page without a reload
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=alerts]").click()
    wait.until(lambda d: d.find_element(By.ID, "alert-table").get_attribute("aria-busy") == "false")
    assert text_of(browser, "#alert-count") == "1–4 of 4 alerts"
    with open_central_db(central) as db, db.write() as connection:
        store_documents(connection, [alert_document("acme", "s1", 9, "red", 99, False, recent_events=[
            {"kind": "complaint", "days_ago": 12, "value": None}, {"kind": "survey", "days_ago": 30, "value": 3}])])
    wait.until(lambda d: text_of(d, "#toast") == "New red alert at acme/s1 (score 99)")  # the pushed event
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alert-table tr[data-alert-id=acme-s1-000009]"))
    assert text_of(browser, "#alert-count") == "1–5 of 5 alerts"

    # its detail shows the customer's recent events beside the reasons
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#alert-table tr[data-alert-id=acme-s1-000009]").click()
               or True)
    wait.until(lambda d: d.find_element(By.ID, "alert-detail").get_attribute("data-alert-id") == "acme-s1-000009")
    events = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#alert-detail .why .recent-events li")]
    assert events == ["complaint 12 days ago", "survey score 3, 30 days ago"]
    assert "last visit 41 days ago" in text_of(browser, "#alert-detail .why .reasons")
    (artifacts() / "console-alerts.png").write_bytes(browser.get_screenshot_as_png())
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # the only failed requests: the page asking for a session before login, and the wrong password
    assert [e for e in errors if "/api/session" not in e and "/api/login" not in e] == []


def test_an_operator_sees_a_stores_data_quality_and_its_alarms(browser: WebDriver, running: ConsoleProcess,
                                                                central: str) -> None:
    from .test_data_quality import a_bad_day, day

    a_bad_day(central)
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    browser.get(running.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
    browser.find_element(By.ID, "username").send_keys("ada")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait.until(lambda d: text_of(d, "#who") == "ada (admin)")

    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=stores]").click()
    alarms = wait.until(lambda d: text_of(d, "#store-table tr[data-store='acme/s1'] td.alarm"))
    assert "no customer events export for 50 h" in alarms and "10.0% of today's POS rows quarantined" in alarms

    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=quality]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#dq-store option[value='acme/s1']"))
    Select(browser.find_element(By.ID, "dq-store")).select_by_value("acme/s1")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dq-alarms .signal")) == 2)
    today = day(0, 0)["day"]
    row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f".dq-input[data-input=pos] tr[data-day='{today}']"))
    assert row.text.split()[:6] == [today, "1", "0", "900", "100", "10.0%"]
    assert "bad amount: 80, missing timestamp: 20" in row.text
    assert text_of(browser, ".dq-input[data-input=pos] .dq-facts").endswith("today 10.0% quarantined · usually 0.5%")
    assert "camera:door" in text_of(browser, "#dq-gaps") and "6 min" in text_of(browser, "#dq-gaps")
    assert browser.find_elements(By.CSS_SELECTOR, "#dq-chart svg path.line.s-pos")
    (artifacts() / "console-data-quality.png").write_bytes(browser.get_screenshot_as_png())
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in errors if "/api/session" not in e] == []
