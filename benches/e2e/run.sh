#!/usr/bin/env bash
# End-to-end benchmark bootstrap: installs wrk + the peer servers (idempotently),
# then hands over to bench.py. Knobs: BENCH_SERVERS, BENCH_SCENARIOS,
# BENCH_DURATION, BENCH_RUNS, BENCH_QUICK, BENCH_CONNECTIONS (see bench.py --help).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
dpkg -s libev-dev >/dev/null 2>&1 || need_apt+=(libev-dev)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx)  # the static rows' anchor (middleware_scenarios.py)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # the TLS rows' certificate (tls_scenarios.py)
command -v h2load >/dev/null 2>&1 || need_apt+=(nghttp2-client)  # the HTTP/2 rows (http2_scenarios.py)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)  # their check request
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[e2e] apt-get install ${need_apt[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Bench venv: rebuilt only when requirements.txt changes (stamp holds its hash).
REQ="$HERE/requirements.txt"
STAMP="$VENV/.ready"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "[e2e] preparing bench venv in $VENV (uwsgi/bjoern compile from source; takes a few minutes)" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # -j1-ish: keep compiles light on the 2-core box.
    MAKEFLAGS="-j1" CPUCOUNT=1 "$VENV/bin/python" -m pip install -q -r "$REQ"
    echo "$want" > "$STAMP"
fi

exec "$VENV/bin/python" "$HERE/bench.py" "$@"
