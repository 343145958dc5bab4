# One obvious command per task. Each goes through scripts/dev.py, which needs only python3: it
# finds uv (or fetches it, checked, into .tools/), and uv installs exactly what uv.lock pins.
DEV = python3 scripts/dev.py
.PHONY: install demo test lint bench

install:
	$(DEV) install

demo:
	$(DEV) demo $(ARGS)

test:
	$(DEV) test $(ARGS)

lint:
	$(DEV) lint

bench:
	$(DEV) bench
