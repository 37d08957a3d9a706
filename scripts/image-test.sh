#!/usr/bin/env bash
# Builds the connector image from the real Dockerfile and exercises it in containers: spec,
# check (live and closed port), a full Valmi write, non-root user, entrypoint/env/labels.
#
# No registry is reachable here, so the base images are made locally: the runtime base by
# debootstrap (Debian bookworm, minbase) + docker import, the build base the same plus gcc and
# the machine's own Rust toolchain. Installs docker.io and debootstrap when missing and starts
# dockerd when no engine answers (and stops what it started).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$(date +%s)
say() { printf '[image-test %3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

image=valmi/destination-webhook:test
build_base=destination-webhook-base/rust-build:bookworm
runtime_base=destination-webhook-base/debian:bookworm-minbase
cache=${IMAGE_TEST_CACHE:-/tmp/destination-webhook-image-cache}
work=$(mktemp -d)
started_dockerd=""
receiver_pid=""

cleanup() {
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
  if [ -n "$started_dockerd" ]; then kill "$started_dockerd" 2>/dev/null || true; wait "$started_dockerd" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "image-test FAILED: $*" >&2; exit 1; }
# The machine cannot run containers at all (no package, no engine, no mirror): say so loudly and
# stop without failing, unless IMAGE_TEST_REQUIRED=1. Anything wrong with the image itself fails.
unavailable() {
  echo "image-test SKIPPED: $* (the image was not tested; set IMAGE_TEST_REQUIRED=1 to make this fatal)" >&2
  [ "${IMAGE_TEST_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
}

# 1. Tools and engine.
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing docker.io and debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq docker.io debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq docker.io debootstrap >/dev/null; } \
    || unavailable "could not install docker.io and debootstrap"
fi
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  dockerd >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; unavailable "dockerd did not come up"; }
fi

# 2. Base images, made locally.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-$(awk '/^deb / && /debian/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
rootfs() { # DIR [EXTRA_PACKAGES]
  if [ ! -f "$1/.complete" ]; then
    rm -rf "$1"
    debootstrap --variant=minbase ${2:+--include="$2"} bookworm "$1" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log"; unavailable "debootstrap of $1 failed (no Debian mirror?)"; }
    # The downloaded .debs and package lists are not part of a base image.
    rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*
    touch "$1/.complete"
  fi
}
if ! docker image inspect "$runtime_base" >/dev/null 2>&1; then
  say "making the runtime base by debootstrap ($mirror)"
  rootfs "$cache/runtime"
  tar -C "$cache/runtime" --exclude=./.complete -c . | docker import - "$runtime_base" >/dev/null
fi
if ! docker image inspect "$build_base" >/dev/null 2>&1; then
  say "making the build base: bookworm + gcc + this machine's Rust toolchain"
  rootfs "$cache/build" "gcc,libc6-dev,ca-certificates"
  toolchain=$(dirname "$(dirname "$(rustup which rustc 2>/dev/null || command -v rustc)")")
  rm -rf "$cache/build/usr/local/rust" && mkdir -p "$cache/build/usr/local/rust"
  tar -C "$toolchain" --exclude=./share -c . | tar -C "$cache/build/usr/local/rust" -x
  # The machine reaches crates.io through its own trust roots (an egress proxy may re-sign TLS);
  # the build container gets the same bundle.
  cp /etc/ssl/certs/ca-certificates.crt "$cache/build/etc/ssl/certs/ca-certificates.crt"
  tar -C "$cache/build" --exclude=./.complete -c . \
    | docker import \
      --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt' \
      - "$build_base" >/dev/null
fi

# 3. The image, from the real Dockerfile.
say "docker build"
b0=$(date +%s)
docker build --network host -q -t "$image" \
  --build-arg BUILD_IMAGE="$build_base" --build-arg RUNTIME_IMAGE="$runtime_base" . >/dev/null
