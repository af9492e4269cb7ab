# The commands the README names. `make run` serves the embedded default; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-tools lint unit openapi bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=70"

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/custody serve --host 127.0.0.1 --port 8000

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/pytest -n 3 --dist loadfile -m "not postgres and not s3" tests

# Independent tools the tests check our formats with: Go's sumdb/note and sumdb/tlog
# (Debian's golang-golang-x-mod-dev), ExifTool, and openssl.
test-tools:
	@if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/golang.org/x/mod ] \
	    || ! command -v exiftool >/dev/null || ! perl -MArchive::Zip -e1 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      golang-go golang-golang-x-mod-dev libimage-exiftool-perl libarchive-zip-perl >/dev/null; \
	  else echo "test-tools: not root; install golang-go golang-golang-x-mod-dev libimage-exiftool-perl libarchive-zip-perl"; fi; \
	fi

test: $(VENV)/.dev lint test-tools
	$(BIN)/python -m tests.servers -- $(BIN)/pytest -n 3 --dist loadfile --cov --cov-report=term --durations=25 tests

openapi: $(VENV)/.dev
	$(BIN)/custody openapi > openapi.yaml

bench: $(VENV)/.dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
