#!/bin/sh
# Temporal's one-shot setup for docker-compose.yml, run inside the temporalio/admin-tools image.
#
#   temporal-setup.sh schema      create or upgrade Temporal's two PostgreSQL databases
#                                 (persistence and visibility); runs before the server starts
#   temporal-setup.sh namespace   create the namespace and register our search attributes;
#                                 runs once the server answers
#
# Every step is idempotent, so `docker compose up` runs both on every start: an existing
# database is kept, `update-schema` applies only the versions it has not applied yet, an
# existing namespace is left alone and registering an attribute that exists changes nothing.
set -eu

: "${POSTGRES_SEEDS:=postgresql}"
: "${DB_PORT:=5432}"
: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_NAMESPACE_RETENTION:=30d}"
: "${SETUP_ATTEMPTS:=60}"
: "${SETUP_SLEEP_SECONDS:=2}"

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

# Run "$@" until it succeeds, at most SETUP_ATTEMPTS times.
retry() {
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$SETUP_ATTEMPTS" ]; then
            echo "temporal-setup: gave up after $attempt attempts: $*" >&2
            return 1
        fi
        attempt=$((attempt + 1))
        sleep "$SETUP_SLEEP_SECONDS"
    done
}

sql_tool() {
    # The password comes from SQL_PASSWORD in the environment, never from the command line.
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" "$@"
}

# $1: database name, $2: its schema folder under $SCHEMA_ROOT
setup_database() {
    retry sql_tool --db "$1" create # a database that already exists is not an error
    sql_tool --db "$1" setup-schema -v 0.0 # only records version 0.0 on a new database
    sql_tool --db "$1" update-schema -d "$SCHEMA_ROOT/$2/versioned"
}

schema() {
    : "${POSTGRES_USER:?POSTGRES_USER is required}"
    : "${SQL_PASSWORD:?SQL_PASSWORD is required}"
    retry nc -z "$POSTGRES_SEEDS" "$DB_PORT"
    setup_database temporal temporal
    setup_database temporal_visibility visibility
    echo "temporal-setup: schemas of temporal and temporal_visibility are up to date"
}

# With mTLS (TEMPORAL_TLS_CLIENT_CERT_PATH set, as docker-compose.yml does), the client
# certificate of temporal-certs, named as flags: every release of the CLI knows these.
temporal_cli() {
    if [ -n "${TEMPORAL_TLS_CLIENT_CERT_PATH:-}" ]; then
        temporal --address "$TEMPORAL_ADDRESS" \
            --tls-cert-path "$TEMPORAL_TLS_CLIENT_CERT_PATH" \
            --tls-key-path "${TEMPORAL_TLS_CLIENT_KEY_PATH:?TEMPORAL_TLS_CLIENT_KEY_PATH is required with a client certificate}" \
            --tls-ca-path "${TEMPORAL_TLS_SERVER_CA_CERT_PATH:?TEMPORAL_TLS_SERVER_CA_CERT_PATH is required with a client certificate}" \
            --tls-server-name "${TEMPORAL_TLS_SERVER_NAME:-temporal}" \
            "$@"
    else
        temporal --address "$TEMPORAL_ADDRESS" "$@"
    fi
}

namespace_ready() {
    temporal_cli operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 ||
        temporal_cli operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
            --retention "$TEMPORAL_NAMESPACE_RETENTION"
}

# Our custom search attributes: exactly ALL_SEARCH_ATTRIBUTES of workflows/search_attributes.py
# (tests/deploy/test_compose.py compares the two). Engineers filter screenings by them in the UI.
register_search_attributes() {
    temporal_cli operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
        --name TruffleWorkspaceId --type Keyword \
        --name TrufflePositionId --type Keyword \
        --name AshbyApplicationId --type Keyword \
        --name ScreeningStatus --type Keyword
}

# A workflow started with an attribute the server does not know yet is refused, and the server
# learns new ones from a cache: wait until a query on all four is accepted.
search_attributes_usable() {
    temporal_cli workflow list --namespace "$TEMPORAL_NAMESPACE" --limit 1 --query \
        "TruffleWorkspaceId = 'setup' AND TrufflePositionId = 'setup' AND AshbyApplicationId = 'setup' AND ScreeningStatus = 'setup'" \
        >/dev/null
}

namespace() {
    retry temporal_cli operator cluster health
    retry namespace_ready
    retry register_search_attributes
    retry search_attributes_usable
    echo "temporal-setup: namespace $TEMPORAL_NAMESPACE is ready with its search attributes"
}

case "${1:-}" in
schema) schema ;;
namespace) namespace ;;
*)
    echo "usage: $0 schema|namespace" >&2
    exit 2
    ;;
esac
