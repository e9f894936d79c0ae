#!/usr/bin/env bash
# Distributed tuning proof: a throwaway PostgreSQL server on a loopback port, two `kit tune` workers on one
# study (as two machines would run them), then a check that every trial landed exactly once.
# Installs PostgreSQL from Debian's packages when missing (needs root or sudo), and psycopg2 into the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PY:-$REPO/.venv/bin/python}
TRIALS_PER_WORKER=${TRIALS_PER_WORKER:-3}

# the server binaries (initdb, pg_ctl), not just a client: a machine may have psql alone
pg_bin() { ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname; }
if [[ -z "$(pg_bin)" ]]; then
    echo "installing PostgreSQL from Debian's packages ..."
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG=$(pg_bin)
if ! "$PY" -c "import psycopg2" 2>/dev/null && ! "$PY" -c "import psycopg" 2>/dev/null; then
    echo "installing psycopg2-binary into the venv ..."
    "$PY" -m pip install --disable-pip-version-check -q "psycopg2-binary>=2.9" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi

TMP=$(mktemp -d -t kit-pg.XXXXXX)
PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
# initdb refuses to run as root: the server runs as the postgres user (created by the package) when we are root
AS=()
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$TMP"
    AS=(runuser -u postgres --)
fi
stop() {
    "${AS[@]}" "$PG/pg_ctl" -D "$TMP/pgdata" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap stop EXIT

"${AS[@]}" "$PG/initdb" -D "$TMP/pgdata" -U kit --auth=trust -E UTF8 >/dev/null
"${AS[@]}" "$PG/pg_ctl" -D "$TMP/pgdata" -l "$TMP/pgdata/server.log" -w \
    -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"$PG/createdb" -h 127.0.0.1 -p "$PORT" -U kit optuna
URL="postgresql://kit@127.0.0.1:$PORT/optuna"
echo "PostgreSQL $("$PG/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"

mkdir -p "$TMP/work"
"$PY" -m competitions.titanic.synthetic "$TMP/work/data" --n 150 --n-test 40 >/dev/null
# create the tables and the study once, as the first `kit tune` on a fresh database would (two processes
# creating tables at the same instant can collide), then start two independent workers at the same time
"$PY" -c "import optuna, sys; from kit.tune.storage import open_storage
optuna.create_study(storage=open_storage(sys.argv[1]), study_name='distributed', direction='maximize')" "$URL"
ARGS=(--comp titanic --data-dir "$TMP/work/data" --storage "$URL" --study distributed --folds 2 --set epochs=3 --threads 1
      --runs "$TMP/work/runs" --out "$TMP/work/subs" --no-refit)
pids=()
for w in 1 2; do
    (cd "$TMP/work" && PYTHONPATH="$REPO" "$PY" -m kit tune "${ARGS[@]}" --worker "$w" \
        --n-trials "$TRIALS_PER_WORKER" >"$TMP/worker$w.log" 2>&1) &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [[ $status -ne 0 ]]; then
    tail -n 20 "$TMP"/worker*.log
    echo "FAIL: a worker failed"; exit 1
fi

"$PY" - "$URL" "$TRIALS_PER_WORKER" <<'EOF'
import collections
import sys

import optuna
from optuna.trial import TrialState

from kit.tune.storage import open_storage

url, per_worker = sys.argv[1], int(sys.argv[2])
study = optuna.load_study(study_name="distributed", storage=open_storage(url))
trials = study.get_trials()
numbers = [t.number for t in trials]
workers = collections.Counter(t.user_attrs.get("worker") for t in trials)
states = collections.Counter(t.state.name for t in trials)
print(f"{len(trials)} trials, states {dict(states)}, per worker {dict(workers)}")
assert sorted(numbers) == list(range(2 * per_worker)), f"trial numbers {numbers}"
assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), states
assert len(workers) == 2 and set(workers.values()) == {per_worker}, workers
assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials), "a configuration ran twice"
print(f"OK: {len(trials)} trials from 2 workers, each exactly once, best {study.best_value:.4f}")
EOF
