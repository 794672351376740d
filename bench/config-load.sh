#!/bin/sh
# How long does loading a big configuration take? Generates 10,000 upstream `server` lines
# (and 1,000 listeners) and times ConfigLoader.load with an optimized build of Config/.
# Usage: bench/config-load.sh [RUNS]     Output goes to bench/out/.
set -eu
runs="${1:-10}"
cd "$(dirname "$0")/.."
mkdir -p bench/out
conf=bench/out/config-10k.conf
{
    echo "stream {"
    echo "    upstream big {"
    echo "        least_conn;"
    i=0
    while [ $i -lt 10000 ]; do
        echo "        server 10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256)):$((1024 + i % 60000)) weight=$((1 + i % 5)) max_fails=2 fail_timeout=30s name=s$i;"
        i=$((i + 1))
    done
    echo "    }"
    i=0
    while [ $i -lt 1000 ]; do
        echo "    server { listen 127.0.0.1:$((20000 + i)); proxy_pass big; proxy_timeout 1h; }"
        i=$((i + 1))
    done
    echo "}"
} > "$conf"
swiftc -O -parse-as-library Sources/FerryCore/Config/*.swift bench/ConfigLoadBench.swift -o bench/out/config-load-bench
bench/out/config-load-bench "$conf" "$runs"
