#!/usr/bin/env bash
# tests/e2e/060-concurrency.sh on an s3 store: concurrent changes to one environment (one
# wins, the other is refused with one 'locked' line and changes nothing), and rounds of 8
# parallel deploys that leave a generation equal to the number that succeeded and an audit
# log that matches, with the locks, the state's compare-and-swap and the audit head all
# contended in a bucket of a moto_server (see the top of 060 for how it reads the bucket).
SLIPWAY_E2E_S3=1 exec bash "$(dirname "$0")/060-concurrency.sh"
