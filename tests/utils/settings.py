"""The documented settings, written out so a renamed field fails a test."""

# The settings table of docs/configuration.md, one environment variable a field of `Settings`.
ALL_VARIABLES = [
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "ASHBY_API_BASE_URL",
    "PUBLIC_BASE_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_FROM",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_SECURITY",
    "TRUFFLE_SECRET_KEYS",
    "RECONCILE_INTERVAL",
    "HELD_UPDATE_RETENTION",
    "SESSION_LIFETIME",
    "SESSION_IDLE_TIMEOUT",
    "RATE_LIMIT_ASSESSMENT_START",
    "RATE_LIMIT_CONNECT",
    "RATE_LIMIT_SIGNIN",
    "ASHBY_RATE_LIMIT_PER_WORKSPACE",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "METRICS_PORT",
    "WORKER_ACTIVITY_THREADS",
    "WORKER_SHUTDOWN_GRACE",
    "CODEC_THREADS",
    "WORKER_STICKY_CACHE_SIZE",
    "REPORT_LINK_LIFETIME",
    "FORWARDED_ALLOW_IPS",
    "TEMPORAL_UI_ORIGINS",
]

# Temporal's own client variables, read by truffle/runtime/temporal_connection.py as the SDKs
# read them (the first two are also fields of `Settings`).
TEMPORAL_CLIENT_VARIABLES = frozenset(
    {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
    }
)
