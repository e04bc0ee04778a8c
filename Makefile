# Every target works on a fresh machine with only python3: it makes .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# what the install depends on
BUILD_INPUTS := pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | cksum | cut -d' ' -f1)

.PHONY: test demo bench lint clean dist

$(STAMP): $(BUILD_INPUTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

test: $(STAMP) lint
	$(PY) -m pytest -q --cov --cov-fail-under=93

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) benchmarks/verify.py
	$(PY) benchmarks/middleware.py --e2e
	$(PY) benchmarks/wsgi.py
	$(PY) benchmarks/providers.py

# a pure-Python wheel (py3-none-any) and an sdist, from the PEP 517 backend
dist: $(STAMP)
	rm -rf dist && $(PY) -m build --outdir dist

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
