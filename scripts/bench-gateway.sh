#!/bin/sh
# Reproduces the gateway table of BENCHMARKS.md (## gateway) in one run: the Go demo's
# /counter through nginx → scgi-gateway against the real Quixote 3.8 + session3 /counter
# through nginx → Quixote's SCGI server, session directory on ext4 and on tmpfs, 1 and
# 200 logged-in sessions, wrk -t1 -c16; in the same rounds as the ext4 rows, what
# bounds any Go page behind nginx here (nginx answering alone; nginx → SCGI → a bare
# scgi.Server and → the gateway's GET /; nginx → HTTP/1.1 with upstream keepalive → a
# bare net/http server and → the gateway's -http listener, GET / and /counter), each
# with its ratio to the Python /counter of the same round and its CPU time per request
# split between wrk, nginx and the server; then the gateway's resident memory across
# 10 consecutive runs of the 200-session ext4 load. About 3.5 minutes on a quiet
# machine. Needs nginx, wrk and the Python peers of testdata/py/requirements.txt
# (QXBRIDGE_PYTHON or .venv). Settings of the benchmark pass through the environment;
# see BenchmarkGatewayCounter in gateway/bench_counter_test.go:
#   WRK_DURATION (4s), WRK_ROUNDS (2), WRK_CONNS (16), BENCH_RSS_RUNS (10),
#   BENCH_EXT4_DIR (/var/tmp), BENCH_TMPFS_DIR (/dev/shm), BENCH_NGINX_WORKERS (1),
#   BENCH_ONLY (ext4 or tmpfs), BENCH_CEILING (0: without the ceiling rows),
#   BENCH_GATEWAY_FLAGS (more flags for the gateway process, split on spaces, e.g.
#   BENCH_GATEWAY_FLAGS='-order=false').
set -eu
cd "$(dirname "$0")/.."
echo "uptime: $(uptime)"
go test -v -count=1 -run '^$' -bench '^BenchmarkGatewayCounter$' -benchtime=1x -timeout 30m ./gateway |
	grep -v -e '^        \[' -e '\[notice\]' -e '\[info\]'
echo "uptime: $(uptime)"
