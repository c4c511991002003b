"""The ferrogate.middleware rows of the end-to-end benchmark: static files, an IP deny list, a
rate limit and a mount, each against the peers that can do the same thing, plus nginx as the
anchor for static files and for refusals (its `deny` and `limit_req`). ferrogate serves
native_apps.py (its lifted middleware); the Python peers serve apps.py's plain-Python
middleware or peer_apps.py's whitenoise / werkzeug; granian and uWSGI serve static files with
their own flags. bench.py merges `scenarios()` and `servers()` into its tables and appends
`targets()` to the report. Knows no wrk and no processes.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

import apps
from definitions import HOST, Scenario, Server, expect_body, expect_status

# The middleware scenarios, in report order. Each names its peers: only these run it.
NAMES = ("static1k", "static1m", "deny403", "ratelimit429", "mount3")
STATIC_PEERS = ("ferrogate", "granian", "uwsgi", "gunicorn", "nginx")
PYTHON_PEERS = ("ferrogate", "gunicorn", "granian", "bjoern")
# The refusal rows: the Python peers, and nginx refusing in C as the physical anchor.
REFUSAL_PEERS = PYTHON_PEERS + ("nginx",)


def _static(name: str, file: str, title: str) -> Scenario:
    return Scenario(
        name,
        "hello",  # granian and uWSGI: hello behind their own static-file flags
        title,
        path=f"/static/{file}",
        check=expect_body(apps.STATIC_FILES[file]),
        servers=STATIC_PEERS,
        apps={"ferrogate": "native_apps:static_files", "gunicorn": "peer_apps:static_whitenoise"},
        server_args={
            # granian serves --static-path-mount under --static-path-route (default /static).
            "granian": ["--static-path-mount", apps.STATIC_DIR, "--static-path-route", "/static"],
            # --tcp-nodelay: without it uWSGI's head and file go out as two writes and Nagle
            # holds the second for the client's delayed ACK (1 KiB: 91 req/s, p99 48 ms).
            "uwsgi": ["--static-map", f"/static={apps.STATIC_DIR}", "--tcp-nodelay"],
        },
        labels={
            "ferrogate": "StaticFiles (lifted)",
            "granian": "--static-path-mount",
            "uwsgi": "--static-map",
            "gunicorn": "whitenoise",
        },
    )


def scenarios() -> dict:
    items = [
        _static("static1k", "1k.bin", "GET a 1 KiB static file"),
        _static("static1m", "1m.bin", "GET a 1 MiB static file"),
        Scenario(
            "deny403",
            "deny_loopback",
            "every request refused by an IP deny list (403)",
            status=403,
            check=expect_status(403),
            servers=REFUSAL_PEERS,
            apps={"ferrogate": "native_apps:deny_loopback"},
            labels={"ferrogate": "IPFilter (lifted)", "nginx": "deny (anchor)"}
            | dict.fromkeys(PYTHON_PEERS[1:], "Python"),
        ),
        Scenario(
            "ratelimit429",
            "token_bucket",
            'every request refused by a rate limit of "1/h", burst 1 (429)',
            status=429,
            check=expect_status(429),  # the readiness probe took the one request allowed
            servers=REFUSAL_PEERS,
            apps={"ferrogate": "native_apps:rate_limited"},
            labels={"ferrogate": "RateLimit (lifted)", "nginx": "limit_req (anchor)"}
            | dict.fromkeys(PYTHON_PEERS[1:], "Python"),
        ),
        Scenario(
            "mount3",
            "hello",
            "hello behind a 3-entry mount, GET /c/",
            path="/c/",
            check=expect_body(apps.HELLO),
            servers=("ferrogate", "granian", "gunicorn"),
            apps={
                "ferrogate": "native_apps:mount3",
                "granian": "peer_apps:mount3_werkzeug",
                "gunicorn": "peer_apps:mount3_werkzeug",
            },
            labels={
                "ferrogate": "Mount (lifted)",
                "granian": "DispatcherMiddleware",
                "gunicorn": "DispatcherMiddleware",
            },
        ),
    ]
    return {s.name: s for s in items}


# ----------------------------------------------------------------------------- nginx

NGINX = "/usr/sbin/nginx"
NGINX_DIR = os.path.join(tempfile.gettempdir(), "ferrogate-bench-nginx")

# One worker, sendfile, no access log, keep-alive connections never closed by request count
# (nginx closes after 1000 by default; no WSGI peer here does). Otherwise Debian's defaults:
# tcp_nopush on, no open_file_cache (each request opens, fstats and closes the file, as
# ferrogate does). `/` answers the readiness probe; in the refusal rows it refuses, as the
# other servers' `/` does there: `deny` by CIDR (the access module) for deny403, and
# `limit_req` at its lowest rate, 1 a minute and no burst (one request, then 429s), for
# ratelimit429. No `return` there: it runs in the rewrite phase, before either module would
# look at the request.
NGINX_ROOT = {
    # Each refusal is logged at `error` (there is no switch for it): `crit` keeps it off
    # stderr, as ferrogate's refusals stay out of a log the bench does not ask for.
    "deny_loopback": "deny 127.0.0.0/8; error_log stderr crit;",
    "token_bucket": (
        "limit_req zone=bench nodelay; limit_req_status 429; limit_req_log_level info;"
    ),
}
NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx-{port}.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    default_type application/octet-stream;
    limit_req_zone $binary_remote_addr zone=bench:1m rate=1r/m;
    server {{
        listen {host}:{port};
        location /static/ {{ alias {root}/; }}
        location / {{ {root_rule} }}
    }}
}}
"""


