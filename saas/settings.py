"""Trainyard settings: one module, configured from the environment (django-environ).

Every variable is documented in the README's configuration table. Integrations switch on by
their variables: with ``DATABASE_URL`` and ``REDIS_URL`` set, Trainyard runs on PostgreSQL and
Redis (production and the test suite); without them it falls back to SQLite and kombu's
filesystem transport under ``var/`` so ``make demo`` works on a bare machine.

Kept as one module past DESIGN §2's ~450 lines on purpose: it is a flat list of settings read
from the environment, in the order the README's table gives them, with no logic to follow
between them; split files would make "where is X set?" a search and Django reads one module.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

from saas.common.logs import configure_structlog, log_format, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env.str("TRAINYARD_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-key-change-me-" + "x" * 24)
# No `testserver` here: Django's test environment (pytest-django too) adds it while tests run,
# and nowhere else should a request with that Host be answered.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``TRAINYARD_PROXY_SSL_HEADER`` (``"X-Forwarded-Proto: https"``, or ``=`` instead of
    ``:``) as Django's ``SECURE_PROXY_SSL_HEADER`` (``("HTTP_X_FORWARDED_PROTO", "https")``);
    None when empty. Set it only behind a proxy that overwrites that header on every request,
    or any client can claim HTTPS. Raises ImproperlyConfigured for a value without a header
    name and value."""
    value = value.strip()
    if not value:
        return None
    sep = ":" if ":" in value else "="
    name, _, expected = value.partition(sep)
    name, expected = name.strip(), expected.strip()
    if not name or not expected or sep not in value:
        raise environ.ImproperlyConfigured(
            "TRAINYARD_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https'"
        )
    return "HTTP_" + name.upper().replace("-", "_"), expected


# Behind a TLS-terminating proxy, the header it sets to say the client used HTTPS (so
# request.is_secure() and the redirects Django builds say https://). Unset: trust no header.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("TRAINYARD_PROXY_SSL_HEADER", default=""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "hijack",  # support sessions: staff act as a tenant user (saas.tenancy.impersonation)
    "axes",  # sign-in lockout (django-axes): failed attempts per account, in the database
    "django_prometheus",  # request and database metrics, served at /metrics (saas.console.metrics)
    "django_structlog",  # request and task context in every log line (saas.common.logs)
    "saas.limits",
    "saas.accounts",
    "saas.tenancy",
    "saas.apikeys",
    "saas.datasets",
    "saas.jobs",
    "saas.registry",
    "saas.metering",
    "saas.inference",
    "saas.billing",
    "saas.api",
    "saas.dashboard",
    "saas.console",
    # Only management commands and Celery tasks; nothing here imports TensorFlow at import time.
    "workers",
]

