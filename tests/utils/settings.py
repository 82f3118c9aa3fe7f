"""The documented settings, written out so a renamed field fails a test."""

# The configuration table of the README, one environment variable a field of `Settings`.
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
]
