# shellcheck shell=bash
# S3 helpers for the end-to-end tests: a moto_server (a local S3) on loopback,
# buckets and objects read through independent clients (the aws CLI and s3cmd),
# and a fault-injecting proxy in front of it (faultproxy.py). Source it after
# lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$ROOT/tests/e2e/moto.sh"      # lib.sh has cd-ed to $T: use $ROOT
#   moto_require s3cmd        # "ok - skipped ... # SKIP" and exit when a tool is missing
#   moto_start [--iam] [--serial]  # MOTO_URL, the AWS_* environment of the aws CLI and slipway
#   moto_bucket site
#
# Servers started here are registered with lib.sh's spawn, so its exit trap kills
# them by PID, pass or fail.
#
# moto checks signatures only in its IAM mode (moto_start --iam): then every request
# after the setup is verified with the key of an IAM user, an independent check of
# what a client signs. That mode refuses any request with a '/' in a query value,
# signed correctly or not, even from the aws CLI: `list-objects-v2 --prefix a/` (sent
# as prefix=a%2F, as SigV4 requires) fails with SignatureDoesNotMatch there, while
# --prefix a passes (moto 5.2: it recomputes the signature over the URL as its web
# framework hands it back, with %2F in the query decoded to '/'). Run listing tests
# against a plain moto, and never leave a '/' unencoded to please it.
#
# moto_server's conditional writes are not atomic: it serves each request on a thread
# of its own and checks If-Match / If-None-Match apart from the write, so two PUTs with
# the same If-Match can both win (see tests/e2e/moto_serial.py). A test that counts
# compare-and-swap winners (tests/e2e/410-store-s3.sh) starts it with --serial: the same
# moto, answering one request at a time, as atomically as S3 does.

