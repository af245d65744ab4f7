"""Entry point for gunicorn (`gunicorn wsgi:app`) and the `flask` CLI (FLASK_APP=wsgi:app).

Under gunicorn (`gunicorn.conf.py` sets WARM_UP=1) the models and the index are loaded here, in the
preloading master, so that forked workers share them; admin commands skip that.
"""
import os

from app import create_app, warm_up

app = create_app()
if os.environ.get("WARM_UP") == "1":
    warm_up(app)
