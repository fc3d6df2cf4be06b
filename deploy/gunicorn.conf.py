"""gunicorn settings for the time bank: `gunicorn -c deploy/gunicorn.conf.py`.

Everything that differs between machines comes from the environment (see docs/deploy.md):

| variable | default | meaning |
|---|---|---|
| `GUNICORN_BIND` | `127.0.0.1:8000` | where nginx reaches this process (`unix:/run/timebank.sock` works too) |
| `GUNICORN_WORKERS` | 2 × cores + 1 | worker processes |
| `GUNICORN_THREADS` | 1 | threads per worker; above 1 the `gthread` worker is used |
| `GUNICORN_TIMEOUT` | 30 | seconds before a stuck worker is killed and replaced |
| `GUNICORN_ACCESS_LOG` | off | `-` for stdout; nginx keeps the access log in production |
| `GUNICORN_MAX_REQUESTS` | 5000 | a worker is replaced after this many requests (0: never) |
| `DB_CONN_MAX_AGE` | 60 here | seconds a worker keeps its PostgreSQL connection (the settings' own default is 0) |
| `TRUSTED_PROXY_COUNT` | 1 here | proxies in front of Django whose `X-Forwarded-For` is trusted (the settings' default is 0) |
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "timebank.settings")
# A worker serves one request at a time and reuses its connection: opening a PostgreSQL connection
# (a forked backend, authentication) costs more than most of our requests. The settings read this.
os.environ.setdefault("DB_CONN_MAX_AGE", "60")
# Behind nginx (which appends the client's address to X-Forwarded-For): the login lockout, kept per username and
# client address, must see the client, not nginx. Only nginx may reach the workers (GUNICORN_BIND).
os.environ.setdefault("TRUSTED_PROXY_COUNT", "1")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


wsgi_app = "timebank.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = _int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)
threads = _int("GUNICORN_THREADS", 1)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread" if threads > 1 else "sync")
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
backlog = _int("GUNICORN_BACKLOG", 2048)
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
# Load Django once in the master: workers start fast and share the imported code's memory.
preload_app = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "timebank"
# Behind nginx on the same machine (or a private network): trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server: Any, worker: Any) -> None:
    """A worker must never share a database connection opened in the master before the fork."""
    from django.db import connections

    connections.close_all()
