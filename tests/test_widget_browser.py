"""The chat widget end to end: the demo page in headless Chromium against the app on a real HTTP server.

Needs Debian's `chromium` and `chromium-driver` (or CHROMIUM_BINARY / CHROMEDRIVER pointing elsewhere);
skipped with the reason where they are missing.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from app.models import ChatMessage, Document, Feedback
from app.services.pipeline import DOCUMENTS_FILE
from indexer.versions import current_version, publish, version_path

pytestmark = pytest.mark.browser

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_CANDIDATES = ("chromedriver",)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
WAIT_SECONDS = 20
MOBILE_VIEWPORT = {"width": 360, "height": 740}
HOST_ID = "customs-chat-widget"
MARKUP = '<img src=x onerror="window.__injected=1;alert(1)"><script>window.__injected=2</script>'
MARKUP_DOC_ID = "T-002"


def _locate(env_name: str, names: tuple[str, ...]) -> str | None:
    configured = os.environ.get(env_name)
    if configured:
        return configured if Path(configured).exists() else None
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = _locate("CHROMIUM_BINARY", CHROMIUM_CANDIDATES)
    chromedriver = _locate("CHROMEDRIVER", CHROMEDRIVER_CANDIDATES)
    if not chromium or not chromedriver:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver, "
                    "or set CHROMIUM_BINARY and CHROMEDRIVER)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def _serve(flask_app):
    """The app on 127.0.0.1 on a free port, served by a real threaded HTTP server; yields its URL."""
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def live_chat(chat_app):
    yield from _serve(chat_app)


@pytest.fixture(scope="module")
def markup_chat_app(chat_app, tmp_path_factory):
    """chat_app's database and published index copied aside, with one FAQ answer carrying markup.

    The answer is changed where `flask index build` would put it (the Document row and the index
    version's documents snapshot, which is what the chat endpoint answers from) instead of running a
    build: on this machine a build takes minutes, and the shared `chat_app` stays untouched.
    """
    root = tmp_path_factory.mktemp("markup-chat")
    database = root / "chat.db"
    source_database = chat_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(source_database)) as source, closing(sqlite3.connect(database)) as target:
        source.backup(target)
    source_index, index_dir = Path(chat_app.config["INDEX_DIR"]), root / "index"
    version = current_version(source_index)
    shutil.copytree(version_path(source_index, version), version_path(index_dir, version))
    publish(index_dir, version)

    app = create_app({**chat_app.config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "INDEX_DIR": index_dir})
    with app.app_context():
        doc = db.session.scalar(select(Document).where(Document.doc_id == MARKUP_DOC_ID))
        doc.answer = f"{doc.answer} {MARKUP}"
        db.session.commit()
        answer = doc.answer
    snapshot = version_path(index_dir, version) / DOCUMENTS_FILE
    documents = json.loads(snapshot.read_text(encoding="utf-8"))
    for entry in documents:
        if entry["doc_id"] == MARKUP_DOC_ID:
            entry["answer"] = answer
    snapshot.write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")
    return app


@pytest.fixture
def live_markup_chat(markup_chat_app):
    yield from _serve(markup_chat_app)


@pytest.fixture
def live_page(app):
    """The plain app (no models) for tests that script the API's responses in the page."""
    yield from _serve(app)


class Widget:
    """The widget as a user meets it: queries go through its shadow root."""

    def __init__(self, driver, url: str):
        self.driver = driver
        driver.get(url)
        self.wait(lambda _: self.root.find_elements(By.CSS_SELECTOR, ".launcher"))

    def wait(self, condition, message: str = ""):
        return WebDriverWait(self.driver, WAIT_SECONDS).until(condition, message)

    @property
    def root(self):
        return self.driver.find_element(By.ID, HOST_ID).shadow_root

    def find(self, selector: str, within=None):
        return (within or self.root).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str, within=None):
        return (within or self.root).find_elements(By.CSS_SELECTOR, selector)

    def open(self) -> None:
        self.find(".launcher").click()
        self.wait(lambda _: self.find(".panel").is_displayed(), "panel did not open")

    def replies(self):
        return self.find_all(".msg-bot[data-message-id]")

    def errors(self):
        return self.find_all(".msg-error")

    def _settled(self, replies_before: int, errors_before: int) -> bool:
        done = len(self.replies()) > replies_before or len(self.errors()) > errors_before
        return done and not self.find_all(".typing")

    def send(self, text: str) -> None:
        """Type a message and press Enter; returns once the reply (or an error) is shown."""
        replies_before, errors_before = len(self.replies()), len(self.errors())
        box = self.find(".composer textarea")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        self.wait(lambda _: self._settled(replies_before, errors_before), f"no reply to {text!r}")

    def click_and_settle(self, element) -> None:
        replies_before, errors_before = len(self.replies()), len(self.errors())
        element.click()
        self.wait(lambda _: self._settled(replies_before, errors_before), "no reply after the click")

    def active_element_class(self) -> str:
        return self.driver.execute_script(
            "const host = document.getElementById(arguments[0]);"
            "return document.activeElement === host ? host.shadowRoot.activeElement.className : '';", HOST_ID)