MIDDLEWARE = [
    # First and last, as django-prometheus asks: request counts and latency by view.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Early, so every later middleware's lines and responses carry the request id; the user
    # and organisation are bound once authentication has run (saas.common.request_log).
    "saas.common.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "saas.api.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "saas.dashboard.middleware.ServerTimingMiddleware",
    "hijack.middleware.HijackUserMiddleware",
    # After hijack's: ends expired support sessions, refuses writes in read-only ones.
    "saas.console.middleware.SupportSessionMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout response.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "saas.urls"
WSGI_APPLICATION = "saas.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# People sign in with their email address (any letter case).
# django-axes' backend first: it refuses a locked-out account before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "saas.accounts.backends.EmailBackend",
]
# Sign-in lockout (django-axes, the dashboard's and the admin's log-in alike): after
# TRAINYARD_LOGIN_FAILURE_LIMIT failed attempts on one account (by email, any letter case, from
# any address) the account cannot sign in for TRAINYARD_LOGIN_LOCKOUT_MINUTES; a success resets
# the count. Whether the email has an account makes no difference (attempts on unknown emails
# are counted and locked the same). The per-address limits are TRAINYARD_AUTH_* below.
AXES_FAILURE_LIMIT = env.int("TRAINYARD_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("TRAINYARD_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "saas.limits.auth_throttle.axes_username"
AXES_CLIENT_IP_CALLABLE = "saas.limits.auth_throttle.axes_client_ip"
AXES_CLIENT_STR_CALLABLE = "saas.limits.auth_throttle.axes_client_str"  # no tokens in its logs
AXES_LOCKOUT_CALLABLE = "saas.dashboard.auth.locked_out"
AXES_ENABLE_ADMIN = False  # unlock with `manage.py axes_reset_username EMAIL`
# Per client address (saas.limits.ratelimit token buckets in Redis): at most this many sign-in,
# sign-up and password-reset submissions each per window; a password reset also at most
# TRAINYARD_PASSWORD_RESETS_PER_EMAIL emails to one address per window (further requests get
# the same answer and send nothing).
TRAINYARD_AUTH_ATTEMPTS_PER_IP = env.int("TRAINYARD_AUTH_ATTEMPTS_PER_IP", default=20)
TRAINYARD_AUTH_WINDOW_SECONDS = env.int("TRAINYARD_AUTH_WINDOW_SECONDS", default=600)
TRAINYARD_PASSWORD_RESETS_PER_EMAIL = env.int("TRAINYARD_PASSWORD_RESETS_PER_EMAIL", default=3)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# A CSRF refusal is the dashboard's error page or a problem, never Django's HTML page.
CSRF_FAILURE_VIEW = "saas.api.errors.forbidden_view"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)

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
                "saas.dashboard.context.dashboard",
            ]
        },
    }
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'trainyard.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# django-prometheus' wrapper of the same backend: query counts and errors per database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
if DATABASES["default"]["ENGINE"] == "django_prometheus.db.backends.postgresql":
    # Persistent connections: a new PostgreSQL session costs a backend fork and the auth
    # handshake (~5 ms here, more than the rest of an API request). Each gunicorn sync worker
    # keeps its one connection for up to CONN_MAX_AGE seconds; the health check (a `SELECT 1`
    # before the first query of a request) replaces a connection the server closed (restart,
    # idle timeout) instead of failing that request. Not psycopg's pool: a sync worker serves
    # one request at a time and a pool cannot be shared across forked workers, so it would be
    # this same one connection per process plus a checkout per request and pool threads
    # (README, "The request path"). Celery's Django fix-up closes the connection before and
    # after every task regardless (celery/fixups/django.py), so workers hold none across tasks.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's web server and worker share the file; wait on the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves the apps' static files (the API docs' Swagger UI) without collectstatic.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Artifacts (datasets, SavedModels) go through Django's storage API, keyed by tenant.
