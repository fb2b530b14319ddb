#!/usr/bin/env bash
# A project-local PostgreSQL cluster for WIMS, from the machine's server binaries.
#   deploy/postgres.sh start|stop|status
# Honours WIMS_RUN_DIR (default ./.run), WIMS_PG_PORT (5433), WIMS_PG_BIN (auto-detected),
# WIMS_PG_FAST=1 (tests: no fsync; data is thrown away anyway).
# PostgreSQL refuses to run as root: when we are root the server runs as user "postgres"
# on a data folder that user owns.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${WIMS_RUN_DIR:-$ROOT/.run}"
PORT="${WIMS_PG_PORT:-5433}"
DATA="$RUN_DIR/pgdata"
LOG="$RUN_DIR/logs/postgres.log"
SOCK="$RUN_DIR/pgsock"

find_bin() {
  if [[ -n "${WIMS_PG_BIN:-}" ]]; then echo "$WIMS_PG_BIN"; return; fi
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v pg_ctl)")"; return; fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$d" ]]; then
    echo "PostgreSQL server binaries not found: install postgresql (e.g. apt-get install postgresql) or set WIMS_PG_BIN" >&2
    exit 1
  fi
  echo "$d"
}
BIN="$(find_bin)"

as_pg() {
  if [[ "$(id -u)" == "0" ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

is_running() { as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  mkdir -p "$RUN_DIR/logs"
  if [[ ! -s "$DATA/PG_VERSION" ]]; then
    echo "postgres: creating cluster in $DATA"
    mkdir -p "$DATA" "$SOCK"
    if [[ "$(id -u)" == "0" ]]; then
      chown postgres:postgres "$DATA" "$SOCK"
      # the postgres user must be able to reach the run folder it writes its log into
      touch "$LOG"; chown postgres:postgres "$LOG"
    fi
    chmod 700 "$DATA"
    # Loopback only, trust auth: this cluster is for development and tests on this machine.
    local initdb_opts=""
    # Tests throw the cluster away: no fsync of the freshly made files either.
    [[ "${WIMS_PG_FAST:-0}" == "1" ]] && initdb_opts="--no-sync"
    as_pg "$BIN/initdb" -D "$DATA" -U wims --auth=trust --encoding=UTF8 --no-instructions $initdb_opts >/dev/null
  fi
  mkdir -p "$SOCK"; [[ "$(id -u)" == "0" ]] && chown postgres:postgres "$SOCK" && touch "$LOG" && chown postgres:postgres "$LOG"
  if is_running; then
    echo "postgres: already running on 127.0.0.1:$PORT"
  else
    local opts="-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c max_connections=200"
    if [[ "${WIMS_PG_FAST:-0}" == "1" ]]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "$opts" -w -t 60 start >/dev/null
    echo "postgres: started on 127.0.0.1:$PORT (log $LOG)"
  fi
  if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U wims -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='wims'" | grep -q 1; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U wims wims
    echo "postgres: database wims created"
  fi
}

stop() {
  if is_running; then
    # WIMS_PG_STOP_MODE=immediate: a test stack about to be deleted need not checkpoint.
    as_pg "$BIN/pg_ctl" -D "$DATA" -m "${WIMS_PG_STOP_MODE:-fast}" -w -t 30 stop >/dev/null
    echo "postgres: stopped"
  else
    echo "postgres: not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo "postgres: running on 127.0.0.1:$PORT"; else echo "postgres: stopped"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
