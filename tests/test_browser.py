"""The page in a real browser: `make run` as the README says, headless Chromium, a question, a citation.

Serves a copy of the corpus with an empty index folder, so the first page load also builds the
index (the fresh-clone path). Prints how long the first answer takes, and saves screenshots of
the three pages to a temporary folder, or to $RAG_SCREENSHOTS (``RAG_SCREENSHOTS=docs`` refreshes
the README's pictures), for design review.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
QUESTION = "How does InstructGPT compare with GPT-3?"
OFF_TOPIC = "Who won the 2018 World Cup?"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1100")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"`make run` exited with {server.returncode} before serving")
        if listening(port):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on port {port} within {timeout:.0f}s")


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop(server: subprocess.Popen, port: int) -> None:
    """End `make` and the streamlit it started (they share the process group we gave them), then
    wait until the port is closed, so a next start cannot mistake the old server for itself."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while (server.poll() is None or listening(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # anything of the group still there
    server.wait()


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are missing; run scripts/ensure_chromium.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def served(tmp_path):
    """Start `make run` on a free port over a corpus copy and an empty index folder."""
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "RAG_CORPUS_DIR": str(tmp_path / "corpus"),
           "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - held open across the fixture's yield
    servers: list[subprocess.Popen] = []

    def start() -> tuple[subprocess.Popen, float]:
        began = time.monotonic()
        server = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        servers.append(server)
        wait_for_port(port, server, timeout=300)
        return server, began

    def halt(server: subprocess.Popen) -> None:
        if server in servers:
            servers.remove(server)
            stop(server, port)

    yield start, f"http://127.0.0.1:{port}/", halt
    for server in list(servers):
        halt(server)
    log.close()


def visible(driver, css: str, timeout: float, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    locator = (By.CSS_SELECTOR, css)
    condition = (ec.text_to_be_present_in_element(locator, text) if text
                 else ec.visibility_of_element_located(locator))
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    return driver.find_element(*locator)


def ask(driver, question: str, answer_css: str) -> float:
    """Type a question into the chat input and submit it; seconds until ``answer_css`` shows."""
    from selenium.webdriver.common.keys import Keys

    count = len(driver.find_elements("css selector", answer_css))
    box = visible(driver, "[data-testid='stChatInputTextArea']", 30)
    box.send_keys(question)
    submitted = time.monotonic()
    box.send_keys(Keys.ENTER)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 120, poll_frequency=0.1).until(
        lambda d: len(d.find_elements("css selector", answer_css)) > count)
    return time.monotonic() - submitted


def open_page(driver, title: str, ready_css: str) -> None:
    visible(driver, f"[data-testid='stSidebarNav'] a[href$='/{title.lower()}']", 30).click()
    visible(driver, "h1", 30, title)
    visible(driver, ready_css, 60)


def settle(driver, seconds: float = 1.0) -> None:
    """Let fonts, charts and transitions finish before a screenshot."""
    time.sleep(seconds)


def capture(driver, path: Path, width: int = 1280, most: int = 2400) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so grow the window to it."""
    height = driver.execute_script(  # the tallest scrolled content plus the chrome around its box
        "let h = document.documentElement.scrollHeight;"
        "for (const e of document.querySelectorAll('*')) {"
        "  if (e.scrollHeight > e.clientHeight + 4)"
        "    h = Math.max(h, e.scrollHeight + innerHeight - e.clientHeight);"
        "} return h;")
    driver.set_window_size(width, max(900, min(most, int(height) + 100)))
    settle(driver, 1.5)
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 1100)


def test_a_question_in_the_browser_gets_a_cited_answer(served, browser, capsys, tmp_path):
    start, url, halt = served
    shots = Path(os.environ.get("RAG_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    server, began = start()
    listening = time.monotonic() - began
    browser.get(url)
    visible(browser, "[data-testid='stChatInputTextArea']", 300)  # model loaded, index built and opened
    page_ready = time.monotonic() - began
    answer_seconds = ask(browser, QUESTION, ".rag-card")
    first_answer = time.monotonic() - began

    answer = " ".join(visible(browser, ".rag-answer", 5).text.split())
    card = browser.find_element("css selector", ".rag-card")
    quote = " ".join(card.find_element("css selector", "mark").text.split())
    assert "[1]" in answer
    assert quote and quote in answer  # the answer's quote, highlighted in its passage
    assert "InstructGPT" in card.find_element("css selector", ".rag-passage").text
    reference = card.find_element("css selector", ".rag-ref")  # authors (year). title. venue. link
    assert card.find_element("css selector", ".rag-title").text in reference.text
    assert reference.find_element("css selector", "a").get_attribute("href").startswith("https://")
    capture(browser, shots / "screenshot.png")

    ask(browser, OFF_TOPIC, "[data-testid='stAlertContentWarning']")
    warning = browser.find_elements("css selector", "[data-testid='stAlertContentWarning']")[-1]
    assert "The sources do not" in warning.text
    capture(browser, shots / "screenshot-abstention.png")

    open_page(browser, "Sources", "[data-testid='stDataFrame']")
    capture(browser, shots / "screenshot-sources.png")

    open_page(browser, "Evaluation", "[data-testid='stFormSubmitButton'] button")
    browser.find_element("css selector", "[data-testid='stFormSubmitButton'] button").click()
    visible(browser, "[data-testid='stVegaLiteChart']", 300)
    capture(browser, shots / "screenshot-evaluation.png")
    halt(server)

    # Again over the index the first run built: the usual `make run` after `rag build`.
    server, began = start()
    browser.get(url)
    visible(browser, "[data-testid='stChatInputTextArea']", 300)
    warm_ready = time.monotonic() - began
    warm_answer = ask(browser, QUESTION, ".rag-card")
    warm_first = time.monotonic() - began
    with capsys.disabled():
        print(f"\n[browser] fresh index: port open {listening:.1f}s, page ready {page_ready:.1f}s "
              f"(model loaded, index built), question->answer {answer_seconds:.1f}s, "
              f"server start->first answer {first_answer:.1f}s")
        print(f"[browser] built index: page ready {warm_ready:.1f}s, question->answer {warm_answer:.1f}s, "
              f"server start->first answer {warm_first:.1f}s")
