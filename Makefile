# One obvious command per task. Each installs what it needs first (uv, then the project).
UV ?= uv
.PHONY: install demo test lint bench

install:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --quiet --extra demo

demo: install
	$(UV) run mhub demo $(ARGS)

test: install
	$(UV) run pytest

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(UV) run python $$script; done
