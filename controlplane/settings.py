"""Settings for the control plane: everything comes from the environment (see .env.example)."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VERSION = (BASE_DIR / "VERSION").read_text().strip()

# Local state of the embedded default stack (git-ignored): Postgres data, generated keys, static files.
DATA_DIR = Path(env.str("CONTROLPLANE_DATA_DIR", default=str(BASE_DIR / ".data")))
EMBEDDED_POSTGRES_DIR = DATA_DIR / "postgres"
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6389)


def _local_secret(name: str, generate=None) -> str:
    """A secret generated once for this checkout; production sets the variable instead."""
    import secrets

    path = DATA_DIR / name
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate() if generate else secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret("django-secret-key")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # unfold themes the admin (the operator's console) and must come before django.contrib.admin.
    "unfold.apps.BasicAppConfig",  # the site is the console's own (controlplane.apps.ConsoleAdminConfig)
    "unfold.contrib.filters",
    # Django's admin with the console's site (controlplane.console.ConsoleAdminSite: django-otp's second factor).
    "controlplane.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # kept for its migrations only: 0005_api_tokens moved its plaintext keys to digests
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "controlplane",
    "integrations",
    "traces",
    "bots",
    "execution",
    "backtests",
    "oversight",
    "observatory",
]

# The declared hooks (controlplane/hooks.py): the only places where a lower layer asks a higher one for work. Each
# resolves by dotted path when called; one that is missing or does not resolve fails the start-up (controlplane.E004).
CONTROLPLANE_HOOKS = {
    # A committed kill (or exit from LIVE) is carried out by the OMS right away; the beat sweeps any it missed.
    "bots.kill.cancel_orders": "execution.orders.cancels.cancel_hook",
    # The core's status cache (banner, freshness, the risk engine's autonomy check) asks the judging layer.
    "status.compute": "oversight.status.system_status",
    # The Keys Needed checklist requires the providers the tenant's bots use.
    "integrations.providers_in_use": "bots.selectors.providers_in_use",
    # Bars just stored (an import, a provider's refresh) fill the working paper orders they reach.
    "marketdata.bars_stored": "execution.orders.paper_venue.match_stored_bars",
    # Alerts and login codes leave by SMS through the tenant's own Twilio account.
    "sms.send": "integrations.providers.twilio.sms.send_sms",
}

MIDDLEWARE = [
    "controlplane.trace.TraceIdMiddleware",
    "controlplane.errors.URLLengthMiddleware",  # first after the trace id: an over-long URL does no other work
    "django.middleware.security.SecurityMiddleware",
    "controlplane.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the device that verified this session's login (django-otp).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "controlplane.middleware.TenantTransactionMiddleware",
    # Inside the request's transaction: a member of a tenant that requires 2FA reaches only the enrolment page.
    "controlplane.console.TwoFactorEnrolmentMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

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
                "controlplane.context_processors.admin_tenant_context",
            ]
        },
    }
]

# The runtime role (DATABASE_URL) must not own the tables and must not bypass RLS; migrations run as the
# owner role (DATABASE_OWNER_URL) through the "owner" alias (our `migrate` defaults to it). See controlplane/dbroles.py.
_EMBEDDED_DB = f"postgres://{{user}}@/controlplane?host={EMBEDDED_POSTGRES_DIR}"
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=_EMBEDDED_DB.format(user="cp_app")),
    "owner": env.db_url("DATABASE_OWNER_URL", default=_EMBEDDED_DB.format(user="cp_owner")),
}
for _alias in DATABASES.values():
    if "host" in _alias.get("OPTIONS", {}):  # postgres://user@/db?host=/socket/dir
        _alias["HOST"] = _alias["OPTIONS"].pop("host")
    # Our backend sets the tenant (set_config(..., true)) at the start of every transaction.
    _alias["ENGINE"] = "controlplane.db"
    _alias["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    _alias["CONN_HEALTH_CHECKS"] = True
    _alias.setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")


def _redis_database_plus(url: str, offset: int) -> str:
    """``url`` on the Redis database ``offset`` numbers past its own (none in the URL is database 0)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(parts.path.strip('/') or 0) + offset}"))