# The pyenv shims on PATH cost about half a second of CPU a call: run the real programs
# behind them.
_moto_real() {
    local p
    p=$(command -v "$1") || return 1
    case $p in
    */.pyenv/shims/*) pyenv which "$1" 2>/dev/null || echo "$p" ;;
    *) echo "$p" ;;
    esac
}
MOTO_SERVER_BIN=${MOTO_SERVER_BIN:-$(_moto_real moto_server)}
AWS_BIN=${AWS_BIN:-$(_moto_real aws)}
# The helpers' own Python (faultproxy.py, JSON reading) needs only the standard library:
# Debian's is the fast one. It is the test's python3 too (lib.sh's free_port and json), from a
# directory of the test's own first on PATH, not a shell function, so that `spawn python3
# ...` still gives python's own PID to kill.
if [ -x /usr/bin/python3 ]; then
    MOTO_PY=/usr/bin/python3
    mkdir -p "$T/.bin" && ln -sf /usr/bin/python3 "$T/.bin/python3" && PATH=$T/.bin:$PATH
else
    MOTO_PY=python3
fi
# The first line of a pip-installed script: the interpreter it runs on (with its packages).
_moto_interp() { sed -n '1s/^#! *//p' "$1"; }

# aws ARGS: the aws CLI. Once moto_start has started tests/e2e/awsd.py (AWSD_PORT), each
# call is a child forked from that one loaded CLI, run in this shell's directory with its
# environment (prefix assignments included) and stdin: the same CLI code, without a second
# of Python start-up a call. Its stdout and stderr come out once it has ended. Without
# awsd, or with AWSD=0, the aws program itself.
aws() {
    local fd rc f=$T/.awsd.$BASHPID
    if [ -z "${AWSD_PORT:-}" ] || ! { exec {fd}<>"/dev/tcp/127.0.0.1/$AWSD_PORT"; } 2>/dev/null; then
        "$AWS_BIN" "$@"
        return
    fi
    : >"$f.out"
    : >"$f.err"
    {
        printf '%s\0' "$AWSD_TOKEN" $# "$PWD" "/proc/$BASHPID/fd/0" "$f.out" "$f.err"
        env -0
        printf '\0'
        [ $# = 0 ] || printf '%s\0' "$@"
    } >&"$fd"
    read -r -u "$fd" rc # (not <&fd: that would make fd 0 the socket meanwhile)
    exec {fd}>&-
    cat "$f.out"
    cat "$f.err" >&2
    rm -f "$f.out" "$f.err"
    [ -n "$rc" ] || echo "aws: awsd (pid $AWSD_PID) did not answer" >&2
    return "${rc:-255}"
}

# awsd_start / awsd_wait: starts awsd (once per test, with the aws CLI's interpreter; does
# nothing when it runs) and waits (at most 30 s) until it listens. moto_start does both; a
# test that starts its moto itself calls them. Loading the CLI costs about what one aws
# process does: a test that makes no aws call sets AWSD=0.
awsd_start() {
    [ "${AWSD:-1}" != 0 ] && [ -z "${AWSD_PID:-}" ] || return 0
    local interp
    interp=$(_moto_interp "$AWS_BIN")
    [ -x "${interp%% *}" ] || return 0 # not a Python script: call the program
    # It reads no configuration of this machine's (each call reads the caller's).
    spawn env -u AWS_PROFILE AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        $interp "$ROOT/tests/e2e/awsd.py" "$T/awsd.port" >"$T/awsd.log" 2>&1
    AWSD_PID=$!
}
awsd_wait() {
    [ -n "${AWSD_PID:-}" ] && [ -z "${AWSD_PORT:-}" ] || return 0
    local end=$(($(date +%s) + 30))
    until [ -s "$T/awsd.port" ]; do
        if ! kill -0 "$AWSD_PID" 2>/dev/null || [ "$(date +%s)" -ge $end ]; then
            fail "awsd did not start: $(tail -3 "$T/awsd.log")"
            return 1
        fi
        sleep 0.05
    done
    read -r AWSD_PORT AWSD_TOKEN <"$T/awsd.port"
}

# moto_require [s3cmd]: skips the whole test (one "# SKIP" line, exit 0) unless
# moto_server, the aws CLI and curl exist, and s3cmd when named.
moto_require() {
    local t
    for t in "$MOTO_SERVER_BIN:moto_server (pip install 'moto[server]')" \
        "$AWS_BIN:aws (pip install awscli)" "$(command -v curl):curl" \
        ${1:+"$(command -v s3cmd):s3cmd (scripts/install-deps)"}; do
        if [ ! -x "${t%%:*}" ]; then
            echo "ok - skipped: needs ${t#*:} # SKIP"
            done_testing
        fi
    done
}

# moto_start [--iam] [--serial]: starts moto_server on a free loopback port and waits
# (at most 30 s) until it answers: tests/e2e/moto_serial.py, with moto's own interpreter
# (moto_server's application, three times as fast), threaded as moto_server is or, with
# --serial, one request at a time. Exports MOTO_PORT, MOTO_URL, MOTO_PID, MOTO_IAM (0 or 1) and
# the environment every AWS client reads: test credentials, region us-east-1,
# AWS_ENDPOINT_URL=$MOTO_URL, and empty config and credentials files in $T, so the
# developer's ~/.aws and AWS_PROFILE never leak in. With --iam, moto verifies every
# request after its first four, which create an IAM user, its access key, an allow-all
# policy and the attachment; AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are that key.
# Calling it again starts another server and points the environment at it.
# Returns non-zero (after a "not ok" line) when moto does not come up.
MOTO_IAM_SETUP_REQUESTS=4
moto_start() {
    local iam=0 threaded=--threaded port end a
    for a in "$@"; do
        case $a in
        --iam) iam=1 ;;
        --serial) threaded= ;;
        esac
    done
    local server=($(_moto_interp "$MOTO_SERVER_BIN") "$ROOT/tests/e2e/moto_serial.py" $threaded)
    awsd_start
    port=$(free_port)
    if [ $iam = 1 ]; then
        spawn env INITIAL_NO_AUTH_ACTION_COUNT=$MOTO_IAM_SETUP_REQUESTS \
            "${server[@]}" -H 127.0.0.1 -p "$port" >"$T/moto-$port.log" 2>&1
    else
        # A count inherited from the caller would turn verification on after it.
        spawn env -u INITIAL_NO_AUTH_ACTION_COUNT \
            "${server[@]}" -H 127.0.0.1 -p "$port" >"$T/moto-$port.log" 2>&1
    fi
    export MOTO_PID=$! MOTO_PORT=$port MOTO_URL=http://127.0.0.1:$port MOTO_IAM=$iam
    # /moto-api/ is moto's own dashboard: it counts as none of the unauthenticated requests.
    end=$(($(date +%s) + 30))
    until curl -sf -o /dev/null --max-time 2 "$MOTO_URL/moto-api/"; do
        if ! kill -0 "$MOTO_PID" 2>/dev/null || [ "$(date +%s)" -ge $end ]; then
            fail "moto_server on port $port did not come up: $(tail -3 "$T/moto-$port.log")"
            return 1
        fi
        sleep 0.1
    done
    unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
        AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_IAM AWS_CA_BUNDLE
    : >"$T/aws-$port.config"
    : >"$T/aws-$port.credentials"
    export AWS_CONFIG_FILE=$T/aws-$port.config AWS_SHARED_CREDENTIALS_FILE=$T/aws-$port.credentials
    export AWS_ACCESS_KEY_ID=slipway-test-key AWS_SECRET_ACCESS_KEY=slipway-test-secret
    export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$MOTO_URL
    export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
    awsd_wait || return 1
    [ $iam = 1 ] || return 0
    _moto_iam_setup
}

