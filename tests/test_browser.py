"""The app in a real browser: Debian's chromium driven by Selenium, nothing downloaded.

`./run test` installs the `chromium` and `chromium-driver` packages when they are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
QUESTION = "What is the value of India's S-400 contract?"
WAIT = 60  # seconds; a loaded 2-core machine answers in a few


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(seed_settings, seed_index, embedder, tmp_path_factory):
    """The app over the shared seed index (read only here), on a free loopback port."""
    from rag.app.startup import start
    from rag.app.state import AppState

    state = AppState(seed_settings, embedder, seed_index, tmp_path_factory.mktemp("uploads"))
    port = _free_port()
    app = start(state, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are missing: run `./run test`, which installs them "
            "(or `apt-get install -y chromium chromium-driver`)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _in_viewport(driver, element) -> bool:
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
        element,
    )


def test_ask_then_click_a_citation_shows_the_highlighted_span(browser, app_url, retriever, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from rag.answer.pipeline import ask

    expected = ask(QUESTION, retriever)
    assert not expected.abstained
    cited = expected.citations[0].text

    wait = WebDriverWait(browser, WAIT)
    browser.get(app_url)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#question textarea")))
    box.send_keys(QUESTION)
    browser.find_element(By.ID, "ask").click()

    sentences = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer .rag-sentences")))
    assert expected.short_answer in browser.find_element(By.CSS_SELECTOR, "#answer .rag-short strong").text
    assert cited.split()[0] in sentences.text

    link = sentences.find_element(By.CSS_SELECTOR, "a.rag-cite")
    link.click()
    card = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer .rag-card.rag-active")))
    mark = card.find_element(By.CSS_SELECTOR, ".rag-text mark")
    assert mark.is_displayed() and " ".join(mark.text.split()) == " ".join(cited.split())
    assert mark.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"  # highlighted, not plain text
    wait.until(lambda d: _in_viewport(d, mark))

    # The whole article opens scrolled to the same span.
    card.find_element(By.CSS_SELECTOR, "details.rag-article > summary").click()
    span = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer #rag-span-1")))
    assert " ".join(span.text.split()) == " ".join(cited.split())
    wait.until(lambda d: _in_viewport(d, span))

    shot = tmp_path / "app_citation.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, out / "app_citation.png")


def test_abstention_is_shown_as_its_own_state(browser, app_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    browser.get(app_url)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#question textarea")))
    box.send_keys("How tall is Mount Everest?")
    browser.find_element(By.ID, "ask").click()
    notice = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer .rag-abstain")))
    assert "does not answer" in notice.text
    assert browser.find_elements(By.CSS_SELECTOR, "#answer .rag-passage")  # the closest passages