MEDIA_ROOT = Path(env.str("TRAINYARD_STORAGE_DIR", default=str(VAR_DIR / "storage")))
# With TRAINYARD_S3_BUCKET (or AWS_STORAGE_BUCKET_NAME) set, artifacts live in S3-compatible
# object storage (AWS S3, MinIO, ...) via django-storages, so web, serve and every worker
# machine share them without a shared volume. Objects are private; downloads stream through
# our views (/v1/models/{id}/download, workers' local_copy), so no presigned URLs are needed.
TRAINYARD_S3_BUCKET = env.str("TRAINYARD_S3_BUCKET", default="") or env.str(
    "AWS_STORAGE_BUCKET_NAME", default=""
)
if TRAINYARD_S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": TRAINYARD_S3_BUCKET,
            "endpoint_url": env.str("TRAINYARD_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("TRAINYARD_S3_REGION", default="") or None,
            # Empty: boto3's own chain (instance role, AWS_* variables, ~/.aws).
            "access_key": env.str("TRAINYARD_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("TRAINYARD_S3_SECRET_ACCESS_KEY", default="") or None,
            # MinIO and most non-AWS endpoints want path-style (http://host/bucket/key).
            "addressing_style": env.str("TRAINYARD_S3_ADDRESSING_STYLE", default="") or None,
            "default_acl": "private",
            "querystring_auth": False,
            # As FileSystemStorage: a clashing name gets a suffix, never overwrites.
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- uploads -------------------------------------------------------------------------------
TRAINYARD_MAX_UPLOAD_BYTES = env.int("TRAINYARD_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES = env.int(
    "TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES", default=512 * 1024 * 1024
)
TRAINYARD_ZIP_MAX_ENTRIES = env.int("TRAINYARD_ZIP_MAX_ENTRIES", default=20_000)
TRAINYARD_MAX_IMAGE_PIXELS = env.int("TRAINYARD_MAX_IMAGE_PIXELS", default=40_000_000)
# Upload validation budgets, decided before the costly work so that no upload holds a web
# worker more than a few seconds (README, "Upload budgets", has the measured worst cases):
# lines of a CSV (a bound on its rows, counted before parsing); pixels of one dataset image and of a whole archive, read from the images'
# headers before anything is decoded; and a backstop on the time validation may take at all.
# A refusal is a 413 problem naming the budget, its setting, the limit and the value.
TRAINYARD_CSV_MAX_LINES = env.int("TRAINYARD_CSV_MAX_LINES", default=250_000)
TRAINYARD_DATASET_MAX_IMAGE_PIXELS = env.int(
    "TRAINYARD_DATASET_MAX_IMAGE_PIXELS", default=4096 * 4096
)
TRAINYARD_ZIP_MAX_TOTAL_PIXELS = env.int("TRAINYARD_ZIP_MAX_TOTAL_PIXELS", default=100_000_000)
TRAINYARD_VALIDATION_MAX_SECONDS = env.float("TRAINYARD_VALIDATION_MAX_SECONDS", default=10.0)
# A job read alone (GET /v1/training-jobs/{id}) embeds its confusion matrix up to this many
# classes (2,500 cells); past it, and in every list, only the download link.
TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES = env.int(
    "TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES", default=50
)
# Django refuses bodies above this before our validation sees them; keep it above the limit
# so our 413 problem (not Django's 400) is what the client gets.
# JSON bodies (e.g. a predict request of 256 base64 images) up to 64 MiB; above, a 413 problem.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 300  # a multipart predict may carry 256 files
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- training and inference ----------------------------------------------------------------
TRAINYARD_HUB_HANDLES = env.json(
    "TRAINYARD_HUB_HANDLES",
    default={
        "mobilenet_v2": "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
    },
)
TRAINYARD_HEARTBEAT_STALE_SECONDS = env.int("TRAINYARD_HEARTBEAT_STALE_SECONDS", default=120)
TRAINYARD_REAPER_INTERVAL_SECONDS = env.float("TRAINYARD_REAPER_INTERVAL_SECONDS", default=60.0)
# Scheduling and worker faults (saas/jobs/services/start.py). A job whose worker died (OOM,
# SIGKILL, time limit) gets this many attempts in all, then fails `worker_lost`, unbilled.
TRAINYARD_TRAINING_MAX_ATTEMPTS = env.int("TRAINYARD_TRAINING_MAX_ATTEMPTS", default=3)
# Fair share: tenants that started fewer jobs within this window go first.
TRAINYARD_FAIR_SHARE_WINDOW_SECONDS = env.int("TRAINYARD_FAIR_SHARE_WINDOW_SECONDS", default=3600)
# A ticket whose queued jobs are all held back by tenant limits waits base × 2^n s, capped.
TRAINYARD_DEFER_BASE_SECONDS = env.float("TRAINYARD_DEFER_BASE_SECONDS", default=1.0)
TRAINYARD_DEFER_MAX_SECONDS = env.float("TRAINYARD_DEFER_MAX_SECONDS", default=30.0)
# Training workers write a liveness beat to Redis this often; a worker is alive for 3 beats.
TRAINYARD_WORKER_BEAT_SECONDS = env.float("TRAINYARD_WORKER_BEAT_SECONDS", default=10.0)
TRAINYARD_PREDICT_TIMEOUT_SECONDS = env.float("TRAINYARD_PREDICT_TIMEOUT_SECONDS", default=30.0)
# Where the data plane (`python -m serve`) listens, for the dashboard's "try it" and for a
# predict request that reaches the web tier directly (the proxy normally routes it to serve).
TRAINYARD_SERVE_URL = env.str("TRAINYARD_SERVE_URL", default="http://127.0.0.1:8001")
TRAINYARD_MODEL_CACHE_DIR = Path(
    env.str("TRAINYARD_MODEL_CACHE_DIR", default=str(VAR_DIR / "model-cache"))
)

# --- Celery ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Celery's broadcast (pidbox) exchanges; kombu's default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    for _d in (
        _broker_dir / "out",
        _broker_dir / "processed",
        _broker_dir / "control",
        VAR_DIR / "results",
    ):
        _d.mkdir(parents=True, exist_ok=True)
# acks_late is opted into per task, and only by tasks that are safe to run twice (each task in
# workers/tasks/ says why it is or is not); a new task is acknowledged on receipt until it
# makes that case.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Hard limit below the broker's visibility timeout, so a message is never redelivered while
# its first delivery may still be running.
CELERY_TASK_TIME_LIMIT = env.int(
    "TRAINYARD_TRAINING_TIME_LIMIT_SECONDS",
    default=min(6 * 3600, int(CELERY_VISIBILITY_TIMEOUT * 0.9)),
)
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise environ.ImproperlyConfigured(
        "the task time limit must be below CELERY_VISIBILITY_TIMEOUT"
    )
CELERY_TASK_SOFT_TIME_LIMIT = int(CELERY_TASK_TIME_LIMIT * 0.95)
# The training attempt stops itself at this many seconds, between two batches (JobMonitor):
# a clean stop, billed as ``time_limit``. Celery's soft limit (a signal that may land in the
# middle of a database call) stays as the backstop for a phase that never reaches a batch.
TRAINYARD_TRAINING_STOP_SECONDS = env.int(
    "TRAINYARD_TRAINING_STOP_SECONDS", default=int(CELERY_TASK_TIME_LIMIT * 0.9)
)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (sent, started, succeeded…) for Flower's live view and its /metrics: one small
# pub/sub message per state change, nothing stored.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
# Celery beat's periodic tasks, all on the `maintenance` queue (saas.celery.Queue.MAINTENANCE;
# also routed there by name), which has its own worker, so none waits behind a training job.
# `expires` drops a message that no maintenance worker picked up before its next run was due
# (a worker that was down for hours does not then run a backlog of duplicates); it is kept
# below the interval so at most one copy of an entry waits. Storage sampling bills the hour in
# which it runs, so its expiry (50 min after :05) also keeps a late sample inside its own hour.
# Period close has no expiry: it runs monthly, must not be lost, and is safe to run late.
_MAINTENANCE = "maintenance"
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-training-jobs": {
        "task": "trainyard.jobs.reap_stuck",
        "schedule": TRAINYARD_REAPER_INTERVAL_SECONDS,
        "options": {"queue": _MAINTENANCE, "expires": TRAINYARD_REAPER_INTERVAL_SECONDS},
    },
    "close-billing-period": {
        "task": "trainyard.billing.period_close",
        "schedule": crontab(day_of_month="1", hour="0", minute="15"),
        "options": {"queue": _MAINTENANCE},
    },
    "sample-storage": {
        "task": "trainyard.billing.storage_sample",
        "schedule": crontab(minute="5"),
        "options": {"queue": _MAINTENANCE, "expires": 3000},
    },
    "enforce-past-due-grace": {
        "task": "trainyard.billing.enforce_grace",
        "schedule": crontab(minute="20"),
        "options": {"queue": _MAINTENANCE, "expires": 3000},
    },
    "usage-warnings": {
        "task": "trainyard.billing.usage_warnings",
        "schedule": crontab(minute="25"),
        "options": {"queue": _MAINTENANCE, "expires": 3000},
    },
    # Invoices whose Stripe push failed, each retried when its exponential backoff has passed
    # (saas.billing.services.stripe_push); safe to run at any time, twice.
    "retry-stripe-pushes": {
        "task": "trainyard.billing.stripe_push_retry",
        "schedule": 300.0,
        "options": {"queue": _MAINTENANCE, "expires": 240},
    },
    # The data plane's replicas flush every second; this is the backstop when none runs.
    "flush-prediction-windows": {
        "task": "trainyard.inference.flush_prediction_windows",
        "schedule": 10.0,
        "options": {"queue": _MAINTENANCE, "expires": 10},
    },
    "purge-idempotency-keys": {
        "task": "trainyard.api.purge_idempotency_keys",
        "schedule": 3600.0,
        "options": {"queue": _MAINTENANCE, "expires": 3000},
    },
}
# Maintenance tasks are short (a few queries per organisation); a hung one must not hold the
# maintenance worker (and so the reaper) for the training time limit. Also below the
# visibility timeout, as they are acks_late.
TRAINYARD_MAINTENANCE_TIME_LIMIT_SECONDS = env.int(
    "TRAINYARD_MAINTENANCE_TIME_LIMIT_SECONDS", default=min(30 * 60, CELERY_TASK_TIME_LIMIT)
)
if TRAINYARD_MAINTENANCE_TIME_LIMIT_SECONDS >= CELERY_VISIBILITY_TIMEOUT:
    raise environ.ImproperlyConfigured(
        "the maintenance time limit must be below CELERY_VISIBILITY_TIMEOUT"
    )

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "saas.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "saas.api.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "saas.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trainyard API",
    "DESCRIPTION": "Upload labelled data, train classifiers, predict over REST.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# GET /metrics: loopback clients always; others with TRAINYARD_METRICS_PUBLIC=true or the