# _moto_iam: one IAM query-API call among the first MOTO_IAM_SETUP_REQUESTS, which moto
# does not authenticate: curl is enough (the aws CLI would cost a second a call). The
# Authorization header only tells moto which service the request is for.
_moto_iam() {
    curl -sS --max-time 10 \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=setup/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0' \
        --data "$1&Version=2010-05-08" "$MOTO_URL/"
}
_moto_iam_setup() {
    local r arn id secret
    # {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}
    local policy='%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D'
    r=$(_moto_iam "Action=CreateUser&UserName=slipway") &&
        r=$(_moto_iam "Action=CreateAccessKey&UserName=slipway") &&
        id=$(printf '%s' "$r" | sed -n 's:.*<AccessKeyId>\([^<]*\)</AccessKeyId>.*:\1:p') &&
        secret=$(printf '%s' "$r" | sed -n 's:.*<SecretAccessKey>\([^<]*\)</SecretAccessKey>.*:\1:p') &&
        r=$(_moto_iam "Action=CreatePolicy&PolicyName=allow-all&PolicyDocument=$policy") &&
        arn=$(printf '%s' "$r" | sed -n 's:.*<Arn>\([^<]*\)</Arn>.*:\1:p') &&
        r=$(_moto_iam "Action=AttachUserPolicy&UserName=slipway&PolicyArn=$(printf '%s' "$arn" | sed 's/:/%3A/g; s:/:%2F:g')")
    if [ -z "$id" ] || [ -z "$secret" ] || [ -z "$arn" ] || ! printf '%s' "$r" | grep -q AttachUserPolicyResponse; then
        fail "moto --iam: the IAM user, key and policy were not created: $r"
        return 1
    fi
    # The setup used up the unauthenticated requests: from now on an unsigned one is refused.
    r=$(_moto_iam "Action=ListUsers")
    if ! printf '%s' "$r" | grep -q InvalidClientTokenId; then
        fail "moto --iam: requests are still not authenticated after the setup: $r"
        return 1
    fi
    export AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$secret
}

# moto_stop: stops the current moto_server (by PID), e.g. to take the store away.
moto_stop() {
    kill "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
    return 0
}

# moto_bucket NAME: creates bucket NAME (and makes it MOTO_BUCKET, the one the
# helpers below use). A plain moto checks no signature: one PUT with curl, which takes no
# aws CLI (a test that reads nothing back with it then needs no awsd: AWSD=0); on moto
# --iam, create-bucket signed by the aws CLI.
moto_bucket() {
    if [ "${MOTO_IAM:-0}" = 1 ]; then
        aws s3api create-bucket --bucket "$1" >/dev/null
    else
        curl -sf -o /dev/null --max-time 10 -X PUT "$MOTO_URL/$1" -H \
            "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
    fi || {
        fail "create-bucket $1"
        return 1
    }
    export MOTO_BUCKET=$1
}

# moto_store_url [PATH] [ENDPOINT]: the slipway store URL of s3://$MOTO_BUCKET[/PATH]
# on the current moto (or on ENDPOINT, e.g. $PROXY_URL).
moto_store_url() {
    echo "s3://$MOTO_BUCKET${1:+/$1}?endpoint=${2:-$MOTO_URL}&region=us-east-1&path_style=true"
}

# moto_head KEY [FIELD]: prints FIELD (a head-object --query, default
# ServerSideEncryption: "AES256", or "None" when the object has none) of
# s3://$MOTO_BUCKET/KEY; fails when the object does not exist.
moto_head() {
    aws s3api head-object --bucket "$MOTO_BUCKET" --key "$1" --query "${2:-ServerSideEncryption}" --output text
}

