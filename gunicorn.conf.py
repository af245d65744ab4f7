"""gunicorn settings for `make run` / production; every value can be overridden from the environment.

The app is preloaded in the master so model weights and the index are read once and shared by the
forked workers (copy-on-write); each worker then follows the index's `current` pointer by itself.
"""
import multiprocessing
import os

# Load models and the index in the master before forking (read by wsgi.py).
os.environ.setdefault("WARM_UP", "1")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