# `make test` runs pytest in several processes (pytest-xdist; controlplane/devstack.py). pytest-django gives each
# worker a test database of its own; here each takes a Redis database of its own too, REDIS_URL's number plus the
# worker's index (gw0 +0, gw1 +1), so no worker sees another's cache keys, throttles or Celery queues. It is written
# back to the environment, marked with the worker, so a process a test starts inherits that database and does not
# add the index again. PYTEST_XDIST_WORKER is set only inside a pytest-xdist worker.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER and os.environ.get("CONTROLPLANE_REDIS_WORKER") != _XDIST_WORKER:
    REDIS_URL = _redis_database_plus(REDIS_URL, int(_XDIST_WORKER.removeprefix("gw")))
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["CONTROLPLANE_REDIS_WORKER"] = _XDIST_WORKER
# Every Redis command (cache, throttles, breakers, token store, send ledger, Celery publish) gives up after this
# many seconds, connect included; a server that failed is then not asked again for REDIS_RETRY_AFTER_SECONDS
# (controlplane/redis_clients.py), so a hung Redis costs a request one timeout, not one per use.
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=2.0)
REDIS_RETRY_AFTER_SECONDS = env.float("REDIS_RETRY_AFTER_SECONDS", default=5.0)
CACHES = {
    "default": {
        "BACKEND": "controlplane.redis_clients.RedisCache",  # Django's, with the bounds above
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cp",
        "TIMEOUT": 300,
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# The console's theme (django-unfold). Its dashboard is the observatory (observatory/dashboard.py); the sidebar
# puts the operator's pages first and lists every model page under them.
UNFOLD = {
    "SITE_TITLE": "Control plane",
    "SITE_HEADER": "Trading control plane",
    "SITE_SYMBOL": "monitoring",
    "SHOW_HISTORY": False,
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": ["observatory.navigation.console_stylesheet"],
    "DASHBOARD_CALLBACK": "observatory.dashboard.dashboard_callback",
    "GLOBAL_CALLBACK": "observatory.banner.banner_context",
    "SIDEBAR": {"show_search": True, "show_all_applications": True, "navigation": "observatory.navigation.sidebar"},
}

# Tenancy: an owner's invitation (POST /api/tenant/invitations) can be accepted for this many hours.
TENANT_INVITATION_TTL_HOURS = env.int("TENANT_INVITATION_TTL_HOURS", default=168)

# Second factor (controlplane/twofactor.py, controlplane/stepup.py, README "Tenancy and roles"). Unkill, promotion to
# LIVE, a broker or venue key and a tenant's risk limits need a second factor verified within STEP_UP_MAX_AGE_SECONDS
# (a TOTP or backup code, or an SMS code). Failed codes per user, counted in Redis: past TWO_FACTOR_FAILURE_RATE
# every code of that user is refused (429) until the window passes. The issuer is the name authenticator apps show.
STEP_UP_MAX_AGE_SECONDS = env.int("STEP_UP_MAX_AGE_SECONDS", default=300)
TWO_FACTOR_FAILURE_RATE = env.str("TWO_FACTOR_FAILURE_RATE", default="10/hour")
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Trading control plane")
# SMS codes (POST /api/auth/2fa/send and /verify): valid this long, this many guesses each, stored as an HMAC under
# TWO_FACTOR_SMS_CODE_SECRET (generated once into $CONTROLPLANE_DATA_DIR when unset); sends per user and per IP.
TWO_FACTOR_SMS_CODE_TTL_SECONDS = env.int("TWO_FACTOR_SMS_CODE_TTL_SECONDS", default=300)
TWO_FACTOR_SMS_MAX_ATTEMPTS = env.int("TWO_FACTOR_SMS_MAX_ATTEMPTS", default=5)
TWO_FACTOR_SMS_CODE_SECRET = env.str("TWO_FACTOR_SMS_CODE_SECRET", default="") or _local_secret("sms-code-secret")
TWO_FACTOR_SMS_SEND_RATE_USER = env.str("TWO_FACTOR_SMS_SEND_RATE_USER", default="5/hour")
TWO_FACTOR_SMS_SEND_RATE_IP = env.str("TWO_FACTOR_SMS_SEND_RATE_IP", default="20/hour")

# Brute force on the admin login (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one
# IP, that pair is refused (429) for AXES_COOLOFF_MINUTES, or until `manage.py axes_reset_username <name>` (or
# `axes_reset`); a successful login clears its count. The pair, not the account alone, so a stranger's guesses cannot
# lock an operator out from everywhere. API tokens: FailedAuthenticationThrottle (API_THROTTLE_AUTH_FAILURES).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# Served over HTTPS only (production): DJANGO_SECURE_COOKIES gives the session, CSRF and messages cookies the Secure
# flag and turns HSTS on. Behind a proxy that ends TLS, DJANGO_TRUST_X_FORWARDED_PROTO lets Django see the request
# as HTTPS (only when that proxy sets the header itself and strips a client's), or HSTS is never sent.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000) if SESSION_COOKIE_SECURE else 0
if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The Content-Security-Policy of every answer (controlplane.security), the same in development and production so a
# page it breaks breaks where it is written. Nothing may load from, connect to or post to another origin, nor frame
# the console. Scripts may still be inline and evaluated: unfold's Alpine.js and htmx's hx-on compile attribute
# code with Function(), the tenant switcher submits from an onchange, and Swagger UI starts from an inline script.
# Styles may be inline (unfold and our templates use style attributes); images and fonts may be data: URIs (icons).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'unsafe-inline'", "'unsafe-eval'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# API tokens: django-rest-knox, stored as SHA-512 digests in controlplane.ApiToken, shown once when issued; they
# last until revoked (GET/DELETE /api/tokens, /api/tenant/tokens).
KNOX_TOKEN_MODEL = "controlplane.ApiToken"
REST_KNOX = {"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token", "AUTO_REFRESH": False}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes an unauthenticated request a 401, not a 403.
        "controlplane.authentication.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.permissions.TenantRolePermission"],
    # Every body's strings are checked for what Postgres cannot store (controlplane/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "controlplane.parsers.JSONParser",
        "controlplane.parsers.FormParser",
        "controlplane.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "controlplane.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["controlplane.filters.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "controlplane.openapi.AutoSchema",  # declares the error answers (one shape)
    "EXCEPTION_HANDLER": "controlplane.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "controlplane.throttling.ResilientAnonRateThrottle",
        "controlplane.throttling.ResilientUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="6000/minute"),
        # Failed token checks per client IP (controlplane/authentication.py); past it every token from there is 429.
        "auth_failure": env.str("API_THROTTLE_AUTH_FAILURES", default="20/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Trading control plane API",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies refuse unknown fields (controlplane/serializers.py); the schema says so.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.openapi.refuse_additional_request_properties",
    ],
    "ENUM_NAME_OVERRIDES": {
        "BotStageEnum": "bots.models.Stage",
        "StatusLevelEnum": "controlplane.openapi.STATUS_LEVELS",
        "LabExperimentStatusEnum": "backtests.models.LabExperiment.Status",
        "ReconciliationStatusEnum": "bots.models.Reconciliation.Status",
    },
}

# Celery: JSON only, queues per kind of work, beat schedule kept in the database.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=270)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT_SECONDS  # the result backend: a publish subscribes to its result there
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT_SECONDS
# A publish is tried once more, at once; retrying a hung broker only multiplies the wait of the request behind it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "controlplane.beat:HeartbeatDatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after every task unless this is set: a worker
# process then keeps its connection for this many tasks (0: a new connection for every task), checked between tasks
# as Django checks it between requests (controlplane.celery: DATABASE_CONN_MAX_AGE, CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=15)

# Bot lifecycle (bots app): watchdog, runner restarts, job leases, the gate to LIVE.
WATCHDOG_INTERVAL_SECONDS = env.int("WATCHDOG_INTERVAL_SECONDS", default=30)
RUNNER_HEARTBEAT_STALE_SECONDS = env.int("RUNNER_HEARTBEAT_STALE_SECONDS", default=180)
RUNNER_MAX_RESTARTS = env.int("RUNNER_MAX_RESTARTS", default=3)
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=600)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
QUEUED_WORK_STALE_SECONDS = env.int("QUEUED_WORK_STALE_SECONDS", default=900)
BOT_LIVE_MIN_PAPER_TRADES = env.int("BOT_LIVE_MIN_PAPER_TRADES", default=20)
BOT_LIVE_MIN_PAPER_DAYS = env.int("BOT_LIVE_MIN_PAPER_DAYS", default=10)
# The LIVE gate (oversight.gates._live_reconcile_gate) wants the venue's own answer: the bot's latest reconcile, of its
# live book, MATCHED and at most this old when the promotion is requested (an account changes at any moment).
BOT_LIVE_RECONCILE_MAX_AGE_SECONDS = env.int("BOT_LIVE_RECONCILE_MAX_AGE_SECONDS", default=900)
CELERY_BEAT_SCHEDULE = {  # every app adds its entries; each with an expires just under its interval
    "bots-watchdog": {
        "task": "bots.watchdog",
        "schedule": WATCHDOG_INTERVAL_SECONDS,
        "options": {"expires": WATCHDOG_INTERVAL_SECONDS * 0.9},
    }
}

