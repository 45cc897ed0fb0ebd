# Set-up and checks. Every target creates .venv on its own, so a fresh clone needs
# nothing but `make test` (or `make demo`).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export GOFLAGS := -mod=mod
export GOPROXY := off
# apt-get waits up to 5 minutes for dpkg's lock (another apt run, unattended upgrades)
# instead of failing at once. That option does not cover the lock `apt-get update` takes
# on its lists (apt 2.6), so update is tried again every 5 s while that one is held, as long.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300
APT_UPDATE = for try in $$(seq 60); do \
	  out=$$($(APT_GET) update -qq 2>&1) && break; \
	  case "$$out" in \
	    *"Could not get lock"*) echo "apt-get update: the apt lists are locked; waiting"; sleep 5;; \
	    *) printf '%s\n' "$$out" >&2; exit 1;; \
	  esac; \
	done

.PHONY: test test-pure lint bench demo go go-grpc peers faults proto fuzz clean cc compiled

# The editable install is not compiled: the `compiled` target builds in place with the
# venv's mypyc, and again whenever a compiled module's source changes.
$(STAMP): pyproject.toml
	@python3 -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing Debian's python3-venv"; \
	  $(APT_UPDATE); $(APT_GET) install -y -qq python3-venv; \
	  python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	SEESAW_HEALTHCHECK_COMPILE=0 $(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

# The compiled build (hatch_build.py): the modules of build_info.COMPILED_MODULES compiled
# with mypyc into src/seesaw_healthcheck/ (git ignores them). `cc` installs Debian's gcc and
# the Python headers when missing. A source edited since is caught at import: the package
# then runs as plain Python and says so (seesaw-healthcheck -version, the start-up log).
COMPILED := src/seesaw_healthcheck/_compiled.txt
COMPILED_SOURCES := $(shell python3 hatch_build.py --sources)

cc:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing="gcc"; \
	include=$$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); \
	[ -f "$$include/Python.h" ] || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "not found:$$missing; installing Debian's$$missing"; \
	  $(APT_UPDATE); $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

compiled: $(COMPILED)

$(COMPILED): hatch_build.py src/seesaw_healthcheck/build_info.py $(COMPILED_SOURCES) | $(STAMP) cc
	$(PY) hatch_build.py

# The Go peer in tests/go is built by the tests with Debian's Go.
go:
	@command -v go >/dev/null 2>&1 || { \
	  echo "go not found: installing Debian's golang-go"; \
	  $(APT_UPDATE); $(APT_GET) install -y -qq golang-go; }

# The Go gRPC client in tests/go_grpc is built by the tests from proto/ with Debian's protoc,
# its Go plugins and Go gRPC packages (tests/grpcclient.py). Debian's grpc-go 1.33 marshals
# through github.com/golang/protobuf, which must be the 1.5 series (built on
# google.golang.org/protobuf) to take protoc-gen-go 1.28's messages; the 1.3 series, which
# apt picks for golang-google-grpc-dev alone, panics on them.
GO_GRPC_DEBS := protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
                golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev

go-grpc: go
	@missing=$$(for p in $(GO_GRPC_DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -qx 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's" $$missing; \
	  $(APT_UPDATE); $(APT_GET) install -y -qq $(GO_GRPC_DEBS); \
	fi

# Real peers of the status page, /metrics and unit file tests: Debian's chromium,
# prometheus and systemd (for systemd-analyze; installing it does not make it PID 1).
peers:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  echo "not found:$$missing; installing Debian's$$missing"; \
	  $(APT_UPDATE); $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

# The fault tests' tools (tests/test_faults.py): Debian's faketime, to step the wall clock
# of the server alone, and gcc, to build the fix it needs (tests/faketime/). prlimit and
# mount come with util-linux.
faults:
	@missing=""; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  echo "not found:$$missing; installing Debian's$$missing"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

# Every test against the build users get (compiled), then the fast tests of the compiled
# modules against the plain-Python fallback, so that neither rots.
test: $(STAMP) compiled go go-grpc peers faults
	$(PY) -c 'from seesaw_healthcheck import build_info; print("build:", build_info.describe())'
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-pure

# The unit tests of the modules the compiled build compiles (the only ones that differ
# between the builds), on plain Python.
PURE_TESTS := tests/test_reactor.py tests/test_spurious_wakeups.py tests/test_worker_schedule.py \
              tests/test_check_state.py tests/test_workers.py tests/test_checker_tcp.py \
              tests/test_checker_udp.py tests/test_checker_http.py tests/test_build.py
test-pure: $(STAMP)
	SEESAW_HEALTHCHECK_PURE_PYTHON=1 $(PY) -m pytest -q -m 'not slow' $(PURE_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts hatch_build.py
	$(VENV)/bin/ruff format --check src tests benchmarks scripts hatch_build.py
	$(VENV)/bin/mypy --strict src

bench: $(STAMP) go
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Regenerate the checked-in gRPC Python code in src/seesaw_healthcheck/grpcapi/ from
# proto/ (grpcio-tools and mypy-protobuf, pinned in pyproject.toml).
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

# Coverage-guided fuzzing (atheris): every target for FUZZ_SECONDS each; crash inputs land
# in tests/fuzz/crashes/<target>/. FUZZ_TARGETS=gob_typed picks targets.
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
fuzz: $(STAMP)
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

# `make demo DEMO_ARGS=--grpc`: the checks go to the server over its gRPC API instead.
demo: $(STAMP)
	$(PY) -m seesaw_healthcheck.cli.demo $(DEMO_ARGS) examples/demo.toml

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
	python3 hatch_build.py --clean
