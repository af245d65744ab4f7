"""The versioned JSON API (`/api/v1/...`): one module per resource, all on this blueprint."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Route modules register themselves on `bp` when imported: one line per module.

from app.api import admin, chat, cors, feedback, openapi  # noqa: E402,F401
from app.api import coref  # noqa: E402,F401
from app.api import review  # noqa: E402,F401
from app.api import keywords  # noqa: E402,F401