# The transactional outbox (controlplane/outbox.py): the relay re-sends what the commit hook could not, with backoff.
OUTBOX_RELAY_INTERVAL_SECONDS = env.int("OUTBOX_RELAY_INTERVAL_SECONDS", default=5)
OUTBOX_MAX_BACKOFF_SECONDS = env.int("OUTBOX_MAX_BACKOFF_SECONDS", default=300)
OUTBOX_RELAY_BATCH = env.int("OUTBOX_RELAY_BATCH", default=200)
CELERY_BEAT_SCHEDULE["controlplane-relay-outbox"] = {
    "task": "controlplane.relay_outbox",
    "schedule": OUTBOX_RELAY_INTERVAL_SECONDS,
    "options": {"expires": OUTBOX_RELAY_INTERVAL_SECONDS * 0.9},
}

# Alerts (controlplane/alerts.py, controlplane/alerting.py): one delivery per matching recipient, deduplicated by key
# within a window, retried with backoff until sent or failed for good.
ALERT_DEDUP_WINDOW_SECONDS = env.int("ALERT_DEDUP_WINDOW_SECONDS", default=300)
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=5)
ALERT_DELIVERY_BACKOFF_SECONDS = env.int("ALERT_DELIVERY_BACKOFF_SECONDS", default=30)
ALERT_DELIVERY_MAX_BACKOFF_SECONDS = env.int("ALERT_DELIVERY_MAX_BACKOFF_SECONDS", default=1800)
ALERT_DELIVERY_SWEEP_SECONDS = env.int("ALERT_DELIVERY_SWEEP_SECONDS", default=30)
CELERY_BEAT_SCHEDULE["controlplane-deliver-alerts"] = {
    "task": "controlplane.deliver_due_alerts",
    "schedule": ALERT_DELIVERY_SWEEP_SECONDS,
    "options": {"expires": ALERT_DELIVERY_SWEEP_SECONDS * 0.9},
}
# E-mail (alerts to e-mail recipients) through Django's mail backend.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="alerts@localhost")

# The tick (execution/tick/): beat dispatches one batch per instrument and timeframe on the timeframe's grid, in tasks of
# up to TICK_BATCH_INSTRUMENTS instruments each, run together: each tenant's bots on a task's instruments are read,
# traced and heart-beaten in one transaction (the per-batch database round trips were most of a steady tick's cost).
TICK_TIMEFRAMES = env.list("TICK_TIMEFRAMES", default=["1m", "5m", "15m", "1h", "1d"])
TICK_DELAY_SECONDS = env.int("TICK_DELAY_SECONDS", default=5)
TICK_BATCH_INSTRUMENTS = env.int("TICK_BATCH_INSTRUMENTS", default=50)
# The most a live batch may start after its bar boundary (as_of, by the wall clock) and still decide; never more than
# half the timeframe. A later batch sends nothing and traces each bot TICK_LATE.
TICK_MAX_LATENESS_SECONDS = env.int("TICK_MAX_LATENESS_SECONDS", default=60)
TICK_MAX_CONSECUTIVE_ERRORS = env.int("TICK_MAX_CONSECUTIVE_ERRORS", default=5)
# The most bars of history a tick batch reads for one bot's warm-up (the shipped strategies' parameters allow at most
# 5,001). A bot whose strategy claims more (corrupt parameters can claim any number) is that bot's TICK_ERROR.
TICK_MAX_WARMUP_BARS = env.int("TICK_MAX_WARMUP_BARS", default=10_000)
DRAWDOWN_BREAKER_INTERVAL_SECONDS = env.int("DRAWDOWN_BREAKER_INTERVAL_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["execution-drawdown-breakers"] = {
    "task": "execution.drawdown_breakers",
    "schedule": DRAWDOWN_BREAKER_INTERVAL_SECONDS,
    "options": {"expires": DRAWDOWN_BREAKER_INTERVAL_SECONDS * 0.9},
}


