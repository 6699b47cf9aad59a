#!/usr/bin/env bash
# `bench ingest` on SQLite and PostgreSQL and the Python gateway a vendor might write, one after
# the other in one run on one machine, so the figures compare. Prints the machine and its load
# (other work on the machine shows in `uptime`) and the bench's summary lines; the JSON results
# go to $OUT.
#
# Usage: bench/ingest_side_by_side.sh [records]   (default 100000)
# Environment: BIN (default target/release/kodomo-hub), PG_URL (server, default
# postgres://postgres@127.0.0.1:5432), PG_DB (scratch database, created and dropped; default
# kh_ingest_bench), PY_GATEWAY (default ../shared/bench/python_gateway.py, needs fastjsonschema),
# OUT (default bench-results).
set -euo pipefail
records=${1:-100000}
bin=${BIN:-target/release/kodomo-hub}
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432}
pg_db=${PG_DB:-kh_ingest_bench}
gateway=${PY_GATEWAY:-../shared/bench/python_gateway.py}
out=${OUT:-bench-results}
work=$(mktemp -d)
cleanup() {
    rm -rf "$work"
    dropdb --if-exists --maintenance-db="$pg_url/postgres" "$pg_db" 2>/dev/null || true
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "load before: $(uptime)"

echo "== SQLite: $bin bench ingest --records $records"
"$bin" bench --data-dir "$work/sqlite" --out "$out" ingest --records "$records" 2>&1 |
    grep -E '^(raw|library|http)'

echo "== PostgreSQL ($pg_db): $bin bench ingest --records $records"
dropdb --if-exists --maintenance-db="$pg_url/postgres" "$pg_db"
createdb --maintenance-db="$pg_url/postgres" "$pg_db"
"$bin" bench --data-dir "$work/pg" --database-url "$pg_url/$pg_db" --out "$out" \
    ingest --records "$records" 2>&1 | grep -E '^(raw|library|http)'

echo "== Python gateway: python3 $gateway (100000 records, fixed by the script)"
python3 "$gateway"

echo "load after: $(uptime)"
