# rrqctl: `make demo` and `make check` install what is missing, then run.
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo check test lint bench deb man clean

demo:
	@sh tools/bootstrap.sh demo
	$(VENV)/bin/rrqctl demo

check:
	@sh tools/bootstrap.sh check
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

# the fast subset while developing (no slow tests)
test:
	@sh tools/bootstrap.sh check
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check rrqctl tests bench
	$(VENV)/bin/ruff format --check rrqctl tests bench
	$(VENV)/bin/mypy

bench:
	@sh tools/bootstrap.sh bench
	$(PY) -m bench

deb:
	@sh tools/bootstrap.sh check
	$(PY) -m tests.packaging.trixie build

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

man:
	$(PY) -m rrqctl.manpages man