def _tick_schedule(timeframe: str):
    from celery.schedules import crontab

    minutes = {"1m": "*", "5m": "*/5", "15m": "*/15", "30m": "*/30"}
    if timeframe in minutes:
        return crontab(minute=minutes[timeframe]), 60 * (int(timeframe[:-1]) if timeframe != "1m" else 1)
    if timeframe in ("1h", "4h"):
        return crontab(minute=0, hour="*" if timeframe == "1h" else "*/4"), 3600 * int(timeframe[:-1])
    if timeframe == "1d":
        return crontab(minute=0, hour=0), 86400
    raise ValueError(f"TICK_TIMEFRAMES: {timeframe!r} has no beat schedule")


# Market data (execution/marketdata/refresh.py): at each boundary beat also refreshes the bars of instruments that running
# bots read from Databento or Polygon. The tick batches of that boundary wait TICK_DELAY_SECONDS, so the refresh has
# that long to store the bar that just closed before they read it; one that could not start within that window is
# dropped (the next one fetches from the latest stored bar). A refresh without stored bars fetches MARKET_DATA_WARMUP_BARS, and never
# more than that many at once.
MARKET_DATA_WARMUP_BARS = env.int("MARKET_DATA_WARMUP_BARS", default=500)

for _timeframe in TICK_TIMEFRAMES:
    _schedule, _period = _tick_schedule(_timeframe)
    if min(TICK_MAX_LATENESS_SECONDS, _period / 2) <= TICK_DELAY_SECONDS:
        raise ValueError(
            f"TICK_MAX_LATENESS_SECONDS ({TICK_MAX_LATENESS_SECONDS}, at most half of {_timeframe}) must exceed "
            f"TICK_DELAY_SECONDS ({TICK_DELAY_SECONDS}): every {_timeframe} batch would start late"
        )
    CELERY_BEAT_SCHEDULE[f"market-data-{_timeframe}"] = {
        "task": "execution.refresh_market_data",
        "schedule": _schedule,
        "args": [_timeframe],
        "options": {"queue": "ticks", "expires": min(max(TICK_DELAY_SECONDS, 1), _period * 0.9)},
    }
    CELERY_BEAT_SCHEDULE[f"ticks-{_timeframe}"] = {
        "task": "execution.dispatch_ticks",
        "schedule": _schedule,
        "args": [_timeframe],
        "options": {"queue": "ticks", "expires": _period * 0.9},
    }

# The trace store (traces/partitions.py): tick traces are partitioned by day of bar_ts. Beat creates today's and
# the next TRACE_PARTITIONS_AHEAD_DAYS days' partitions and drops whole days older than TRACE_RETENTION_DAYS, every
# TRACE_PARTITION_MAINTENANCE_INTERVAL_SECONDS. GET /api/bots/{id}/why-not?from=&to= answers windows of at most
# TRACE_WINDOW_MAX_DAYS days.
TRACE_RETENTION_DAYS = env.int("TRACE_RETENTION_DAYS", default=35)
TRACE_PARTITIONS_AHEAD_DAYS = env.int("TRACE_PARTITIONS_AHEAD_DAYS", default=7)
TRACE_PARTITION_MAINTENANCE_INTERVAL_SECONDS = env.int("TRACE_PARTITION_MAINTENANCE_INTERVAL_SECONDS", default=3600)
TRACE_WINDOW_MAX_DAYS = env.int("TRACE_WINDOW_MAX_DAYS", default=92)
# Once a UTC day is over (and TRACE_SUMMARY_DELAY_MINUTES more, for the tick of its last bar) beat stores its runs
# (traces/summaries.py), every TRACE_SUMMARY_INTERVAL_SECONDS; the window reads those instead of every trace.
TRACE_SUMMARY_DELAY_MINUTES = env.int("TRACE_SUMMARY_DELAY_MINUTES", default=10)
TRACE_SUMMARY_INTERVAL_SECONDS = env.int("TRACE_SUMMARY_INTERVAL_SECONDS", default=600)
CELERY_BEAT_SCHEDULE["traces-summarize-closed-days"] = {
    "task": "traces.summarize_closed_days",
    "schedule": TRACE_SUMMARY_INTERVAL_SECONDS,
    "options": {"expires": TRACE_SUMMARY_INTERVAL_SECONDS * 0.9},
}
if TRACE_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("TRACE_RETENTION_DAYS must be at least 1: today's traces are never dropped")
CELERY_BEAT_SCHEDULE["traces-maintain-partitions"] = {
    "task": "traces.maintain_partitions",
    "schedule": TRACE_PARTITION_MAINTENANCE_INTERVAL_SECONDS,
    "options": {"expires": TRACE_PARTITION_MAINTENANCE_INTERVAL_SECONDS * 0.9},
}

