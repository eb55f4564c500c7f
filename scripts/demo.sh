#!/usr/bin/env bash
# make demo: slipway's main job on the embedded store, start to finish, in a
# fresh ./demo directory: scaffold a project, build a sample site, release it,
# deploy it to dev (direct) and staging (blue-green), switch, roll back, serve
# it over HTTP and print the status and history.
set -euo pipefail
cd "$(dirname "$0")/.."
SW=$PWD/slipway
DEMO=$PWD/demo
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Polls the live listener until it serves the wanted text (at most 2 s).
live_is() {
    for _ in $(seq 1 40); do
        curl -s "http://127.0.0.1:$STG/" | grep -q "$1" && break
        sleep 0.05
    done
    echo "live:    $(curl -s "http://127.0.0.1:$STG/" | grep -o 'release [a-z]*')"
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "slipway init: scaffold .slipway/ with dev (direct) and staging (blue-green)"
git init -q -b main .
"$SW" init .
# Free ports, so the demo never collides with anything already running.
DEV=$(port) STG=$(port) PRV=$(port) ADM=$(port)
sed -i "s/127.0.0.1:8081/127.0.0.1:$DEV/" .slipway/environments/dev.yml
sed -i "s/127.0.0.1:8082/127.0.0.1:$STG/; s/127.0.0.1:9082/127.0.0.1:$PRV/" \
    .slipway/environments/staging.yml
cat .slipway/environments/staging.yml

step "a sample site, committed to git"
mkdir -p site/assets
cat > site/index.html <<'HTML'
<!doctype html><title>slipway demo</title><link rel="stylesheet" href="assets/app.3f9a2c1d.css">
<h1>Hello from release one</h1>
HTML
echo 'h1 { color: teal }' > site/assets/app.3f9a2c1d.css
echo '<!doctype html><h1>Not here</h1>' > site/404.html
git add -A && git -c user.name=demo -c user.email=demo@example.com commit -qm "site v1"
git tag v1.0.0

step "slipway release create site: hash, store each body once, write the manifest"
R1=$("$SW" release create site --message "first release")
echo "created $R1"

step "deploy to dev (direct: live at once) and staging (first deploy goes live)"
"$SW" deploy "$R1" --env dev --message "first dev deploy"
"$SW" deploy "$R1" --env staging

step "change the site; deploy to staging goes to the idle slot only"
sed -i 's/release one/release two/' site/index.html
git commit -qam "site v2"
R2=$("$SW" release create site --message "second release")
"$SW" diff "$R1" "$R2"
"$SW" deploy "$R2" --env staging --message "candidate"

step "slipway serve: live on :$STG, the idle slot on preview :$PRV"
"$SW" serve --admin "127.0.0.1:$ADM" 2>serve.log &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ADM/_slipway/ready" >/dev/null && break; sleep 0.05; done
echo "live:    $(curl -s "http://127.0.0.1:$STG/" | grep -o 'release [a-z]*')"
echo "preview: $(curl -s "http://127.0.0.1:$PRV/" | grep -o 'release [a-z]*')"

step "slipway switch staging: the idle slot goes live"
"$SW" switch staging
live_is "release two"

step "slipway rollback staging: instant flip back to the kept slot"
"$SW" rollback staging --message "demo rollback"
live_is "release one"

step "slipway status"
"$SW" status

step "slipway history staging (hash-chained audit log, verified)"
"$SW" history staging --verify

step "metrics (Prometheus text format), first lines"
curl -s "http://127.0.0.1:$ADM/_slipway/metrics" | grep '^slipway_requests_total' | head -5

kill -TERM $SERVE && wait $SERVE || true
trap - EXIT
step "done: the project is in $DEMO (store in $DEMO/.slipway/data)"
