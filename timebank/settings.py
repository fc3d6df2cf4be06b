"""Settings for the time bank. Everything that differs between machines comes from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from timebank.lib.env import env_bool, env_int, env_secret, local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION = env_bool("TIMEBANK_PRODUCTION")

_local: dict[str, str] = {}
if not PRODUCTION:
    _local = local_secrets(Path(os.environ.get("TIMEBANK_LOCAL_SECRETS", BASE_DIR / ".local" / "secrets.json")))


def _secret(name: str) -> str:
    value = env_secret(name) or _local.get(name)
    if not value:
        raise RuntimeError(f"{name} (or {name}_FILE) must be set in production")
    return value


SECRET_KEY = _secret("SECRET_KEY")
FIELD_ENCRYPTION_KEYS = [k.strip() for k in _secret("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()]
FIELD_HASH_KEY = _secret("FIELD_HASH_KEY")
# HMAC key of the ledger and audit hash chains, and the Ed25519 key (base64 of the 32 raw bytes) that signs
# checkpoints of their tips: kept outside the database like the field keys (timebank/lib/hashchain.py).
CHAIN_KEY = _secret("CHAIN_KEY")
CHECKPOINT_SIGNING_KEY = _secret("CHECKPOINT_SIGNING_KEY")

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "ninja",  # serves the API docs' Swagger UI from our own static files (the CSP allows no CDN)
    "django_tasks",
    "django_tasks_db",
    "timebank.orgs",
    "timebank.members",
    "timebank.ledger",
    "timebank.catalogue",
    "timebank.orders",
    "timebank.approvals",
    "timebank.goods",
    "timebank.funds",
    "timebank.safety",
    "timebank.teams",
    "timebank.needs",
    "timebank.hotline",
    "timebank.notify",
    "timebank.notices",
    "timebank.reports",
    "timebank.audit",
    "timebank.exports",
    "timebank.evaluation",
    "timebank.federation",
    "timebank.web",
    "timebank.ops",
    "timebank.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), so a server with DEBUG off serves them itself (the demo).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sessions of closed logins end; a login given a temporary password goes to the password page first.
    "timebank.orgs.middleware.LoginStateMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "timebank.api.middleware.ApiErrorBodyMiddleware",
    # Innermost: an API write with an Idempotency-Key header commits together with its stored answer.
    "timebank.ops.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "timebank.urls"
WSGI_APPLICATION = "timebank.wsgi.application"

# The page kit (timebank/web) names no app: these name who is behind a request and the bank heading a page.
WEB_PERSON = "timebank.members.person.who"
WEB_BANK_NAME = "timebank.members.person.bank_name"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        # A kept connection is checked before a request reuses it: a restarted database costs no 500.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let several people use the demo at once without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if os.environ.get("DATABASE_REPLICA_URL"):
    # A streaming replica (hot standby) of the primary: reports read there (timebank/ops/replica.py), nothing else
    # does. The primary's test database reaches it by replication, so tests use the primary's name on it (MIRROR).
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["DATABASE_REPLICA_URL"],
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
        test_options={"MIRROR": "default"},
    )
    DATABASE_ROUTERS = ["timebank.ops.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "orgs.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "timebank.orgs.passwords.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]

# Contract: at most 10 failed logins in a row lock the username for a while.
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = 0.25  # hours
# Keyed on the username AND the client's address: a stranger guessing from elsewhere locks only their own
# address out, never the elder at home (the contract's lock of a username still holds for the guesser).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "timebank.lib.client.client_address"
# Behind nginx (docs/deploy.md) every request comes from the proxy: set this to the number of trusted proxies
# in front of Django, so the lockout sees the client's own address in X-Forwarded-For. 0: REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Self-registrations (POST /api/v1/register and the join page together) per client address and hour; past it 429.
REGISTER_LIMIT_PER_HOUR = env_int("REGISTER_LIMIT_PER_HOUR", 20)
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
# The API answers a locked-out login itself, with the contract's error body.
AXES_LOCKOUT_CALLABLE = "timebank.api.core.axes_lockout_response"
# Locking by address alone would lock a whole community centre (one shared address) out: the lock is a username's
# at one address.
# models.W040: the reports' covering indexes (INCLUDE) are for PostgreSQL; SQLite builds them without the extra columns.
SILENCED_SYSTEM_CHECKS = ["axes.W006", "models.W040"]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "timebank" / "locale"]
FORMAT_MODULE_PATH = ["timebank.web.formats"]  # 9月5日, not Django's 09月5日
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's target; the demo and the app servers serve it with WhiteNoise (nginx may serve it in front).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / ".local" / "static")
LOGIN_URL = "/login/"


API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 30)

# Several server processes should share one cache (the WeChat token, the rate limits):
# CACHE_URL=db keeps it in a database table (`manage.py createcachetable`), redis://... on a Redis server.
# Unset: each process has its own memory cache, which is right for one process (the demo).
_cache_url = os.environ.get("CACHE_URL", "")
if _cache_url in ("db", "database"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "timebank_cache"}}
elif _cache_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}

# Hash chains (issue 17): writers insert unsealed rows; the sealer links them into each bank's chains.
# "inline": each write seals its own rows before commit (tests, the demo, a developer's server: nothing waits
# for a sealer). "process": `python manage.py sealer` runs as its own process and writers take no bank-wide
# lock (production). A row unsealed longer than CHAIN_SEAL_BOUND_SECONDS is a `verify` problem; writers back
# off while more than CHAIN_SEAL_BACKLOG rows wait.
CHAIN_SEALING = os.environ.get("CHAIN_SEALING") or ("process" if PRODUCTION else "inline")
if CHAIN_SEALING not in ("inline", "process"):
    raise ImproperlyConfigured("CHAIN_SEALING must be inline or process")
CHAIN_SEAL_BOUND_SECONDS = env_int("CHAIN_SEAL_BOUND_SECONDS", 60)
CHAIN_SEAL_BACKLOG = env_int("CHAIN_SEAL_BACKLOG", 50_000)
# Published checkpoints (the public 账本检查点 page; `verify` starts from the latest): `manage.py checkpoint
# --every` publishes one every CHECKPOINT_EVERY_MINUTES.
CHECKPOINT_EVERY_MINUTES = env_int("CHECKPOINT_EVERY_MINUTES", 60)

# Federation between deployments (issue 16; API-CONTRACT.md "Federation"): this node's id and its Ed25519 signing
# key (base64 of the 32 raw bytes), from the environment, a *_FILE, or the git-ignored local secrets; never in the
# database. With neither (a production deployment that does not federate), the node answers 503 to federation.
FEDERATION_NODE_ID = os.environ.get("FEDERATION_NODE_ID") or _local.get("FEDERATION_NODE_ID", "")
FEDERATION_SIGNING_KEY = env_secret("FEDERATION_SIGNING_KEY") or _local.get("FEDERATION_SIGNING_KEY", "")
FEDERATION_NAME = os.environ.get("FEDERATION_NAME", "")
# Shared by the nodes of one federation: the keyed hash an ID number travels as when a member moves (moves.py).
FEDERATION_ID_HASH_KEY = env_secret("FEDERATION_ID_HASH_KEY") or _local.get("FEDERATION_ID_HASH_KEY", "")
# Peers must be https; this also allows http://127.0.0.1:<port> (tests, demos).
FEDERATION_ALLOW_HTTP_LOOPBACK = env_bool("FEDERATION_ALLOW_HTTP_LOOPBACK")
FEDERATION_TIMEOUT_SECONDS = env_int("FEDERATION_TIMEOUT_SECONDS", 10)

# Background tasks (django-tasks). Production runs `python manage.py db_worker`. A developer's server
# (DEBUG, no TASKS_BACKEND) runs each task at once, so the demo needs no worker.
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
}
_tasks_backend = os.environ.get("TASKS_BACKEND") or ("immediate" if DEBUG else "database")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS.get(_tasks_backend, _tasks_backend)}}

# Notifications: channels in use (outbox = in-app), retries, reminders, and provider credentials.
NOTIFY_CHANNELS = [c.strip() for c in os.environ.get("NOTIFY_CHANNELS", "outbox").split(",") if c.strip()]
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
NOTIFY_REMINDER_HOURS = env_int("NOTIFY_REMINDER_HOURS", 2)
NOTIFY_SMS_ACCESS_KEY_ID = os.environ.get("NOTIFY_SMS_ACCESS_KEY_ID", "")
NOTIFY_SMS_ACCESS_KEY_SECRET = env_secret("NOTIFY_SMS_ACCESS_KEY_SECRET") or ""
NOTIFY_SMS_SIGN_NAME = os.environ.get("NOTIFY_SMS_SIGN_NAME", "")
NOTIFY_SMS_TEMPLATES = json.loads(os.environ.get("NOTIFY_SMS_TEMPLATES", "{}"))  # {"order.dispatched": "SMS_1"}
NOTIFY_WECHAT_APP_ID = os.environ.get("NOTIFY_WECHAT_APP_ID", "")
NOTIFY_WECHAT_APP_SECRET = env_secret("NOTIFY_WECHAT_APP_SECRET") or ""
NOTIFY_WECHAT_TEMPLATES = json.loads(os.environ.get("NOTIFY_WECHAT_TEMPLATES", "{}"))  # {"order.dispatched": "id"}
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "timebank@localhost")

# Content Security Policy (django-csp), everywhere, so the browser tests see what production sends: our own
# scripts, styles and images only; no inline script or style (the templates have none), no eval, no frames.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