# Market state for arbitrage (execution/marketdata/quotes.py, issue 18). `manage.py collect_quotes` (started by
# `make run` beside the worker) polls the crypto venues some active tenant has configured every
# ARB_QUOTE_POLL_SECONDS, each market's book ARB_QUOTE_BOOK_DEPTH levels deep. A quote older than
# ARB_QUOTE_MAX_AGE_MS is never used (execution.marketdata.quote_selectors.usable_quotes says why). Quotes are
# partitioned by day; whole days older than ARB_QUOTE_RETENTION_HOURS are dropped, after every closed minute was
# folded into the 1-minute history; minutes and funding rates are kept ARB_QUOTE_HISTORY_DAYS. A collector heartbeat older than
# ARB_COLLECTOR_STALE_SECONDS makes status DEGRADED for tenants that use a crypto venue.
ARB_QUOTE_MAX_AGE_MS = env.int("ARB_QUOTE_MAX_AGE_MS", default=5000)
ARB_QUOTE_POLL_SECONDS = env.float("ARB_QUOTE_POLL_SECONDS", default=2.0)
ARB_QUOTE_BOOK_DEPTH = env.int("ARB_QUOTE_BOOK_DEPTH", default=5)
ARB_QUOTE_RETENTION_HOURS = env.int("ARB_QUOTE_RETENTION_HOURS", default=48)
ARB_QUOTE_PARTITIONS_AHEAD_DAYS = env.int("ARB_QUOTE_PARTITIONS_AHEAD_DAYS", default=2)
ARB_QUOTE_HISTORY_DAYS = env.int("ARB_QUOTE_HISTORY_DAYS", default=365)
ARB_COLLECTOR_STALE_SECONDS = env.int("ARB_COLLECTOR_STALE_SECONDS", default=30)
if ARB_QUOTE_RETENTION_HOURS < 24:
    raise ImproperlyConfigured("ARB_QUOTE_RETENTION_HOURS must be at least 24: quotes are dropped by whole days")
if ARB_QUOTE_MAX_AGE_MS < 1 or ARB_QUOTE_POLL_SECONDS <= 0:
    raise ImproperlyConfigured("ARB_QUOTE_MAX_AGE_MS and ARB_QUOTE_POLL_SECONDS must be positive")
# Arbitrage scanners (execution/arbitrage, issue 18). ARB_TAKER_FEES: each venue's taker fee as a fraction of
# notional ({"kraken": 0.0026}), for the tenant's actual tier; a venue not named here is priced at ccxt's published
# schedule (its base tier), and a venue with neither is not priced at all (fail closed). Scanner bots scan every
# ARB_SCAN_INTERVAL_SECONDS (beat, execution.dispatch_scans); a scan answers for the quotes as of its start.
ARB_TAKER_FEES = env.json("ARB_TAKER_FEES", default={})
ARB_SCAN_INTERVAL_SECONDS = env.float("ARB_SCAN_INTERVAL_SECONDS", default=2.0)
if not isinstance(ARB_TAKER_FEES, dict) or any(
    isinstance(fee, bool) or not isinstance(fee, int | float) or not 0 <= fee < 1 for fee in ARB_TAKER_FEES.values()
):
    raise ImproperlyConfigured('ARB_TAKER_FEES must be an object of fractions in [0, 1), e.g. {"kraken": 0.0026}')
if ARB_SCAN_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured("ARB_SCAN_INTERVAL_SECONDS must be positive")
CELERY_BEAT_SCHEDULE["execution-dispatch-scans"] = {
    "task": "execution.dispatch_scans",
    "schedule": ARB_SCAN_INTERVAL_SECONDS,
    "options": {"queue": "ticks", "expires": ARB_SCAN_INTERVAL_SECONDS * 0.9},
}
CELERY_BEAT_SCHEDULE["execution-quote-partitions"] = {
    "task": "execution.maintain_quote_partitions",
    "schedule": 3600,
    "options": {"expires": 3600 * 0.9},
}
CELERY_BEAT_SCHEDULE["execution-quote-minutes"] = {
    "task": "execution.downsample_quotes",
    "schedule": 60,
    "options": {"expires": 60 * 0.9},
}
# Funding/basis arbitrage (execution/arbitrage/funding_services.py): beat books each open position's funding every
# ARB_FUNDING_BOOK_SECONDS, at the perpetual's mark no older than ARB_FUNDING_MARK_MAX_AGE_SECONDS before the funding
# time (a funding time without one is left unbooked and reported, never booked at a guessed price).
ARB_FUNDING_BOOK_SECONDS = env.int("ARB_FUNDING_BOOK_SECONDS", default=300)
ARB_FUNDING_MARK_MAX_AGE_SECONDS = env.int("ARB_FUNDING_MARK_MAX_AGE_SECONDS", default=300)
if ARB_FUNDING_BOOK_SECONDS < 1 or ARB_FUNDING_MARK_MAX_AGE_SECONDS < 1:
    raise ImproperlyConfigured("ARB_FUNDING_BOOK_SECONDS and ARB_FUNDING_MARK_MAX_AGE_SECONDS must be positive")
CELERY_BEAT_SCHEDULE["execution-book-funding"] = {
    "task": "execution.book_funding",
    "schedule": ARB_FUNDING_BOOK_SECONDS,
    "options": {"expires": ARB_FUNDING_BOOK_SECONDS * 0.9},
}
# LIVE spot scanners' cash (execution/arbitrage/services.py live_cash_sync): every ARB_LIVE_CASH_SYNC_SECONDS beat
# sets the live inventory's quote-currency rows at each spot venue a running LIVE spot scanner trades at to the
# venue account's balance (fetch_balance); the base rows stay what our fills booked.
ARB_LIVE_CASH_SYNC_SECONDS = env.int("ARB_LIVE_CASH_SYNC_SECONDS", default=30)
if ARB_LIVE_CASH_SYNC_SECONDS < 1:
    raise ImproperlyConfigured("ARB_LIVE_CASH_SYNC_SECONDS must be positive")
