#!/bin/sh
# What a consistent-hash ring costs the event loop: a full build, and one server's runtime
# weight change, for 5 x weight 100, 20 x weight 256 and 10,000 x weight 1.
# Compiled with the release build's optimization (-O, whole module, no exclusivity checks)
# from the Balancing/ files the ring needs, so it does not wait for a release build of ferry.
# Usage: bench/chash-rebuild.sh [BUILDS] [CHANGES]     The binary goes to bench/out/.
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
b=Sources/FerryCore/Balancing
swiftc -O -wmo -enforce-exclusivity=unchecked -parse-as-library \
    $b/Balancer.swift $b/HashMix.swift $b/Rendezvous.swift $b/KetamaRing.swift $b/ConsistentHash.swift \
    bench/ConsistentHashBench.swift -o bench/out/chash-rebuild-bench
bench/out/chash-rebuild-bench "${1:-7}" "${2:-31}"