# moto_put KEY FILE / moto_get KEY FILE: one object, through the aws CLI.
moto_put() { aws s3api put-object --bucket "$MOTO_BUCKET" --key "$1" --body "$2" >/dev/null; }
moto_get() { aws s3api get-object --bucket "$MOTO_BUCKET" --key "$1" "$2" >/dev/null; }

# moto_keys [PREFIX]: every key of $MOTO_BUCKET (under PREFIX), one a line, sorted.
# A PREFIX with '/' fails on moto --iam (see the top of this file).
moto_keys() {
    aws s3api list-objects-v2 --bucket "$MOTO_BUCKET" ${1:+--prefix "$1"} \
        --query 'Contents[].Key' --output json | "$MOTO_PY" -c '
import json, sys
for k in sorted(json.load(sys.stdin) or []):
    print(k)'
}

# s3cmd_cfg [HOST:PORT]: writes an s3cmd configuration for the current moto (or
# HOST:PORT: a proxy) with the current keys, path style, plain HTTP, and exports
# S3CMD_CFG: run `s3cmd -c "$S3CMD_CFG" ...`.
s3cmd_cfg() {
    local hp=${1:-127.0.0.1:$MOTO_PORT}
    export S3CMD_CFG=$T/s3cmd-${hp##*:}.cfg
    # host_bucket without %(bucket)s: path-style requests. The file holds the secret:
    # only its owner may read it.
    (
        umask 077
        cat >"$S3CMD_CFG" <<EOF
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hp
host_bucket = $hp
bucket_location = us-east-1
use_https = False
check_ssl_certificate = False
signature_v2 = False
progress_meter = False
socket_timeout = 20
EOF
    )
}

# faultproxy_start [ARGS...]: starts tests/e2e/faultproxy.py in front of the current
# moto on a free port (ARGS: --rate, --seed, --kinds, --stall, --trickle, --cut, --once,
# --only, --strip-header, --keep-alive, --verbose) and waits until it listens. Exports
# PROXY_PID, PROXY_PORT, PROXY_URL and PROXY_STATS (its counts, as JSON; see
# faultproxy_stat).
faultproxy_start() {
    local port end
    port=$(free_port)
    export PROXY_PORT=$port PROXY_URL=http://127.0.0.1:$port PROXY_STATS=$T/faultproxy-$port.json
    spawn "$MOTO_PY" "$ROOT/tests/e2e/faultproxy.py" --target "127.0.0.1:$MOTO_PORT" \
        --port "$port" --stats "$PROXY_STATS" "$@" >"$T/faultproxy-$port.out" 2>"$T/faultproxy-$port.log"
    export PROXY_PID=$!
    end=$(($(date +%s) + 20))
    # It prints its port once it accepts connections.
    until [ -s "$T/faultproxy-$port.out" ]; do
        if ! kill -0 "$PROXY_PID" 2>/dev/null || [ "$(date +%s)" -ge $end ]; then
            fail "faultproxy on port $port did not start: $(tail -3 "$T/faultproxy-$port.log")"
            return 1
        fi
        sleep 0.05
    done
}

# faultproxy_stop: SIGTERM by PID and wait, so $PROXY_STATS holds the final counts.
faultproxy_stop() {
    kill "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    return 0
}

# faultproxy_down / faultproxy_up: the store behind the proxy goes away (the proxy stops
# listening: connections are refused; open ones end) and comes back on the same port with
# its data (moto_stop would lose it all). Each returns once the proxy has done it.
faultproxy_down() { _faultproxy_switch USR1 False; }
faultproxy_up() { _faultproxy_switch USR2 True; }
_faultproxy_switch() {
    local end=$(($(date +%s) + 10))
    kill -"$1" "$PROXY_PID" || return 1
    until [ "$(faultproxy_stat up 2>/dev/null)" = "$2" ]; do
        if [ "$(date +%s)" -ge $end ]; then
            fail "faultproxy did not switch (SIG$1)"
            return 1
        fi
        sleep 0.05
    done
}

# faultproxy_stat NAME: one count from $PROXY_STATS: requests, forwarded,
# connections, outages, stripped, faults (all kinds together) or a fault kind (503,
# slowdown, reset, stall, trickle); "up" is True or False.
faultproxy_stat() {
    "$MOTO_PY" - "$PROXY_STATS" "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
n = sys.argv[2]
print(sum(s["faults"].values()) if n == "faults" else s[n] if n in s else s["faults"][n])
EOF
}
