# The two quick-start commands (`make run`, `make test`) work on a fresh clone:
# every target builds what it needs, starting from an empty .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYO3_PYTHON := $(abspath $(PY))
# cargo's test binaries embed CPython; they need to find libpython at run time.
PY_LIBDIR = $(shell $(PY) -c "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))")

.PHONY: run test build venv lint bench cargo-test pytest fuzz test-tools clean

$(VENV)/.ready: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.ready

# Release build of the extension, installed into .venv (editable: python/ is on sys.path).
build: venv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet

run: build
	$(VENV)/bin/ferrogate examples/hello.py:app --bind 127.0.0.1:8000 --access-log -

# The CPU-share tests measure the whole process, so they run on their own, after the rest
# (compressing, racing threads on the rate limit's table) and before the fuzzer, which keeps
# a core busy.
cargo-test: venv
	LD_LIBRARY_PATH=$(PY_LIBDIR) cargo test --release --quiet -- --skip fuzz_tests --skip cpu_share
	LD_LIBRARY_PATH=$(PY_LIBDIR) cargo test --release --quiet cpu_share
	LD_LIBRARY_PATH=$(PY_LIBDIR) cargo test --release --quiet fuzz_tests -- --nocapture

# Debian packages the tests drive as real peers: nginx (PROXY protocol in front of ferrogate,
# through its stream module), redis-server (the rate limit's store shared across hosts; it
# brings redis-cli), curl (the README's example commands; TLS: curl --cacert; HTTP/2:
# curl --http2), openssl (openssl s_client) and nghttp2-client (nghttp, h2load). Installed when
# missing; a test whose tool is missing fails.
TEST_DEBS := nginx libnginx-mod-stream redis-server curl openssl nghttp2-client
test-tools:
	@if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ] \
		|| ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
		|| ! command -v curl >/dev/null || ! command -v openssl >/dev/null \
		|| ! command -v nghttp >/dev/null || ! command -v h2load >/dev/null; then \
		echo "installing $(TEST_DEBS) for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBS) >/dev/null; \
	fi

pytest: build test-tools
	$(PY) -m pytest -q tests

test: cargo-test pytest

# The request-parsing fuzzer for SECONDS seconds (make test runs a bounded number of inputs).
SECONDS ?= 60
fuzz: venv
	FERROGATE_FUZZ_SECONDS=$(SECONDS) LD_LIBRARY_PATH=$(PY_LIBDIR) cargo test --release --quiet fuzz_tests -- --nocapture

lint: venv
	$(PY) -m pip install -q ruff mypy
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches tools
	$(VENV)/bin/mypy --ignore-missing-imports python/ferrogate

bench: build
	bash benches/e2e/run.sh

clean:
	rm -rf $(VENV) target
