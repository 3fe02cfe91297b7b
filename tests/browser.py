"""A real headless Chromium for the console's page, and a tour of every view of it.

Chromium and its driver are the Debian packages (/usr/bin/chromium, /usr/bin/chromedriver); Selenium is
pointed at both, so it never downloads a browser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1500,1000"]
# What each view shows once its data has loaded.
VIEW_LOADED = {
    "alerts": lambda d: text_of(d, "#alert-count") != "",
    "stores": lambda d: len(d.find_elements(By.CSS_SELECTOR, "#store-table tbody tr")) > 0,
    "footfall": lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ff-chart *")) > 0,
    "quality": lambda d: text_of(d, "#dq-summary") != "",
    "results": lambda d: text_of(d, "#roi-total") != "",
    "rounds": lambda d: text_of(d, "#release-summary") != "" and len(d.find_elements(By.CSS_SELECTOR,
                                                                                      "#round-table tr")) > 1,
    "users": lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-table tr")) > 1,
}


def chromium() -> Iterator[WebDriver]:
    """A headless Chromium with a throwaway profile, its console log kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def text_of(driver: WebDriver, selector: str) -> str:
    """The element's text; read again if the page re-rendered it in between (a pushed event does that)."""
    for _ in range(5):
        try:
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            return found[0].text if found else ""
        except StaleElementReferenceException:
            continue
    raise StaleElementReferenceException(f"{selector} kept being re-rendered")


def severe_errors(driver: WebDriver) -> list[str]:
    """The page's errors (failed requests, exceptions), but the session check before anyone logged in."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "/api/session" not in e["message"]]


def log_in(driver: WebDriver, url: str, username: str, password: str) -> WebDriverWait:  # type: ignore[type-arg]
    wait = WebDriverWait(driver, 15, ignored_exceptions=[StaleElementReferenceException])
    driver.get(url + "/")
    wait.until(lambda d: d.find_element(By.ID, "login-form").is_displayed())
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait.until(lambda d: text_of(d, "#who").startswith(username))
    return wait


def visit_every_view(driver: WebDriver, url: str, username: str, password: str) -> list[str]:
    """Log in as an admin and open every tab of the page; return the views that loaded (in tab order)."""
    wait = log_in(driver, url, username, password)
    visited = []
    for button in driver.find_elements(By.CSS_SELECTOR, "#tabs button"):
        view = button.get_attribute("data-view")
        button.click()
        wait.until(lambda d, v=view: d.find_element(By.ID, f"{v}-view").is_displayed() and VIEW_LOADED[v](d),
                   f"the {view} view did not load")
        toast = driver.find_element(By.ID, "toast")
        assert not (toast.is_displayed() and "error" in (toast.get_attribute("class") or "")), (
            f"the {view} view showed an error: {toast.text}")
        visited.append(view)
    return visited
