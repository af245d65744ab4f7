"""Cross-origin access for the embeddable widget: pages on the origins in CORS_ORIGINS may call the API.

The widget posts JSON, so browsers send a preflight OPTIONS request first; Flask answers OPTIONS for
every route by itself and this hook adds the CORS headers to it and to the actual response.
"""
from __future__ import annotations

from flask import current_app, request

from app.api import bp

PREFLIGHT_MAX_AGE_S = 600


@bp.after_request
def add_cors_headers(response):
    origin = request.headers.get("Origin")
    allowed = current_app.config["CORS_ORIGINS"]
    if origin and ("*" in allowed or origin in allowed):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return response
