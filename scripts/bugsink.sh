#!/usr/bin/env bash
# A local Bugsink (a self-hosted Sentry-compatible server) for the forwarding tests.
#
#   scripts/bugsink.sh start DIR PORT [QUOTA]   install if needed, start, print DSN=...
#   scripts/bugsink.sh stop DIR                 stop the server started in DIR
#   scripts/bugsink.sh restart DIR PORT         start it again (after stop)
#   scripts/bugsink.sh requota DIR PORT QUOTA   restart it with another quota (a raised
#                                               quota lifts a block, as the window ending)
#   scripts/bugsink.sh events DIR               every stored event, one JSON object a line
#
# The virtualenv goes under target/bugsink/ on first use and is reused after; so is a
# migrated empty database, copied into DIR at each start. DIR holds one server's state
# (SQLite, settings, pid file, log). QUOTA caps events per 5 minutes and per hour
# (default 100000), to provoke 429. Loopback only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
home="$here/target/bugsink"
venv="$home/venv"
template="$home/template"
version="2.6.2"

# The virtualenv, made once: "installed" is written last, so a half-made one (an
# interrupted first run) is made again.
install() {
    if [ ! -f "$home/installed" ]; then
        if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "bugsink needs Python 3.11 or later; found $(python3 --version 2>&1)" >&2
            return 1
        fi
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "bugsink==$version"
        echo "$version" >"$home/installed"
    fi
}

# Settings for a server with state in $1 on port $2, quota $3.
write_conf() {
    local dir="$1" port="$2" quota="$3"
    mkdir -p "$dir/ingestion" "$dir/wakeup"
    (cd "$dir" && "$venv/bin/bugsink-create-conf" --template=local --host=127.0.0.1 \
        --port="$port" --output-file=bugsink_conf.py >/dev/null)
    cat >>"$dir/bugsink_conf.py" <<PY

DATABASES["default"]["NAME"] = "$dir/db.sqlite3"
DATABASES["snappea"]["NAME"] = "$dir/snappea.sqlite3"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SNAPPEA = {"TASK_ALWAYS_EAGER": True, "WAKEUP_CALLS_DIR": "$dir/wakeup", "NUM_WORKERS": 1}
BUGSINK.update({
    "BASE_URL": "http://127.0.0.1:$port",
    "PHONEHOME": False,
    "INGEST_STORE_BASE_DIR": "$dir/ingestion",
    "MAX_EVENTS_PER_PROJECT_PER_5_MINUTES": $quota,
    "MAX_EVENTS_PER_5_MINUTES": $quota,
    "MAX_EVENTS_PER_PROJECT_PER_HOUR": $quota,
    "MAX_EVENTS_PER_HOUR": $quota,
    "KEEP_ENVELOPES": 0,
})
PY
}

manage() {
    local dir="$1"
    shift
    (cd "$dir" && PYTHONPATH="$dir" DJANGO_SETTINGS_MODULE=bugsink_conf "$venv/bin/bugsink-manage" "$@")
}

# A migrated empty database, made once.
ensure_template() {
    if [ ! -f "$template/db.sqlite3" ] || [ ! -f "$template/snappea.sqlite3" ]; then
        rm -rf "$template"
        write_conf "$template" 8000 1000
        manage "$template" migrate --noinput >/dev/null
        manage "$template" migrate snappea --database=snappea --noinput >/dev/null
    fi
}

start() {
    local dir="$1" port="$2" quota="${3:-100000}"
    # Tests start servers at once: one of them installs, the others wait for it.
    mkdir -p "$home"
    (
        flock 9
        install
        ensure_template
    ) 9>"$home/lock"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    cp "$template/db.sqlite3" "$template/snappea.sqlite3" "$dir/"
    write_conf "$dir" "$port" "$quota"
    local dsn
    dsn="$(manage "$dir" shell -c '
from users.models import User
from teams.models import Team, TeamMembership, TeamRole
from projects.models import Project, ProjectMembership
user = User.objects.create_superuser(username="admin", password="admin-pw-0", email="a@example.com")
team = Team.objects.create(name="team")
TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN, accepted=True)
project = Project.objects.create(team=team, name="app")
ProjectMembership.objects.create(project=project, user=user)
print("DSN=" + project.dsn)
' | grep '^DSN=')"
    serve "$dir" "$port"
    echo "$dsn"
}

serve() {
    local dir="$1" port="$2"
    # Detached, and holding none of the caller's streams: a caller reading this script's
    # output would otherwise wait for the server to end.
    (cd "$dir" && PYTHONPATH="$dir" DJANGO_SETTINGS_MODULE=bugsink_conf exec nohup \
        "$venv/bin/gunicorn" bugsink.wsgi --bind "127.0.0.1:$port" --workers 1 \
        --no-control-socket --pid "$dir/bugsink.pid") </dev/null >"$dir/server.log" 2>&1 &
    for _ in $(seq 1 200); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health/ready', timeout=1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "bugsink did not answer on 127.0.0.1:$port; see $dir/server.log" >&2
    return 1
}

stop() {
    local dir="$1"
    if [ -f "$dir/bugsink.pid" ]; then
        local pid
        pid="$(cat "$dir/bugsink.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        rm -f "$dir/bugsink.pid"
    fi
}

requota() {
    local dir="$1" port="$2" quota="$3"
    stop "$dir"
    sed -i -E "s/(\"MAX_EVENTS_[A-Z_0-9]+\": )[0-9]+/\1$quota/" "$dir/bugsink_conf.py"
    serve "$dir" "$port"
}

events() {
    local dir="$1"
    manage "$dir" shell -c '
import json
from events.models import Event
for e in Event.objects.order_by("digested_at"):
    print(json.dumps({"event_id": str(e.event_id).replace("-", ""), "issue": str(e.issue_id), "data": e.get_parsed_data()}))
'
}

case "${1:-}" in
    start) start "$2" "$3" "${4:-}" ;;
    restart) serve "$2" "$3" ;;
    requota) requota "$2" "$3" "$4" ;;
    stop) stop "$2" ;;
    events) events "$2" ;;
    *) echo "usage: $0 start DIR PORT [QUOTA] | restart DIR PORT | requota DIR PORT QUOTA | stop DIR | events DIR" >&2; exit 2 ;;
esac
