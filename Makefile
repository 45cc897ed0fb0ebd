# Set-up and checks. Every target creates .venv on its own, so a fresh clone needs
# nothing but `make test` (or `make demo`).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export GOFLAGS := -mod=mod
export GOPROXY := off

.PHONY: test lint bench demo go go-grpc proto clean

$(STAMP): pyproject.toml
	@python3 -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing Debian's python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

# The Go peer in tests/go is built by the tests with Debian's Go.
go:
	@command -v go >/dev/null 2>&1 || { \
	  echo "go not found: installing Debian's golang-go"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }

test: $(STAMP) go
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy --strict src

bench: $(STAMP) go
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Regenerate the checked-in gRPC Python code in src/seesaw_healthcheck/grpcapi/ from
# proto/ (grpcio-tools and mypy-protobuf, pinned in pyproject.toml).
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

demo: $(STAMP)
	$(PY) -m seesaw_healthcheck.cli.demo examples/demo.toml

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