def _nginx_argv(app: str, port: int) -> list:
    """nginx ignores the app; its configuration is written for the port it is started on."""
    os.makedirs(NGINX_DIR, exist_ok=True)
    conf = os.path.join(NGINX_DIR, f"nginx-{port}.conf")
    with open(conf, "w") as fh:
        fh.write(
            NGINX_CONF.format(
                dir=NGINX_DIR,
                host=HOST,
                port=port,
                root=apps.STATIC_DIR,
                root_rule=NGINX_ROOT.get(app.rpartition(":")[2], 'return 200 "Hello, world!";'),
            )
        )
    return [NGINX, "-p", NGINX_DIR, "-c", conf, "-e", "stderr"]


def servers() -> dict:
    nginx = Server(
        "nginx",
        "nginx (anchor)",
        "workers",
        _nginx_argv,
        version_argv=[NGINX, "-v"],
        opt_in=True,
    )
    return {nginx.name: nginx}


# ----------------------------------------------------------------------------- targets


def _ok(res: Optional[dict]) -> bool:
    return bool(res and res.get("ok") and res.get("rps"))


def _yes(met: bool) -> str:
    return "met" if met else "**missed**"


def _static_targets(results: dict, scn: str) -> list:
    row = results.get(scn, {})
    fg, nginx = row.get("ferrogate"), row.get("nginx")
    if not _ok(fg):
        return [f"| {scn} | ferrogate did not run | - |"]
    out = []
    peers = [(n, r) for n, r in row.items() if n not in ("ferrogate", "nginx") and _ok(r)]
    if peers:
        name, best = max(peers, key=lambda p: p[1]["rps"])
        ratio = fg["rps"] / best["rps"]
        out.append(
            f"| {scn}: req/s ≥ every WSGI peer | {fg['rps']:,.0f} against {name}'s "
            f"{best['rps']:,.0f} ({ratio:.2f}×) | {_yes(ratio >= 1.0)} |"
        )
    if _ok(nginx) and fg.get("cpu_us_per_req") and nginx.get("cpu_us_per_req"):
        ratio = fg["cpu_us_per_req"] / nginx["cpu_us_per_req"]
        out.append(
            f"| {scn}: CPU per request ≤ 1.5× nginx's | {fg['cpu_us_per_req']:.1f} µs against "
            f"{nginx['cpu_us_per_req']:.1f} ({ratio:.2f}×) | {_yes(ratio <= 1.5)} |"
        )
    return out


