"""Settings for trustview, read from the environment (and an optional .env file) with django-environ.

Every variable is documented in .env.example. The defaults run the whole portal on one machine with no
servers to install: SQLite and generated development secrets under var/, e-mail to the console.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# Run-time state of the embedded defaults (database, development secrets). Never committed.
VAR_DIR = Path(env.str("TRUSTVIEW_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _development_secret(name: str, generate: object) -> str:
    """Read a secret kept under var/, creating it on first use (readable by this user only)."""
    if PRODUCTION:
        return ""  # never generated in production: the "Production" section below says what to set
    path = VAR_DIR / name
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(generate() if callable(generate) else str(generate))
    return path.read_text().strip()


DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Production mode (DEBUG off and TRUSTVIEW_ENV=production) hardens HTTPS and cookies and refuses to start
# without real secrets; see the "Production" section at the end. Development needs no variable at all.
TRUSTVIEW_ENV = env.str("TRUSTVIEW_ENV", default="development")
PRODUCTION = not DEBUG and TRUSTVIEW_ENV == "production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _development_secret(
    "secret-key", lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Private keys of certificates are encrypted with these Fernet keys: the first encrypts, all decrypt,
# so a new key can be put first and the old ones kept until `manage.py reencrypt_keys` has run.
TRUSTVIEW_KEY_ENCRYPTION_KEYS: list[str] = env.list("TRUSTVIEW_KEY_ENCRYPTION_KEYS", default=[]) or [
    _development_secret("key-encryption.key", lambda: Fernet.generate_key().decode())
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "certificates",
    "mitid",
    "accounts",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as static files (no CDN)
    "api",
    "endpoints",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the user's choice, else the browser's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The audit log records the address (and API token) of entries that signal receivers write.
    "accounts.middleware.AuditRequestMiddleware",
    # Every page needs a login unless its view is marked @login_not_required (login, health checks).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # user.is_verified(): has this session given a two-factor code? Then the code step or the set-up
    # page for a logged-in user who still needs one (accounts.middleware).
    "django_otp.middleware.OTPMiddleware",
    # A Bearer API token on the few non-API views that accept one (/metrics); before the two-factor step.
    "accounts.middleware.BearerTokenMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    # An administrator without an e-mail address, while alerts reach nobody, is asked for one once
    # after logging in (accounts.own_email).
    "accounts.own_email.AskForEmailMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Login protection (django-axes): after TRUSTVIEW_LOGIN_FAILURE_LIMIT failed logins for the same user
# from the same address, that pair is locked out for TRUSTVIEW_LOGIN_LOCKOUT_MINUTES (an administrator
# can unlock earlier: Users page, or `manage.py axes_reset_username USERNAME`). Counting the pair, not the
# user alone, means an attacker elsewhere cannot lock a colleague out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("TRUSTVIEW_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("TRUSTVIEW_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Behind a proxy (docker-compose's gunicorn behind a load balancer) set the header that carries the
# client's address, e.g. TRUSTVIEW_CLIENT_IP_HEADER=HTTP_X_FORWARDED_FOR; default: the socket's address.
TRUSTVIEW_CLIENT_IP_HEADER = env.str("TRUSTVIEW_CLIENT_IP_HEADER", default="")
AXES_IPWARE_META_PRECEDENCE_ORDER = [
    *([TRUSTVIEW_CLIENT_IP_HEADER] if TRUSTVIEW_CLIENT_IP_HEADER else []),
    "REMOTE_ADDR",
]

# Two-factor login (TOTP, django-otp): optional for everyone; with TRUSTVIEW_REQUIRE_2FA on, users whose
# role can download private keys (Administrator, superusers) must set it up before any other page.
# On by default in production, off in development so `make run` stays a quick start.
TRUSTVIEW_REQUIRE_2FA = env.bool("TRUSTVIEW_REQUIRE_2FA", default=PRODUCTION)
OTP_TOTP_ISSUER = "trustview"  # the name authenticator apps show beside the code
# Each wrong code doubles the wait before the next one is checked (1 s, 2 s, 4 s, ...).
OTP_TOTP_THROTTLE_FACTOR = 1

# Content-Security-Policy on every page: scripts, styles and everything else only from the portal
# itself, no inline script, nothing framing it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# The REST API (api/): Bearer tokens or the session (with CSRF), the pages' permissions, JSON only, and
# errors as problem+json (api.problems). Its schema and documentation come from drf-spectacular.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "trustview API",
    "DESCRIPTION": "Certificates, renewals and MitID Erhverv issuing, as on the portal's pages. Send "
    "`Authorization: Bearer <token>` (make a token on the API tokens page). Errors are "
    "application/problem+json (RFC 9457).",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EnvironmentEnum": "certificates.choices.Environment",
        "LifecycleStateEnum": "certificates.choices.LifecycleState",
        "OrderStateEnum": "certificates.choices.OrderState",
    },
}

ROOT_URLCONF = "trustview.urls"
WSGI_APPLICATION = "trustview.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "certificates.context_processors.alert_recipients",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'trustview.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: wait for a lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # Tests get a file too: an in-memory database's table locks would not wait like the real file does.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-trustview.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: the portal's queries are short, and at a large inventory their cost estimates pass
    # jit_above_cost, so PostgreSQL spent over a second compiling each dashboard count that then ran in
    # milliseconds (docs/performance.md). Added to any options the URL gives.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("da", "Dansk")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The language of alert e-mails (they go to a team, not to one user's browser): en or da.
TRUSTVIEW_EMAIL_LANGUAGE = env.str("TRUSTVIEW_EMAIL_LANGUAGE", default=LANGUAGE_CODE)
TIME_ZONE = env.str("TRUSTVIEW_TIME_ZONE", default="Europe/Copenhagen")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise reads it at start-up
# Serve straight from static/ unless collectstatic has been run for a production deployment.
WHITENOISE_USE_FINDERS = env.bool("TRUSTVIEW_STATIC_FROM_SOURCE", default=True)

# E-mail: console by default; smtp://user:password@host:587 (or submission://) in production.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="trustview@localhost")
# A mail server that stops answering must not hold a worker (and, while an outage is told, a row lock)
# for ever: Django's default is no time-out at all.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# Celery: Redis when REDIS_URL is set; otherwise a broker that needs no server (files under var/).
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "celery-broker"
    _broker_dir.mkdir(exist_ok=True)
    # kombu's filesystem transport, writing each message under a temporary name first (trustview/broker.py).
    CELERY_BROKER_TRANSPORT = "trustview.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        # Exchange files (one per queue) under var/ too, not in a control/ folder of the working directory.
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True  # a task that dies with its worker is delivered again
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Order steps (each a CA call that may take MITID_TIMEOUT_SECONDS) have their own queue, so the sweep,
# alerts and the revocation check (the default queue, "celery") never wait behind a backlog of them.
# A worker consumes both with `-Q celery,orders` (make run, docker-compose.yml); docs/operations.md says
# how to give the orders their own workers.
CELERY_TASK_ROUTES = {"certificates.tasks.process_order": {"queue": "orders"}}

# Beat: the schedule lives here, in code; each entry expires before the next one is due, so a backlog
# never runs the same job twice in a row.
# The sweep is one indexed query, so it can run often; it must run well within the renewal window of
# the shortest-lived certificates (a third of their lifetime).
TRUSTVIEW_SWEEP_SECONDS = env.float("TRUSTVIEW_SWEEP_SECONDS", default=60.0)
# /scheduler fails (and e-mails once) when the last successful sweep is older than this many sweep
# intervals, except within the grace period after the web process started.
TRUSTVIEW_SCHEDULER_SWEEP_MARGIN = env.float("TRUSTVIEW_SCHEDULER_SWEEP_MARGIN", default=3.0)
TRUSTVIEW_SCHEDULER_GRACE_SECONDS = env.float("TRUSTVIEW_SCHEDULER_GRACE_SECONDS", default=300.0)
# How often the revocation check runs (each run checks a slice; see TRUSTVIEW_REVOCATION_* below).
TRUSTVIEW_REVOCATION_CHECK_SECONDS = env.float("TRUSTVIEW_REVOCATION_CHECK_SECONDS", default=300.0)
TRUSTVIEW_ENDPOINT_SWEEP_SECONDS = env.float("TRUSTVIEW_ENDPOINT_SWEEP_SECONDS", default=60.0)
# How often each worker and beat check that the sweep runs (trustview/celery.py), so that a person hears
# of a stopped beat or of stopped workers without a monitor polling /scheduler.
TRUSTVIEW_SCHEDULER_CHECK_SECONDS = env.float("TRUSTVIEW_SCHEDULER_CHECK_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULER = "trustview.celery:WatchfulScheduler"
CELERY_BEAT_SCHEDULE = {
    "renewal-sweep": {
        "task": "certificates.tasks.sweep",
        "schedule": TRUSTVIEW_SWEEP_SECONDS,
        "options": {"expires": TRUSTVIEW_SWEEP_SECONDS * 0.9},
    },
    "expiry-alerts": {
        "task": "certificates.tasks.send_expiry_alerts",
        "schedule": crontab(minute=15, hour=env.int("TRUSTVIEW_ALERT_HOUR", default=7)),
        "options": {"expires": 23 * 3600},
    },
    # Each run checks the slice of certificates checked longest ago (certificates.revocation).
    "revocation-check": {
        "task": "certificates.tasks.check_revocation",
        "schedule": TRUSTVIEW_REVOCATION_CHECK_SECONDS,
        "options": {"expires": TRUSTVIEW_REVOCATION_CHECK_SECONDS * 0.9},
    },
    # Scans the TLS endpoints that are due (endpoints.services.scan_due), then sends the endpoint alerts.
    "endpoint-scans": {
        "task": "endpoints.tasks.scan_due",
        "schedule": TRUSTVIEW_ENDPOINT_SWEEP_SECONDS,
        "options": {"expires": TRUSTVIEW_ENDPOINT_SWEEP_SECONDS * 0.9},
    },
    "registration-reminder": {
        "task": "endpoints.tasks.send_registration_reminder",
        "schedule": crontab(minute=0, hour=env.int("TRUSTVIEW_REGISTRATION_REMINDER_HOUR", default=8)),
        "options": {"expires": 23 * 3600},
    },
    "monthly-status": {
        "task": "certificates.tasks.send_monthly_status",
        "schedule": crontab(minute=30, hour=7, day_of_month=1),
        "options": {"expires": 20 * 24 * 3600},
    },
}

# Certificates whose not_after is this close count as "expiring" everywhere (lists, dashboard, attention),
# and this close as critically so (the dashboard's red card).
TRUSTVIEW_EXPIRING_DAYS = env.int("TRUSTVIEW_EXPIRING_DAYS", default=30)
TRUSTVIEW_CRITICAL_DAYS = env.int("TRUSTVIEW_CRITICAL_DAYS", default=14)
# Largest certificate file accepted for import, in bytes (1 MiB).
TRUSTVIEW_IMPORT_MAX_BYTES = env.int("TRUSTVIEW_IMPORT_MAX_BYTES", default=1024 * 1024)
# Most certificates one imported file may hold (a chain has a handful; more is refused whole).
TRUSTVIEW_IMPORT_MAX_CERTIFICATES = env.int("TRUSTVIEW_IMPORT_MAX_CERTIFICATES", default=200)
# Most password iterations one key derivation or MAC of an imported PKCS#12 file or encrypted key may ask
# for (a whole file: three times this). OpenSSL 3 writes 2,048; checked before any derivation runs.
TRUSTVIEW_IMPORT_MAX_ITERATIONS = env.int("TRUSTVIEW_IMPORT_MAX_ITERATIONS", default=1_000_000)
TRUSTVIEW_PAGE_SIZE = env.int("TRUSTVIEW_PAGE_SIZE", default=50)

# Renewal and alerts.
# The CAs that can renew and block certificates (certificates.issuers): a CA app provides one each.
TRUSTVIEW_ISSUERS = env.list("TRUSTVIEW_ISSUERS", default=["mitid.issuer.MitIDIssuer"])
# Days before expiry at which an expiry alert is sent (the smallest is "critical").
TRUSTVIEW_ALERT_THRESHOLDS_DAYS = env.list("TRUSTVIEW_ALERT_THRESHOLDS_DAYS", cast=int, default=[30, 14])
# Who receives alerts; default: every active superuser with an e-mail address.
TRUSTVIEW_ALERT_EMAILS = env.list("TRUSTVIEW_ALERT_EMAILS", default=[])
# Alert once a renewal has failed this many times in a row for a passing reason (it keeps trying).
TRUSTVIEW_ALERT_AFTER_FAILURES = env.int("TRUSTVIEW_ALERT_AFTER_FAILURES", default=5)
# Backoff for passing CA failures: doubles from the base up to the cap, with jitter (seconds).
TRUSTVIEW_RETRY_BASE_SECONDS = env.float("TRUSTVIEW_RETRY_BASE_SECONDS", default=30.0)
TRUSTVIEW_RETRY_CAP_SECONDS = env.float("TRUSTVIEW_RETRY_CAP_SECONDS", default=3600.0)
# How often to ask the CA about an order in progress when it does not say (seconds).
TRUSTVIEW_POLL_SECONDS = env.float("TRUSTVIEW_POLL_SECONDS", default=10.0)
# A renewal that failed for good is tried again by the sweep after this many hours.
TRUSTVIEW_FAILED_RENEWAL_RETRY_HOURS = env.float("TRUSTVIEW_FAILED_RENEWAL_RETRY_HOURS", default=24.0)
# A certificate due for renewal this long without being renewed is "renewal late": one e-mail, once.
TRUSTVIEW_RENEWAL_LATE_HOURS = env.float("TRUSTVIEW_RENEWAL_LATE_HOURS", default=24.0)
# The portal's address, for links in e-mails; by default where `make run` serves it (PORT).
_served_at = f"http://127.0.0.1:{env.int('PORT', default=8000)}"
TRUSTVIEW_BASE_URL = env.str("TRUSTVIEW_BASE_URL", default=_served_at)

# MitID Erhverv: one base URL per environment (docs/protocol.md). The defaults are the local simulator
# (`python -m mitid.simulator serve`), whose TLS CA is MITID_CA_BUNDLE; empty means the system's CAs.
# With only MITID_SIMULATOR_PORT set (`make run` on another port), the defaults follow it.
_simulator_api = f"https://127.0.0.1:{env.int('MITID_SIMULATOR_PORT', default=8443)}"
MITID_TEST_URL = env.str("MITID_TEST_URL", default=f"{_simulator_api}/test")
MITID_PRODUCTION_URL = env.str("MITID_PRODUCTION_URL", default=f"{_simulator_api}/production")
MITID_SIMULATOR_STATE = Path(env.str("MITID_SIMULATOR_STATE", default=str(VAR_DIR / "simulator")))
MITID_CA_BUNDLE = env.str("MITID_CA_BUNDLE", default=str(MITID_SIMULATOR_STATE / "tls" / "ca.pem")) or None
MITID_TIMEOUT_SECONDS = env.float("MITID_TIMEOUT_SECONDS", default=30.0)
# How long a worker owns a renewal order's step before another may take it over (a killed worker's step
# waits this long). Longer than a CA call may take, or two workers would take the same step.
TRUSTVIEW_ORDER_LEASE_SECONDS = env.float("TRUSTVIEW_ORDER_LEASE_SECONDS", default=120.0)
if TRUSTVIEW_ORDER_LEASE_SECONDS <= MITID_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "TRUSTVIEW_ORDER_LEASE_SECONDS must be longer than a CA call may take (MITID_TIMEOUT_SECONDS)."
    )

# Trust store (certificates.trust): PEM files of further roots to trust besides the shipped OCES3 roots
# and those administrators add in the portal. In development, the simulator's roots under
# MITID_SIMULATOR_STATE (created when it first starts); in production none unless set.
TRUSTVIEW_TRUST_ROOTS_EXTRA: list[str] = env.list(
    "TRUSTVIEW_TRUST_ROOTS_EXTRA",
    default=[]
    if PRODUCTION
    else [str(MITID_SIMULATOR_STATE / "ca" / name / "root.pem") for name in ("test", "production")],
)
# Outbound OCSP (certificates.revocation): seconds for the whole request, largest answer read, and host
# names besides those of MITID_TEST_URL / MITID_PRODUCTION_URL whose responders may be on a loopback,
# private or link-local address (a CA run on the same network, such as the simulator elsewhere).
TRUSTVIEW_OCSP_TIMEOUT_SECONDS = env.float("TRUSTVIEW_OCSP_TIMEOUT_SECONDS", default=10.0)
TRUSTVIEW_OCSP_MAX_BYTES = env.int("TRUSTVIEW_OCSP_MAX_BYTES", default=64 * 1024)
TRUSTVIEW_OCSP_ALLOWED_HOSTS: list[str] = env.list("TRUSTVIEW_OCSP_ALLOWED_HOSTS", default=[])
# The revocation check (certificates.revocation) runs every TRUSTVIEW_REVOCATION_CHECK_SECONDS and checks
# the certificates not checked for TRUSTVIEW_REVOCATION_RECHECK_SECONDS (a day), oldest first, at most
# BATCH of them, CONCURRENCY requests at once; it starts no request after RUN_SECONDS, so it never holds a
# worker of the default queue for long (the rest waits for the next run). With the defaults one run can
# check 10,000 and a day 2.88 million. A CRL is read once per issuer and run, at most CRL_MAX_BYTES within
# CRL_TIMEOUT_SECONDS; where it cannot be used, OCSP is asked.
TRUSTVIEW_REVOCATION_RECHECK_SECONDS = env.float("TRUSTVIEW_REVOCATION_RECHECK_SECONDS", default=86400.0)
TRUSTVIEW_REVOCATION_BATCH = env.int("TRUSTVIEW_REVOCATION_BATCH", default=10000)
TRUSTVIEW_REVOCATION_CONCURRENCY = env.int("TRUSTVIEW_REVOCATION_CONCURRENCY", default=16)
TRUSTVIEW_REVOCATION_RUN_SECONDS = env.float("TRUSTVIEW_REVOCATION_RUN_SECONDS", default=120.0)
TRUSTVIEW_CRL_TIMEOUT_SECONDS = env.float("TRUSTVIEW_CRL_TIMEOUT_SECONDS", default=30.0)
TRUSTVIEW_CRL_MAX_BYTES = env.int("TRUSTVIEW_CRL_MAX_BYTES", default=20 * 1024 * 1024)

# TLS endpoints (endpoints.scanner). Each endpoint is scanned about every interval (jittered by a tenth);
# the beat job looks for due endpoints every TRUSTVIEW_ENDPOINT_SWEEP_SECONDS and scans at most BATCH of
# them per run, CONCURRENCY at once, each connection and handshake within its timeout. A run shares the
# default queue with the renewal sweep, so it is kept short: at worst (every endpoint timing out)
# BATCH / CONCURRENCY x (connect + handshake timeout) seconds, about a minute with the defaults, which
# still scans 3,000 endpoints an hour.
TRUSTVIEW_ENDPOINT_SCAN_INTERVAL_SECONDS = env.float(
    "TRUSTVIEW_ENDPOINT_SCAN_INTERVAL_SECONDS", default=3600.0
)
TRUSTVIEW_ENDPOINT_SCAN_BATCH = env.int("TRUSTVIEW_ENDPOINT_SCAN_BATCH", default=50)
TRUSTVIEW_ENDPOINT_CONCURRENCY = env.int("TRUSTVIEW_ENDPOINT_CONCURRENCY", default=8)
TRUSTVIEW_ENDPOINT_CONNECT_TIMEOUT_SECONDS = env.float(
    "TRUSTVIEW_ENDPOINT_CONNECT_TIMEOUT_SECONDS", default=5.0
)
TRUSTVIEW_ENDPOINT_HANDSHAKE_TIMEOUT_SECONDS = env.float(
    "TRUSTVIEW_ENDPOINT_HANDSHAKE_TIMEOUT_SECONDS", default=5.0
)
# Networks the scanner never connects to, whatever a user types (server-side request forgery): link-local
# (with the cloud metadata address 169.254.169.254), this-network, multicast and broadcast; in production
# also loopback. Private networks stay allowed: the endpoints to watch are often inside one.
_BLOCKED_ALWAYS = [
    "0.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "fe80::/10",
    "ff00::/8",
    "fd00:ec2::254/128",
]
TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS: list[str] = env.list(
    "TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS",
    default=[*_BLOCKED_ALWAYS, *(["127.0.0.0/8", "::1/128"] if PRODUCTION else [])],
)
# An endpoint still serving a certificate this long after its renewal entered the portal is alerted
# (renewed but not deployed); a day by default.
TRUSTVIEW_DEPLOYMENT_GRACE_SECONDS = env.float("TRUSTVIEW_DEPLOYMENT_GRACE_SECONDS", default=86400.0)

# /metrics (Prometheus): besides logged-in users with the view permission, scrapers from these addresses
# (comma-separated CIDRs or single addresses, e.g. 10.0.5.0/24,127.0.0.1) read every certificate's
# series without logging in. Empty by default: nobody without a login.
TRUSTVIEW_METRICS_ALLOWED_IPS: list[str] = env.list("TRUSTVIEW_METRICS_ALLOWED_IPS", default=[])
try:
    TRUSTVIEW_METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in TRUSTVIEW_METRICS_ALLOWED_IPS
        if cidr.strip()
    ]
except ValueError as _error:
    raise ImproperlyConfigured(
        f"TRUSTVIEW_METRICS_ALLOWED_IPS holds a value that is not an address or CIDR range: {_error}"
    ) from None

# Alert channels (Teams, Slack, webhook; certificates.channels): seconds to connect and to read the
# answer, how many times a message is tried before it counts as failed (passing failures are retried
# with the TRUSTVIEW_RETRY_* backoff), and whether http:// to a loopback address is allowed (tests, a
# local receiver in development; otherwise https only).
TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS = env.float("TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS", default=10.0)
TRUSTVIEW_CHANNEL_ATTEMPTS = env.int("TRUSTVIEW_CHANNEL_ATTEMPTS", default=8)
TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK = env.bool("TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("TRUSTVIEW_LOG_LEVEL", default="INFO")},
    # kombu warns about a missing host name on every connection of the embedded (filesystem) broker.
    "loggers": {"kombu.connection": {"level": "ERROR"}},
}

# --- Production ---------------------------------------------------------------------------------------
# Everything that differs in production lives here, applied only when PRODUCTION (DJANGO_DEBUG off and
# TRUSTVIEW_ENV=production, as docker-compose.yml sets). docs/operations.md lists the variables; with them
# set, `manage.py check --deploy` reports no issues.
if TRUSTVIEW_ENV not in ("development", "production"):
    # A typo must not silently fall back to development secrets.
    raise ImproperlyConfigured(f"TRUSTVIEW_ENV is development or production, not {TRUSTVIEW_ENV!r}.")

if PRODUCTION:
    # Refuse to start rather than run with a secret someone else may know (or that a restart would lose).
    _MAKE_RANDOM = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    _MAKE_FERNET = "make one with: python -m certificates.vault"
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set; production needs a random value of at least 50 characters "
            f"({_MAKE_RANDOM})."
        )
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure") or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too short or insecure; production needs a random value of at least "
            f"50 characters ({_MAKE_RANDOM})."
        )
    if not env.list("TRUSTVIEW_KEY_ENCRYPTION_KEYS", default=[]):
        raise ImproperlyConfigured(
            "TRUSTVIEW_KEY_ENCRYPTION_KEYS is not set; production needs at least one Fernet key, backed up "
            f"with the database ({_MAKE_FERNET})."
        )
    for _key in TRUSTVIEW_KEY_ENCRYPTION_KEYS:
        try:
            Fernet(_key)
        except ValueError:
            raise ImproperlyConfigured(
                "TRUSTVIEW_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key; each comma-separated "
                f"key is 32 url-safe base64-encoded bytes ({_MAKE_FERNET})."
            ) from None

    # HTTPS only. Behind a TLS-terminating proxy (TRUSTVIEW_BEHIND_PROXY) the proxy's X-Forwarded-Proto
    # says whether the browser used HTTPS; only trust it when nothing but the proxy reaches the app.
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [
        r"^healthz$",
        r"^readyz$",
        r"^scheduler$",
    ]  # probes speak plain HTTP inside the network
    if env.bool("TRUSTVIEW_BEHIND_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

    # Static files: collected once into STATIC_ROOT (the image does it at build time) with hashed,
    # compressed names that browsers may cache forever; WhiteNoise serves them from gunicorn.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    WHITENOISE_USE_FINDERS = env.bool("TRUSTVIEW_STATIC_FROM_SOURCE", default=False)