build_secs=$(( $(date +%s) - b0 ))
size=$(docker image inspect -f '{{.Size}}' "$image")
say "built $image in ${build_secs}s, $(( size / 1024 / 1024 )) MiB"

# 4. Checks in containers.
run() { docker run --rm --network host "$@"; }
json_equal() { python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.load(open(sys.argv[2])); sys.exit(0 if a==b else 1)' "$1" "$2"; }

say "spec equals spec/spec.json"
spec_line=$(run "$image" spec)
json_equal "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["spec"]))' "$spec_line")" spec/spec.json \
  || fail "spec in the image differs from spec/spec.json"

cargo build --locked --quiet -p webhook-receiver
target/debug/webhook-receiver --port 0 --port-file "$work/port" --log jsonl >"$work/received.jsonl" 2>"$work/receiver.log" &
receiver_pid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
mkdir -p "$work/conf"
printf '{"url": "http://127.0.0.1:%s/hook", "method": "POST", "run_time_args": {"chunk_size": 4, "records_per_metric": 2, "run_id": "image-test"}}' "$port" >"$work/conf/config.json"
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"url": "http://127.0.0.1:%s/hook"}' "$closed" >"$work/conf/closed.json"
cp integration_tests/valmi_source_catalog.json integration_tests/valmi_destination_catalog.json "$work/conf/"
chmod -R a+rX "$work/conf"
mount=(-v "$work/conf:/conf:ro")

say "check against the live receiver and a closed port"
run "${mount[@]}" "$image" check --config /conf/config.json | grep -q '"status":"SUCCEEDED"' || fail "check against the receiver did not succeed"
run "${mount[@]}" "$image" check --config /conf/closed.json | grep -q '"status":"FAILED"' || fail "check against a closed port did not fail"
[ "$(grep -c . "$work/received.jsonl" || true)" = 0 ] || fail "check sent a request"

say "full write of the bundled Valmi sample"
records=$(grep -c '"RECORD"' integration_tests/valmi_messages.jsonl)
run -i "${mount[@]}" "$image" write --config /conf/config.json --catalog /conf/valmi_source_catalog.json \
  --destination_catalog /conf/valmi_destination_catalog.json <integration_tests/valmi_messages.jsonl >"$work/write.out" \
  || fail "write exited non-zero: $(tail -3 "$work/write.out")"
for _ in $(seq 1 20); do [ "$(grep -c . "$work/received.jsonl")" -ge "$records" ] && break; sleep 0.1; done
[ "$(grep -c . "$work/received.jsonl")" = "$records" ] || fail "the receiver got $(grep -c . "$work/received.jsonl") requests, expected $records"
tail -n 5 "$work/write.out" | grep '"STATE"' | tail -1 | grep -q '"finished":true' || fail "no final STATE with finished true"

say "non-root user, entrypoint, env, labels"
uid=$(docker run --rm --entrypoint id "$image" -u)
[ "$uid" != 0 ] || fail "the container runs as root"
entrypoint=$(docker image inspect -f '{{join .Config.Entrypoint " "}}' "$image")
env_entry=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$image" | sed -n 's/^AIRBYTE_ENTRYPOINT=//p')
[ "$entrypoint" = "$env_entry" ] || fail "AIRBYTE_ENTRYPOINT ($env_entry) differs from the entrypoint ($entrypoint)"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ "$(docker image inspect -f '{{index .Config.Labels "io.airbyte.version"}}' "$image")" = "$version" ] || fail "io.airbyte.version is not $version"
name=$(sed -n 's/^connector_image: *\([^:]*\):.*/\1/p' acceptance-test-config.yml)
[ "$(docker image inspect -f '{{index .Config.Labels "io.airbyte.name"}}' "$image")" = "$name" ] || fail "io.airbyte.name is not $name"

say "PASSED: image $image, $(( size / 1024 / 1024 )) MiB, docker build ${build_secs}s, whole test $(( $(date +%s) - t0 ))s"