CELERY_BEAT_SCHEDULE["execution-sync-live-cash"] = {
    "task": "execution.sync_live_cash",
    "schedule": ARB_LIVE_CASH_SYNC_SECONDS,
    "options": {"expires": ARB_LIVE_CASH_SYNC_SECONDS * 0.9},
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "controlplane.logging.json_formatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
        # The Twilio SDK writes every request's URL and headers at INFO; our usage event records each call.
        "twilio.http_client": {"level": "WARNING"},
    },
}


# --- Integrations (integrations/, README "Keys") ---
# Fernet keys for operator-entered credentials, newest first; `manage.py rotate_credentials` re-encrypts under the
# first. With none set, one is generated once into $CONTROLPLANE_DATA_DIR/credentials-encryption-key.
def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


CREDENTIALS_ENCRYPTION_KEYS = env.list("CREDENTIALS_ENCRYPTION_KEYS", default=[]) or [
    _local_secret("credentials-encryption-key", generate=_new_fernet_key)
]


# INTEGRATION_ENV_CREDENTIALS (every registry credential present in the environment, the fallback behind keys
# entered in admin) is read at start-up by the integrations app, which knows the providers' credential names
# (integrations.apps): settings import no app. A settings module may still set it outright.
# Per-provider base URL overrides ("openai=https://proxy.example,polygon=..."), for proxies and test servers.
INTEGRATION_BASE_URLS = env.dict("INTEGRATION_BASE_URLS", default={})
INTEGRATION_TIMEOUT_SECONDS = env.float("INTEGRATION_TIMEOUT_SECONDS", default=10.0)
INTEGRATION_RETRY_ATTEMPTS = env.int("INTEGRATION_RETRY_ATTEMPTS", default=3)
INTEGRATION_RETRY_BACKOFF_SECONDS = env.float("INTEGRATION_RETRY_BACKOFF_SECONDS", default=0.5)
INTEGRATION_BREAKER_FAIL_MAX = env.int("INTEGRATION_BREAKER_FAIL_MAX", default=5)
INTEGRATION_BREAKER_RESET_SECONDS = env.int("INTEGRATION_BREAKER_RESET_SECONDS", default=60)
INTEGRATION_VERIFY_INTERVAL_SECONDS = env.int("INTEGRATION_VERIFY_INTERVAL_SECONDS", default=3600)
STATUS_PROBE_TIMEOUT_SECONDS = env.float("STATUS_PROBE_TIMEOUT_SECONDS", default=2.0)
# Console pages and freshness fields read system status through a per-process cache this many seconds old at most.
STATUS_CACHE_SECONDS = env.float("STATUS_CACHE_SECONDS", default=5.0)
# A worker or beat heartbeat older than this makes system status DEGRADED: a frozen worker is seen within it.
# At least two heartbeat intervals, so one late beat is not an alarm.
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", default=30)

CELERY_BEAT_SCHEDULE["integrations-reverify"] = {
    "task": "integrations.reverify_all_tenants",
    "schedule": INTEGRATION_VERIFY_INTERVAL_SECONDS,
    "options": {"queue": "verify", "expires": max(INTEGRATION_VERIFY_INTERVAL_SECONDS - 30, 30)},
}
# Routing lives here only (a task's own ``queue`` attribute is deprecated and ignored from Celery 6).
CELERY_TASK_ROUTES = {
    "integrations.*": {"queue": "verify"},
    "execution.tick_batch": {"queue": "ticks"},
    "execution.replay_runner": {"queue": "backtests"},
}