def _against_hello(results: dict, scn: str, what: str, met) -> str:
    fg, hello = results.get(scn, {}).get("ferrogate"), results.get("hello", {}).get("ferrogate")
    if not (_ok(fg) and _ok(hello)):
        return f"| {scn}: {what} | needs ferrogate's {scn} and hello rows in the same run | - |"
    ratio = fg["rps"] / hello["rps"]
    return (
        f"| {scn}: {what} | {fg['rps']:,.0f} against hello's {hello['rps']:,.0f} "
        f"({ratio:.2f}×; CPU {fg['cpu_us_per_req']:.1f} against {hello['cpu_us_per_req']:.1f} "
        f"µs/req) | {_yes(met(ratio))} |"
    )


def _refusal_anchor(results: dict, scn: str) -> Optional[str]:
    """nginx refusing the same requests in C: how far below hello a refusal can go here."""
    row = results.get(scn, {})
    fg, nginx = row.get("ferrogate"), row.get("nginx")
    hello = results.get("hello", {}).get("ferrogate")
    if not (_ok(fg) and _ok(nginx) and _ok(hello)):
        return None
    return (
        f"| {scn}: nginx's own refusal, for scale | {nginx['rps']:,.0f} req/s, "
        f"{nginx['cpu_us_per_req']:.1f} µs/req: {nginx['rps'] / hello['rps']:.2f}× ferrogate's "
        f"hello; ferrogate's refusal takes {fg['cpu_us_per_req'] / nginx['cpu_us_per_req']:.2f}× "
        f"nginx's CPU | informational |"
    )


def targets(results: dict) -> str:
    """The issue's targets for these rows, and each server's row against its own hello."""
    if not any(n in results for n in NAMES):
        return ""
    L = ["## Middleware rows: the targets\n", "| target | measured | |", "|---|---|---|"]
    for scn in ("static1k", "static1m"):
        if scn in results:
            L += _static_targets(results, scn)
    for scn in ("deny403", "ratelimit429"):
        if scn in results:
            L.append(_against_hello(results, scn, "≥ 1.5× ferrogate's hello", lambda r: r >= 1.5))
            anchor = _refusal_anchor(results, scn)
            if anchor:
                L.append(anchor)
    if "mount3" in results:
        L.append(_against_hello(results, "mount3", "within 3% of hello", lambda r: r >= 0.97))
    L.append("")
    hello = results.get("hello", {})
    rows = []
    for scn in NAMES:
        for name, res in results.get(scn, {}).items():
            base = hello.get(name)
            if _ok(res) and _ok(base):
                rows.append(
                    f"| {scn} | {name} | {res['rps'] / base['rps']:.2f}× | "
                    f"{res['cpu_us_per_req']:.1f} − {base['cpu_us_per_req']:.1f} = "
                    f"{res['cpu_us_per_req'] - base['cpu_us_per_req']:+.1f} |"
                )
    if rows:
        L += [
            "Each server against its own hello row of the same run:\n",
            "| scenario | server | req/s ÷ its hello | CPU µs/req − its hello's |",
            "|---|---|--:|--:|",
            *rows,
            "",
        ]
    L += [
        "Peers: static files: granian `--static-path-mount DIR --static-path-route /static`, "
        "uWSGI `--static-map /static=DIR --tcp-nodelay`, gunicorn gthread serving "
        '`WhiteNoise(hello, root=DIR, prefix="static/")`, nginx 1 worker (`sendfile on`, '
        "`tcp_nopush on`, no access log, no open_file_cache; informational anchor); ferrogate "
        '`StaticFiles(hello, {"/static": DIR})`. deny403 / ratelimit429: apps.py\'s '
        "`DenyList` (ipaddress networks) and `TokenBucket` (a lock and a dict) around hello; "
        'ferrogate `IPFilter(hello, deny=["127.0.0.0/8"])`, `RateLimit(hello, "1/h", burst=1)`; '
        "nginx `deny 127.0.0.0/8` and `limit_req` (1r/m, no burst) with their log lines off. "
        "mount3: werkzeug `DispatcherMiddleware(NotFound(), {/a, /b, /c})`; ferrogate "
        "`Mount({/a, /b, /c})`. Refusal rows count a 2xx/3xx answer as the error.\n",
    ]
    return "\n".join(L)
