# make run  — set up the virtualenv, migrate, seed demo accounts, start web + worker (embedded default)
# make test — run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install install-test browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt $(wildcard requirements/*.txt)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.txt
	$(BIN)/pip install --quiet -r requirements/test.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start

browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: install-test browser
	DJANGO_SETTINGS_MODULE=telehealth.settings.test $(BIN)/pytest

test-fast: install-test
	DJANGO_SETTINGS_MODULE=telehealth.settings.test $(BIN)/pytest -m "not browser and not worker and not slow"

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
