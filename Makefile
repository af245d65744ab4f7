# The two commands a newcomer needs: `make run` (install, prepare models/data/index, serve) and
# `make test` (install, run the whole test suite). Everything else here serves those two.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export FLASK_APP := wsgi:app

.PHONY: run test install browser prepare serve clean-artifacts

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when pyproject.toml changes. torch comes first, pinned, from the local CPU wheel.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Database schema, bundled corpus, base models, trained models and the index: each step is skipped
# when its output already exists, so a second `make run` starts serving at once.
prepare: install
	$(VENV)/bin/flask prepare

serve: prepare
	$(VENV)/bin/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

run: serve

# Debian's Chromium and ChromeDriver for the widget's browser test (skipped with a reason if missing).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || \
	  echo "chromium could not be installed: the browser test will be skipped"

test: install browser
	$(PY) -m pytest -q

clean-artifacts:
	rm -rf artifacts instance
