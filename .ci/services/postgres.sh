# shellcheck shell=bash
# A throwaway PostgreSQL server for the tests, on 127.0.0.1 and a free port.
#
# Sourced by .ci/run: starts the server, exports KEYMGMT_TEST_POSTGRES_DSN,
# adds "postgres" to KEYMGMT_CI_EXTRAS and registers its stop command in the
# cleanup_hooks array (so it stops on exit even when tests fail).
#
# Locally: `eval "$(bash .ci/services/postgres.sh)"` starts one and prints the
# export lines plus KEYMGMT_TEST_POSTGRES_STOP, the command that stops it.
#
# initdb refuses to run as root, so as root the server runs as the
# `postgres` OS user in a temporary folder that user owns.

_km_pg_start() {
    local bindir="" candidate
    for candidate in /usr/local/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
            bindir=$candidate
            break
        fi
    done
    if [ -z "$bindir" ]; then
        echo "postgres.sh: installing PostgreSQL (no initdb found)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        for candidate in /usr/lib/postgresql/*/bin; do
            [ -x "$candidate/initdb" ] && bindir=$candidate
        done
    fi
    [ -n "$bindir" ] || { echo "postgres.sh: no PostgreSQL server binaries" >&2; return 1; }

    local as=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        as=(runuser -u postgres --)
    fi
    local dir port
    dir=$(mktemp -d /tmp/keymgmt-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" \
        >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    KM_PG_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
    KM_PG_STOP="${as[*]} $bindir/pg_ctl -D $dir/data -m fast -w stop >/dev/null 2>&1; rm -rf $dir"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    # Run directly: start a server and print what to export.
    set -euo pipefail
    _km_pg_start
    printf 'export KEYMGMT_TEST_POSTGRES_DSN=%q\n' "$KM_PG_DSN"
    printf 'export KEYMGMT_TEST_POSTGRES_STOP=%q\n' "$KM_PG_STOP"
else
    _km_pg_start
    export KEYMGMT_TEST_POSTGRES_DSN=$KM_PG_DSN
    cleanup_hooks+=("$KM_PG_STOP")
    export KEYMGMT_CI_EXTRAS="${KEYMGMT_CI_EXTRAS:+$KEYMGMT_CI_EXTRAS,}postgres"
    echo "== PostgreSQL on $KEYMGMT_TEST_POSTGRES_DSN"
fi
unset -f _km_pg_start
unset KM_PG_DSN KM_PG_STOP
