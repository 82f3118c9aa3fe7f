# `make run` starts the whole stack on embedded defaults; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint typecheck pytest clean catalogs

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/truffle-ashby dev

# mypy runs beside the suite, which mostly waits on processes, timers and pages; at the lowest
# CPU priority, so it takes the cores the suite leaves idle instead of slowing the suite.
test: lint
	$(MAKE) --no-print-directory -j2 typecheck pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	nice -n 19 $(BIN)/mypy .

# The suite in PYTEST_WORKERS processes (pytest-xdist), a module's tests in one of them (its
# stacks and servers are its own), the longest modules handed out first (tests/conftest.py). Three on two cores: with two, the cores sit idle a third of
# the time while the tests wait on timers, pages and the processes they start (docs/testing.md).
# The hundreds of Python processes it starts share compiled bytecode, even where the
# environment says not to write any (PYTHONDONTWRITEBYTECODE; __pycache__ is ignored by git).
PYTEST_WORKERS ?= 3
pytest: $(INSTALLED)
	$(BIN)/python -m tests.utils.chromium
	$(BIN)/python -m tests.utils.system_tools
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest --numprocesses $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The candidate's words in every language (truffle/position/translations.py): extract, update, compile.
LOCALES := truffle/position/locales
catalogs: $(INSTALLED)
	$(BIN)/pybabel extract --mapping-file babel.cfg --no-location \
		--output-file $(LOCALES)/messages.pot .
	$(BIN)/pybabel update --input-file $(LOCALES)/messages.pot --output-dir $(LOCALES) \
		--no-fuzzy-matching
	$(BIN)/pybabel compile --directory $(LOCALES) --statistics

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
