"""The demo page embeds the widget, and the widget's files are served with the right types."""
from __future__ import annotations

import re
from pathlib import Path

WIDGET_JS = Path(__file__).resolve().parent.parent / "app" / "static" / "widget.js"


def test_demo_page_embeds_the_widget(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert re.search(r'<script src="/static/widget\.js" data-api-base="[^"]*" defer></script>', page)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_widget_script_and_stylesheet_are_served(client):
    script = client.get("/static/widget.js")
    assert script.status_code == 200
    assert script.mimetype in {"text/javascript", "application/javascript"}
    assert b"/api/v1/chat" in script.data
    stylesheet = client.get("/static/widget.css")
    assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"


def test_widget_never_parses_strings_as_html():
    """The XSS guarantee in one grep: no API in the widget turns a string into markup."""
    source = WIDGET_JS.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"widget.js uses {sink}"