def _assert_no_alert(driver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text


def _document(flask_app, doc_id: str) -> Document:
    with flask_app.app_context():
        doc = db.session.scalar(select(Document).where(Document.doc_id == doc_id))
        db.session.expunge(doc)
        return doc


# ---- the real path: the demo page, the chat API and its retrieval index -------------------------

def test_answer_related_question_feedback_and_reload(browser, live_chat, chat_app):
    faq = _document(chat_app, "T-001")
    widget = Widget(browser, live_chat)
    widget.open()
    assert browser.execute_script(
        "return document.getElementById(arguments[0]).shadowRoot.activeElement.tagName", HOST_ID) == "TEXTAREA"

    widget.send(faq.question)
    first = widget.replies()[-1]
    assert first.get_attribute("data-route") == "retrieval"
    assert widget.find(".answer", first).text == faq.answer
    assert widget.find(".source-question", first).text == faq.question
    assert widget.find(".category", first).text == faq.category
    assert not widget.find_all(".badge", first)

    related = widget.find_all(".related-button", first)
    assert related, "the reply offers related questions"
    assert faq.question not in [button.text for button in related], "the source is not offered again"
    followed = related[0].text
    widget.click_and_settle(related[0])
    second = widget.replies()[-1]
    assert widget.find_all(".msg-user")[-1].text.endswith(followed)
    assert widget.find(".source-question", second).text == followed

    widget.find(".thumb[data-helpful='false']", first).click()
    widget.find(".reason textarea", first).send_keys("더 자세히 알려 주세요")
    widget.find(".reason .primary-button", first).click()
    widget.wait(lambda _: "감사" in widget.find(".feedback-status", first).text, "feedback not confirmed")
    first_message_id = first.get_attribute("data-message-id")
    with chat_app.app_context():
        feedback = db.session.scalars(select(Feedback).join(ChatMessage)
                                      .where(ChatMessage.message_id == first_message_id)).one()
        assert (feedback.helpful, feedback.comment) == (False, "더 자세히 알려 주세요")
        assert (feedback.message.doc_id, feedback.message.user_text) == ("T-001", faq.question)

    browser.refresh()
    widget = Widget(browser, live_chat)
    widget.wait(lambda _: len(widget.replies()) == 2, "the conversation did not survive the reload")
    restored = widget.replies()[0]
    assert widget.find(".answer", restored).text == faq.answer
    assert widget.find(".thumb[aria-pressed='true']", restored).get_attribute("data-helpful") == "false"
    assert widget.find(".panel").is_displayed(), "an open panel stays open across the reload"

    widget.find(".composer textarea").send_keys(Keys.ESCAPE)
    widget.wait(lambda _: not widget.find(".panel").is_displayed(), "Escape did not close the panel")
    assert "launcher" in widget.active_element_class()
    _assert_no_alert(browser)


def test_markup_in_answers_and_messages_is_shown_as_text(browser, live_markup_chat, markup_chat_app):
    faq = _document(markup_chat_app, MARKUP_DOC_ID)
    assert faq.answer.endswith(MARKUP)
    widget = Widget(browser, live_markup_chat)
    widget.open()

    widget.send(faq.question)
    assert widget.find(".answer", widget.replies()[-1]).text == faq.answer
    widget.send(f"<b>굵게</b> {MARKUP}")
    assert widget.find_all(".msg-user")[-1].text.endswith(f"<b>굵게</b> {MARKUP}")

    assert not widget.find_all("img, script, b")
    assert browser.execute_script("return window.__injected === undefined")
    _assert_no_alert(browser)


# ---- rendering of replies the real corpus does not produce on demand: responses scripted in the page --

SCRIPT_FETCH = """
// Replace fetch with a queue of scripted outcomes: {status, body} | {networkError: true} | {hold: true}.
window.__outcomes = arguments[0];
window.__requests = [];
window.fetch = (url, init) => {
  window.__requests.push({url: String(url), body: JSON.parse(init.body)});
  const outcome = window.__outcomes.shift();
  if (outcome.networkError) return Promise.reject(new TypeError('Failed to fetch'));
  const response = () => new Response(JSON.stringify(outcome.body),
      {status: outcome.status, headers: {'Content-Type': 'application/json'}});
  if (outcome.hold) return new Promise((resolve) => { window.__release = () => resolve(response()); });
  return Promise.resolve(response());
};
"""

CANDIDATES = [{"doc_id": "T-001", "question": "해외여행 후 입국할 때 여행자 휴대품 면세한도는 얼마인가요?", "score": 0.2},
              {"doc_id": "M-001", "question": "이사화물도 면세가 되나요?", "score": 0.1}]
GENERATED = {"session_id": "session-1234", "message_id": "m-gen", "route": "generation",
             "answer": "반가워요! 오늘 하루도 힘내세요.", "confidence": 0.03, "keywords": [], "source": None,
             "candidates": CANDIDATES, "latency_ms": 12.0}
ANSWERED = {**GENERATED, "message_id": "m-faq", "route": "retrieval", "answer": "1인당 미화 800달러까지입니다.",
            "confidence": 0.9, "source": {**CANDIDATES[0], "category": "면세범위"}}


def test_generated_reply_is_marked_and_errors_are_readable(browser, live_page):
    widget = Widget(browser, live_page)
    browser.execute_script(SCRIPT_FETCH, [
        {"status": 200, "body": GENERATED, "hold": True},
        {"status": 503, "body": {"error": {"code": "service_unavailable", "message": "index not built yet"}}},
        {"networkError": True},
        {"status": 200, "body": ANSWERED},
    ])
    widget.open()

    box = widget.find(".composer textarea")
    box.send_keys("안녕 반가워", Keys.ENTER)
    widget.wait(lambda _: widget.find_all(".typing"), "no typing indicator while waiting")
    browser.execute_script("window.__release()")
    widget.wait(lambda _: widget.replies() and not widget.find_all(".typing"))
    generated = widget.replies()[-1]
    assert widget.find(".badge", generated).text == "자동 생성된 답변 · 공식 안내가 아닙니다"
    assert not widget.find_all(".source", generated)
    assert [b.text for b in widget.find_all(".related-button", generated)] == [c["question"] for c in CANDIDATES]

    widget.send("면세한도")
    error = widget.errors()[-1]
    assert "상담 서비스가 준비 중입니다" in error.text and "index not built yet" in error.text

    widget.send("면세한도 다시")
    error = widget.errors()[-1]
    assert "서버에 연결할 수 없습니다" in error.text
    widget.click_and_settle(widget.find(".retry", error))
    assert len(widget.errors()) == 1, "a successful retry replaces its error"
    assert widget.find(".answer", widget.replies()[-1]).text == ANSWERED["answer"]

    requests = browser.execute_script("return window.__requests")
    assert requests[0]["body"] == {"message": "안녕 반가워"}
    assert requests[-1]["body"] == {"message": "면세한도 다시", "session_id": GENERATED["session_id"]}


def test_fits_a_360px_screen(browser, live_page):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {**MOBILE_VIEWPORT, "deviceScaleFactor": 1, "mobile": True})
    try:
        widget = Widget(browser, live_page)
        browser.execute_script(SCRIPT_FETCH, [{"status": 200, "body": ANSWERED}])
        widget.open()
        widget.send("면세한도 얼마예요?")
        panel = widget.find(".panel").rect
        assert (panel["x"], panel["width"]) == (0, MOBILE_VIEWPORT["width"])
        assert panel["height"] == MOBILE_VIEWPORT["height"]
        for element in widget.find_all(".answer, .related-button, .composer textarea, .send"):
            rect = element.rect
            assert rect["x"] >= 0 and rect["x"] + rect["width"] <= MOBILE_VIEWPORT["width"], element.text
        assert not widget.find(".launcher").is_displayed(), "the full-screen panel hides the launcher"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

