"""The chat page at / in headless Chromium (selenium): a typed message gets a
streamed reply that grows as tokens arrive, and Stop ends it."""
from __future__ import annotations

import os
import shutil
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from .conftest import API_KEY  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Set to a path (docs/chat_page.png) to keep the screenshot the test takes.
SCREENSHOT_ENV = "OPENTRANSFORMER_CHAT_SCREENSHOT"

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # root in a container has no user namespace for Chromium's sandbox, and /dev/shm may be tiny
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,720"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _set(driver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def _reply(driver) -> str:
    replies = driver.find_elements(By.CSS_SELECTOR, "#log .assistant")
    return replies[-1].text if replies else ""


def test_streamed_reply_grows_and_stop_ends_it(live, browser, tmp_path):
    browser.get(live.base_url + "/")
    wait = WebDriverWait(browser, 60, poll_frequency=0.05)
    _set(browser, "api_key", API_KEY)
    browser.find_element(By.ID, "temperature").click()  # leaving the key field fires its change event
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    _set(browser, "temperature", "0")
    _set(browser, "max_tokens", "600")
    _set(browser, "input", "Write a long story about a lighthouse keeper and a storm.")
    browser.find_element(By.ID, "send").click()

    first = wait.until(lambda d: _reply(d))
    # a few lines of text, so the stop below lands mid-reply and the screenshot shows one
    grown = wait.until(lambda d: len(_reply(d)) > len(first) + 150 and _reply(d))
    assert grown.startswith(first)
    assert browser.find_element(By.ID, "stop").is_enabled()

    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: not d.find_element(By.ID, "stop").is_enabled())
    stopped = _reply(browser)
    time.sleep(1.5)  # several tokens' time: a stream still running would have added text
    assert _reply(browser) == stopped
    assert browser.find_element(By.ID, "send").is_enabled()
    assert browser.find_elements(By.CSS_SELECTOR, "#log .user")[-1].text.startswith("Write a long story")

    browser.save_screenshot(str(tmp_path / "chat_page.png"))
    if os.environ.get(SCREENSHOT_ENV):
        browser.save_screenshot(os.environ[SCREENSHOT_ENV])