# header "Authorization: Bearer <TRAINYARD_METRICS_TOKEN>" (empty: no token accepted).
TRAINYARD_METRICS_PUBLIC = env.bool("TRAINYARD_METRICS_PUBLIC", default=False)
TRAINYARD_METRICS_TOKEN = env.str("TRAINYARD_METRICS_TOKEN", default="")

# Logs: one JSON object per line on stderr from every process (web, workers, serve), the
# standard library's lines and django-structlog's alike (saas.common.logs, README "Logs").
TRAINYARD_LOG_FORMAT = log_format(env.str("TRAINYARD_LOG_FORMAT", default=""), debug=DEBUG)
LOGGING = logging_config(fmt=TRAINYARD_LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
configure_structlog()
# django-structlog: request_id (an incoming X-Request-ID is kept when it looks like one, see
# saas.common.request_log), user_id and the client address per request; carried into the
# Celery tasks a request sends, and task_id / parent_task_id in them.
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Our client_ip (TRAINYARD_TRUSTED_PROXIES) is bound instead: django-structlog's ipware would
# believe any X-Forwarded-For a client sends.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False

# --- tenancy limits ----------------------------------------------------------------------------
# The per-plan limits (request rates per key and per organisation, running and queued jobs)
# are data on the billing Plan rows, edited in the admin; only the rate-limit window is here.
TRAINYARD_RATE_LIMIT_WINDOW_SECONDS = env.int("TRAINYARD_RATE_LIMIT_WINDOW_SECONDS", default=60)
# How many reverse proxies in front of the web tier append to X-Forwarded-For (0 = none:
# the socket's address is the client).
TRAINYARD_TRUSTED_PROXIES = env.int("TRAINYARD_TRUSTED_PROXIES", default=0)
# Support sessions (django-hijack): staff only, never staff or superuser targets; our own
# banner (templates/console/support_banner.html) instead of hijack's injected one.
HIJACK_PERMISSION_CHECK = "saas.tenancy.impersonation.can_impersonate"
HIJACK_INSERT_BEFORE = None
TRAINYARD_SUPPORT_SESSION_MINUTES = env.int("TRAINYARD_SUPPORT_SESSION_MINUTES", default=30)
# The console marks a queue backed up when its oldest queued job has waited this long (s).
TRAINYARD_CONSOLE_BACKLOG_SECONDS = env.int("TRAINYARD_CONSOLE_BACKLOG_SECONDS", default=300)
# How long a web process trusts rows it read on the request path before reading them again: an
# API key with its organisation's status and its creator's role, a plan's rate limits, and
# (immutable) trained-model rows. A revoked key, a suspended organisation or a lowered limit
# takes effect within this many seconds on every process (saas.common.ttlcache; at most 1,
# 0 turns the caches off).
TRAINYARD_REQUEST_CACHE_SECONDS = env.float("TRAINYARD_REQUEST_CACHE_SECONDS", default=1.0)
if not 0 <= TRAINYARD_REQUEST_CACHE_SECONDS <= 1:
    raise environ.ImproperlyConfigured("TRAINYARD_REQUEST_CACHE_SECONDS must be between 0 and 1")
TRAINYARD_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# How long a first request holds its Idempotency-Key in flight before a retry may take it over
# (its holder was killed): above gunicorn's --timeout (120 s), far below the 24 h TTL.
TRAINYARD_IDEMPOTENCY_LEASE_SECONDS = env.int("TRAINYARD_IDEMPOTENCY_LEASE_SECONDS", default=300)
TRAINYARD_INVITATION_TTL_DAYS = env.int("TRAINYARD_INVITATION_TTL_DAYS", default=7)
# Email carries secrets (invitation tokens, password-reset links), so it never goes to a log:
# with DEBUG off and no EMAIL_URL/EMAIL_BACKEND the default writes each message to a file under
# EMAIL_FILE_PATH (var/mail: `make run`, `make demo`); production sets EMAIL_URL
# (smtp+tls://user:password@host:587, django-environ's email URL) or EMAIL_BACKEND. The console
# backend (mail printed to stdout, i.e. to web.log) only with DEBUG on.
EMAIL_FILE_PATH = Path(env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail")))
if env.str("EMAIL_URL", default=""):
    # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER/PASSWORD, EMAIL_USE_TLS/SSL.
    globals().update(
        {k: v for k, v in env.email_url_config(env.str("EMAIL_URL")).items() if v != ""}
    )
else:
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND",
        default="django.core.mail.backends.console.EmailBackend"
        if DEBUG
        else "django.core.mail.backends.filebased.EmailBackend",
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Trainyard <no-reply@trainyard.local>")
# The public base URL of the dashboard and API: every link in an email (invitations, password
# resets) and every URL handed to Stripe is built from it, never from the request's Host header.
TRAINYARD_PUBLIC_URL = env.str("TRAINYARD_PUBLIC_URL", default="http://localhost:8000")

# --- billing -------------------------------------------------------------------------------------
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
TRAINYARD_PAST_DUE_GRACE_DAYS = env.int("TRAINYARD_PAST_DUE_GRACE_DAYS", default=7)
TRAINYARD_ISSUER_NAME = env.str("TRAINYARD_ISSUER_NAME", default="Trainyard")
TRAINYARD_ISSUER_ADDRESS = env.str("TRAINYARD_ISSUER_ADDRESS", default="")
