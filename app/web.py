"""The demo page at `/`: a stand-in for any site that embeds the chat widget with one script tag."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("web", __name__)

# The page runs only same-origin scripts and styles: the widget needs nothing else, and an answer
# that somehow carried markup could not run script even if it reached the DOM.
DEMO_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@bp.get("/")
def index():
    response = render_template("index.html")
    return response, 200, {"Content-Security-Policy": DEMO_PAGE_CSP}