# Sim venues and their fill models (execution.fill_model.FillModel.from_config): fill_at next_open|close, slippage_ticks,
# slippage_bps, fee_per_unit, fee_bps, max_volume_share, min_quantity_step. SIM_FILL_MODEL configures "sim".
SIM_VENUE_FILL_MODELS = {"sim": env.json("SIM_FILL_MODEL", default={})}
# Paper twins of the spot venues for quote scanners (execution.arbitrage): an order at "sim-kraken" fills against
# kraken's recorded quotes (buy at the ask, sell at the bid, up to the quoted size: fill_model.simulate_quote_fill),
# never on bars, with the taker fee of the scanner's fee schedule.
ARB_PAPER_VENUE_PREFIX = "sim-"
SIM_VENUE_FILL_MODELS |= {
    f"{ARB_PAPER_VENUE_PREFIX}{venue}": {"quotes": venue} for venue in ("coinbase", "kraken", "binanceus")
}
# The perpetual's twin for funding scanners: "sim-hyperliquid" fills against hyperliquid's recorded perpetual book
# (its swap quotes), collateralised 1x in USDC (execution.orders.quote_fills.paper_funds_short).
SIM_VENUE_FILL_MODELS[f"{ARB_PAPER_VENUE_PREFIX}hyperliquid"] = {"quotes": "hyperliquid"}
# Enqueue the OMS task when an intent is submitted through the API (the tick enqueues its own batches).
OMS_ENQUEUE_ON_SUBMIT = env.bool("OMS_ENQUEUE_ON_SUBMIT", default=True)
# The OMS claims PENDING intents OMS_BATCH_SIZE at a time (SKIP LOCKED, one transaction per batch) and sends a batch's
# legs concurrently on OMS_SEND_THREADS threads per worker process (execution.orders.sending).
OMS_BATCH_SIZE = env.int("OMS_BATCH_SIZE", default=50)
OMS_SEND_THREADS = env.int("OMS_SEND_THREADS", default=16)
CELERY_TASK_ROUTES["execution.oms_*"] = {"queue": "oms"}
# At most one OMS run waits in the queue per tenant (execution.orders.oms_runs): a submission sets a flag in the
# broker's Redis for OMS_RUN_REQUEST_TTL_SECONDS and sends the run only if the flag was not set; the run clears it as
# it starts. Beat asks for a run of every tenant with PENDING intents every OMS_PENDING_SWEEP_SECONDS (the safety
# net for a lost run request).
OMS_RUN_REQUEST_TTL_SECONDS = env.int("OMS_RUN_REQUEST_TTL_SECONDS", default=10)
# An OMS run sweeps for cancel requests whose hook failed before it claims, at most once every
# OMS_CANCEL_SWEEP_SECONDS per worker process and tenant (0: before every claim); the recovery sweep runs it too.
OMS_CANCEL_SWEEP_SECONDS = env.float("OMS_CANCEL_SWEEP_SECONDS", default=1.0)
OMS_PENDING_SWEEP_SECONDS = env.int("OMS_PENDING_SWEEP_SECONDS", default=15)
CELERY_BEAT_SCHEDULE["execution-oms-sweep-pending"] = {
    "task": "execution.oms_sweep_pending",
    "schedule": OMS_PENDING_SWEEP_SECONDS,
    "options": {"expires": OMS_PENDING_SWEEP_SECONDS * 0.9},
}
# Recovery (execution.orders.recovery.resolve_unacknowledged_orders): orders left SUBMITTING without a venue id for longer than
# OMS_UNACKNOWLEDGED_AFTER_SECONDS (more than a send can take: keep it above INTEGRATION_TIMEOUT_SECONDS) are looked
# up at the venue, never re-sent; the same sweep records live fills. Beat runs it every OMS_RECOVERY_INTERVAL_SECONDS.
OMS_UNACKNOWLEDGED_AFTER_SECONDS = env.int("OMS_UNACKNOWLEDGED_AFTER_SECONDS", default=60)
OMS_RECOVERY_INTERVAL_SECONDS = env.int("OMS_RECOVERY_INTERVAL_SECONDS", default=30)
CELERY_BEAT_SCHEDULE["execution-oms-recover"] = {
    "task": "execution.oms_recover_all_tenants",
    "schedule": OMS_RECOVERY_INTERVAL_SECONDS,
    "options": {"queue": "oms", "expires": OMS_RECOVERY_INTERVAL_SECONDS * 0.9},
}
# Live reconcile: every RUNNING LIVE bot against its venue, every LIVE_RECONCILE_INTERVAL_SECONDS.
LIVE_RECONCILE_INTERVAL_SECONDS = env.int("LIVE_RECONCILE_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["execution-reconcile-live"] = {
    "task": "execution.reconcile_live_all_tenants",
    "schedule": LIVE_RECONCILE_INTERVAL_SECONDS,
    "options": {"expires": LIVE_RECONCILE_INTERVAL_SECONDS * 0.9},
}
# Futures roll (integrations/providers/futures_contracts.py): weekdays before the third-Friday expiry to roll, per root
# ({"ES": 5}); unset products use 6 (the Thursday of the week before expiry).
FUTURES_ROLL_BUSINESS_DAYS = env.json("FUTURES_ROLL_BUSINESS_DAYS", default={})

# --- Backtests (backtests/) ---
# Parameter sets per Celery task of a matrix: bigger chunks amortize the bar read, smaller ones spread the work.
BACKTEST_MATRIX_CHUNK_SIZE = env.int("BACKTEST_MATRIX_CHUNK_SIZE", default=25)
# Annualized figures (CAGR, volatility, Sharpe, Sortino, Calmar) of a range shorter than this many days are None
# with the reason (backtests/metrics.py): 1.4 days of bars annualized into a CAGR of 5e34.
METRICS_MIN_DAYS_FOR_ANNUALIZED = env.float("METRICS_MIN_DAYS_FOR_ANNUALIZED", default=30.0)
CELERY_TASK_ROUTES["backtests.*"] = {"queue": "backtests"}
# Autonomy tiers (oversight/autonomy.py): paper-vs-backtest fill parity needed for T2 and T3, and how often beat
# rescores PAPER and LIVE bots.
AUTONOMY_T2_MIN_PARITY = env.float("AUTONOMY_T2_MIN_PARITY", default=0.8)
AUTONOMY_T3_MIN_PARITY = env.float("AUTONOMY_T3_MIN_PARITY", default=0.95)
# A LIVE bot at T2 trades with its size and loss limits multiplied by this factor (T3: full limits; below T2:
# reduce only). Read by the risk state (execution/risk/state.py) on every order check.
AUTONOMY_T2_LIMIT_FACTOR = env.float("AUTONOMY_T2_LIMIT_FACTOR", default=0.25)
AUTONOMY_SCORE_INTERVAL_SECONDS = env.int("AUTONOMY_SCORE_INTERVAL_SECONDS", default=3600)
# Scanner bots (quote strategies, issue 18) have no bars to backtest: their BACKTESTED gate and autonomy T1 read the
# latest finished quote replay of their current parameters (oversight/scanner_evidence.py) instead. It passes with
# at least SCANNER_GATE_MIN_QUOTE_DAYS UTC days of scans on usable quotes, SCANNER_GATE_MIN_INTENTS intents, at most
# SCANNER_GATE_MAX_REJECTED_LEG_SHARE of its orders rejected, no failed scan, and a realized total of its settled
# arb_pnl / basis_pnl rows of at least SCANNER_GATE_MIN_REALIZED_PNL (quote currency; none settled or an unknown
# fee fails).
SCANNER_GATE_MIN_QUOTE_DAYS = env.int("SCANNER_GATE_MIN_QUOTE_DAYS", default=3)
SCANNER_GATE_MIN_INTENTS = env.int("SCANNER_GATE_MIN_INTENTS", default=20)
SCANNER_GATE_MAX_REJECTED_LEG_SHARE = env.float("SCANNER_GATE_MAX_REJECTED_LEG_SHARE", default=0.05)
SCANNER_GATE_MIN_REALIZED_PNL = env.float("SCANNER_GATE_MIN_REALIZED_PNL", default=0.0)
if SCANNER_GATE_MIN_QUOTE_DAYS < 1 or SCANNER_GATE_MIN_INTENTS < 1 or not 0 <= SCANNER_GATE_MAX_REJECTED_LEG_SHARE <= 1:
    raise ImproperlyConfigured(
        "SCANNER_GATE_MIN_QUOTE_DAYS and SCANNER_GATE_MIN_INTENTS must be at least 1, "
        "SCANNER_GATE_MAX_REJECTED_LEG_SHARE a fraction in [0, 1]"
    )
# The supervisor (oversight/supervisor/): one loop, one instance (a Postgres advisory lock), every
# SUPERVISOR_INTERVAL_SECONDS over every PAPER and LIVE bot and every tenant. Each trigger's default threshold is
# below; an owner overrides them per tenant (PUT /api/tenant/supervisor-thresholds). A breach that comes back within
# SUPERVISOR_REPEAT_WINDOW_SECONDS, or whose value passes SUPERVISOR_WORSE_FACTOR x its threshold, climbs one step.
SUPERVISOR_INTERVAL_SECONDS = env.int("SUPERVISOR_INTERVAL_SECONDS", default=15)
SUPERVISOR_REPEAT_WINDOW_SECONDS = env.int("SUPERVISOR_REPEAT_WINDOW_SECONDS", default=3600)
SUPERVISOR_WORSE_FACTOR = env.float("SUPERVISOR_WORSE_FACTOR", default=2.0)
SUPERVISOR_DRAWDOWN_FRACTION = env.float("SUPERVISOR_DRAWDOWN_FRACTION", default=0.5)
SUPERVISOR_DAILY_LOSS_FRACTION = env.float("SUPERVISOR_DAILY_LOSS_FRACTION", default=0.8)
SUPERVISOR_TICK_ERRORS = env.int("SUPERVISOR_TICK_ERRORS", default=3)
SUPERVISOR_RATE_WINDOW_SECONDS = env.int("SUPERVISOR_RATE_WINDOW_SECONDS", default=900)
SUPERVISOR_RATE_MIN_ORDERS = env.int("SUPERVISOR_RATE_MIN_ORDERS", default=4)
SUPERVISOR_REJECT_RATE = env.float("SUPERVISOR_REJECT_RATE", default=0.5)
SUPERVISOR_VENUE_ERROR_RATE = env.float("SUPERVISOR_VENUE_ERROR_RATE", default=0.3)
SUPERVISOR_STALE_BARS = env.int("SUPERVISOR_STALE_BARS", default=3)
SUPERVISOR_HEARTBEAT_SECONDS = env.int("SUPERVISOR_HEARTBEAT_SECONDS", default=RUNNER_HEARTBEAT_STALE_SECONDS)
SUPERVISOR_MIN_PARITY = env.float("SUPERVISOR_MIN_PARITY", default=AUTONOMY_T2_MIN_PARITY)
SUPERVISOR_STATUS_GRACE_SECONDS = env.int("SUPERVISOR_STATUS_GRACE_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["oversight-supervisor"] = {
    "task": "oversight.supervisor_sweep",
    "schedule": SUPERVISOR_INTERVAL_SECONDS,
    "options": {"expires": SUPERVISOR_INTERVAL_SECONDS * 0.9},
}
# Decay: beat re-backtests PAPER and LIVE bots over the last BACKTEST_DECAY_LOOKBACK_DAYS.
BACKTEST_DECAY_INTERVAL_SECONDS = env.int("BACKTEST_DECAY_INTERVAL_SECONDS", default=86400)
BACKTEST_DECAY_LOOKBACK_DAYS = env.int("BACKTEST_DECAY_LOOKBACK_DAYS", default=30)
# Matrix chunks sent but never started, or lost mid-run, are sent again (or fail their matrix) on the watchdog's
# interval; on the default queue so that a backtests queue full of long chunks does not delay it.
CELERY_BEAT_SCHEDULE["backtests-sweep-matrix-chunks"] = {
    "task": "backtests.sweep_matrix_chunks",
    "schedule": WATCHDOG_INTERVAL_SECONDS,
    "options": {"queue": "default", "expires": WATCHDOG_INTERVAL_SECONDS * 0.9},
}
CELERY_BEAT_SCHEDULE["backtests-autonomy-scores"] = {
    "task": "backtests.autonomy_scores_all_tenants",
    "schedule": AUTONOMY_SCORE_INTERVAL_SECONDS,
    "options": {"queue": "backtests", "expires": AUTONOMY_SCORE_INTERVAL_SECONDS * 0.9},
}
CELERY_BEAT_SCHEDULE["backtests-decay"] = {
    "task": "backtests.decay_all_tenants",
    "schedule": BACKTEST_DECAY_INTERVAL_SECONDS,
    "options": {"queue": "backtests", "expires": BACKTEST_DECAY_INTERVAL_SECONDS * 0.9},
}
