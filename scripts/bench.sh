#!/usr/bin/env bash
# Throughput benchmark of `destination-webhook write` (Valmi dialect) against the project's fast
# loopback receiver, with two yardsticks measured in the same run, on the same receiver, with the
# same request bodies and concurrency:
#   - wrk (an independent C load generator): the ceiling of this receiver on this machine;
#   - examples/bare_reqwest.rs: a bare reqwest loop on a current-thread runtime, i.e. the cost
#     of the HTTP client alone, with nothing of the connector around it; and the same loop with
#     mimalloc as its allocator, as the connector has (examples/bare_reqwest_mimalloc.rs).
#
# usage: scripts/bench.sh [--records N] [--repeat K] [--wrk-seconds S] [--memory | --callgrind | --remote [--svg DIR] | --templates]
#   N (default 100000, or the N environment variable): records per row (the 10 KB rows use N/10).
#   K (default 1): run every measurement K times and report the median of each figure.
#   S (default 5): duration of each wrk run.
#   --memory: only the memory check: 100k and 1M records at concurrency 16, peak RSS of each.
#   --callgrind: instructions per record of the connector (per thread) and of the bare loop at
#     concurrency 16, counted by valgrind: the same for the same code whatever else the machine
#     does, unlike every timing here. N defaults to 20000 for this mode. Needs valgrind.
#   --remote: only the remote-like endpoint rows (adaptive concurrency, issue #17): the receiver
#     answers after a latency and serves K requests at once, refusing (429 + Retry-After: 1) or
#     queueing beyond; each row prints records/s, its ratio to the ideal K / latency, the share
#     of requests answered 429, the endpoint's p50 latency and the connections the connector
#     opened; the first two rows are the bound: a bare reqwest loop told K (a fixed concurrency
#     of K, no adaptation); the last four rows are over TLS, HTTP/1.1 and HTTP/2 (ALPN) side by side, against
#     a receiver that offers h2 or not. N defaults to 10000 here. With
#     --svg DIR, also one SVG per row in DIR: the limit, requests in flight and records/s over
#     the run (from the connector's DESTINATION_WEBHOOK_LIMIT_TRACE), of the last repeat.
#   --templates: only the request-template rows (issue #16), against the fast receiver: the
#     envelope and a typical body template (6 fields, one filter) at concurrency 16 batch 1,
#     and at batch 100 the envelope array, a batch template ({"events": [...]}) over the
#     envelopes, and the same batch template over the body template's bodies; each template
#     row as a ratio of the envelope's records/s in the same repeat.
#
# Prints one table, a table of the yardsticks, then PASS/FAIL per target. Exits 0 even when a
# target fails (exits non-zero only when a run itself fails), so it can be used to collect
# figures on any machine. Needs python3, /usr/bin/time (Debian: `time`) and wrk (Debian: `wrk`;
# without it the ceiling columns read n/a).
set -euo pipefail
cd "$(dirname "$0")/.."

records=${N:-}
repeat=1
wrk_seconds=5
memory=0
callgrind=0
remote=0
templates=0
svg_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --records=*) records=${1#*=}; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    --repeat=*) repeat=${1#*=}; shift ;;
    --wrk-seconds) wrk_seconds=$2; shift 2 ;;
    --wrk-seconds=*) wrk_seconds=${1#*=}; shift ;;
    --memory) memory=1; shift ;;
    --callgrind) callgrind=1; shift ;;
    --remote) remote=1; shift ;;
    --templates) templates=1; shift ;;
    --svg) svg_dir=$2; shift 2 ;;
    --svg=*) svg_dir=${1#*=}; shift ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$records" ]; then
  records=100000
  [ "$callgrind" = 0 ] || records=20000
  [ "$remote" = 0 ] || records=10000
fi
case "$records$repeat$wrk_seconds" in
  *[!0-9]*) echo "bench.sh: --records, --repeat and --wrk-seconds take whole numbers" >&2; exit 2 ;;
esac
[ "$records" -ge 100 ] && [ "$repeat" -ge 1 ] && [ "$wrk_seconds" -ge 1 ] || {
  echo "bench.sh: need --records >= 100, --repeat >= 1, --wrk-seconds >= 1" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools -------------------------------------------------------------------------------
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing $1 with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1"; } >/dev/null 2>&1 || true
  fi
}
command -v python3 >/dev/null || { echo "bench.sh: needs python3" >&2; exit 1; }
[ -x /usr/bin/time ] || apt_install time
[ -x /usr/bin/time ] || { echo "bench.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
wrk_bin=$(command -v wrk || true)
if [ -z "$wrk_bin" ] && [ "$memory" = 0 ] && [ "$remote" = 0 ] && [ "$templates" = 0 ]; then apt_install wrk; wrk_bin=$(command -v wrk || true); fi
[ -n "$wrk_bin" ] || [ "$memory" = 1 ] || log "wrk not found: the 'vs wrk' column will read n/a"

# How busy the machine is before we start (other processes skew every figure): CPU busy %
# over one second, from /proc/stat.
cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6; exit }' /proc/stat; }
busy_pct() {
  local a b
  a=$(cpu_sample); sleep 1; b=$(cpu_sample)
  echo "$a $b" | awk '{ busy = $3 - $1; idle = $4 - $2; printf "%.0f", ((busy + idle) > 0 ? 100 * busy / (busy + idle) : 0) }'
}
log "building (release)"
cargo build --release --locked --quiet --workspace --bins --examples
busy_before=$(busy_pct)
# CPU ticks used by the whole machine, and by this script with everything it started and waited
# for (cutime + cstime of this shell): the difference over the runs is what other processes took.
# (user + nice + system only: interrupt time, loopback networking included, is charged to no one.)
ticks_all() { awk '/^cpu / { print $2 + $3 + $4; exit }' /proc/stat; }
ticks_ours() { awk '{ print $16 + $17 + $14 + $15 }' "/proc/$$/stat"; }
target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/destination-webhook
receiver_bin=$target_dir/release/webhook-receiver
bare_bin=$target_dir/release/examples/bare_reqwest
bare_mi_bin=$target_dir/release/examples/bare_reqwest_mimalloc

# --- scratch dir, receivers ----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
receiver_pid=""
probe_pid=""
cleanup() {
  for pid in $receiver_pid $probe_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a receiver; sets $started_pid and $started_url.
start_receiver() { # name, extra args...
  local name=$1; shift
  "$receiver_bin" --port 0 --port-file "$work/$name.port" "$@" 2>"$work/$name.err" &
  started_pid=$!
  for _ in $(seq 1 200); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
  [ -s "$work/$name.port" ] || { echo "bench.sh: the $name receiver did not start:" >&2; cat "$work/$name.err" >&2; exit 1; }
  started_url="http://127.0.0.1:$(cat "$work/$name.port")/hook"
}

# --- data --------------------------------------------------------------------------------
cat >"$work/gen.py" <<'PY'
# gen.py N START PAD: N Valmi RECORD lines with ids START.., PAD > 0 adds a `notes` field of
# about PAD bytes of word salad (compressible like text, not like a repeated string).
import random, sys
n, start, pad = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pool = ""
if pad:
    # A Zipf-like vocabulary of 2,000 made-up words: gzip shrinks it about as much as prose.
    rng = random.Random(42)
    words = ["".join(rng.choice("etaoinshrdlucmfwypvbgkjqxz"[:rng.randint(8, 26)])
                     for _ in range(rng.randint(2, 9))) for _ in range(2000)]
    weights = [1.0 / (k + 1) for k in range(len(words))]
    pool = " ".join(rng.choices(words, weights, k=400000))
out = sys.stdout
buf = []
for i in range(start, start + n):
    notes = ""
    if pad:
        off = (i * 7919) % (len(pool) - pad)
        notes = ',"notes":"%s"' % pool[off:off + pad]
    buf.append('{"type":"RECORD","record":{"stream":"users","data":{"_valmi_meta":'
               '{"_valmi_row_num":%d,"_valmi_sync_op":"upsert"},"id":%d,'
               '"email":"user%d@example.com","first_name":"Ada","last_name":"Lovelace"%s},'
               '"emitted_at":1685013701000}}\n' % (i, i, i, notes))
    if len(buf) >= 10000:
        out.write("".join(buf)); buf = []
out.write("".join(buf))
PY

echo '{"streams":[{"id_key":"id","stream":{"name":"users"}}]}' >"$work/src.json"
mapping='{"stream":"email","sink":"email"},{"stream":"first_name","sink":"my_first_name"},{"stream":"last_name","sink":"last_name"},{"stream":"id","sink":"id"}'
echo "{\"sinks\":[{\"mapping\":[$mapping],\"destination_sync_mode\":\"upsert\"}]}" >"$work/dest.json"
echo "{\"sinks\":[{\"mapping\":[$mapping,{\"stream\":\"notes\",\"sink\":\"notes\"}],\"destination_sync_mode\":\"upsert\"}]}" >"$work/dest_big.json"

gen() { # file n pad
  [ -s "$1" ] || { log "generating $2 records$([ "$3" = 0 ] || echo " (payload +$3 B)")"; python3 "$work/gen.py" "$2" 1 "$3" >"$1"; }
}

write_cfg() { # file url concurrency batch [compression]
  printf '{"url":"%s","concurrency":%s,"batch_size":%s%s}\n' "$2" "$3" "$4" \
    "${5:+,\"compression\":\"$5\"}" >"$1"
}

results=$work/results.tsv
: >"$results"
clk_tck=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$clk_tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One connector run; appends: case rep conn records requests wall user sys rss_kb p50 p99 recv_cpu
run_connector() { # case rep records_file n dest cfg
  local case=$1 rep=$2 input=$3 n=$4 dest=$5 cfg=$6 before after line
  before=$(proc_cpu "$receiver_pid")
  if ! /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      "$bin" write --config "$cfg" --catalog "$work/src.json" --destination_catalog "$dest" \
      <"$input" >"$work/out.jsonl" 2>"$work/err"; then
    echo "bench.sh: the connector failed on case '$case':" >&2
    tail -n 5 "$work/err" "$work/out.jsonl" >&2
    exit 1
  fi
  after=$(proc_cpu "$receiver_pid")
  line=$(tail -n 1 "$work/out.jsonl")
  python3 - "$case" "$rep" "$n" "$(tail -n 1 "$work/time")" "$before" "$after" "$line" >>"$results" <<'PY'
import json, re, sys
case, rep, n, times, before, after, line = sys.argv[1:]
msg = json.loads(line)["log"]["message"]
m = re.search(r"(\d+) delivered.*?; (\d+) requests in .*latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", msg)
if not m or not msg.startswith("sync complete"):
    sys.exit(f"bench.sh: unexpected last line from the connector: {line}")
delivered, requests, p50, p99 = m.groups()
if int(delivered) != int(n):
    sys.exit(f"bench.sh: case {case}: {delivered} delivered of {n}: {msg}")
wall, user, sys_, rss = times.split()
print("\t".join([case, rep, "conn", n, requests, wall, user, sys_, rss, p50, p99,
                 "%.2f" % (float(after) - float(before))]))
PY
}

# The headers the connector sent with a body file, as bare_reqwest arguments.
header_args() { # body
  local line
  while IFS= read -r line; do printf '%s\0%s\0' --header "$line"; done <"$1.headers"
}

# Both bare loops, the plain one and the one with mimalloc.
run_bare() { # case rep requests body; appends per loop: case rep bare|bare_mi req/s cpu_s requests
  local rate headers=() kind program
  mapfile -d '' headers < <(header_args "$4")
  for kind in bare bare_mi; do
    program=$bare_bin
    [ "$kind" = bare_mi ] && program=$bare_mi_bin
    rate=$(/usr/bin/time -f '%e %U %S %M' -o "$work/bare.time" \
      "$program" --url "$url" --concurrency "$(conc_of "$1")" --requests "$3" --body-file "$4" \
      "${headers[@]}" 2>"$work/bare.err" | tail -n 1) || true
    case "$rate" in
      ''|*[!0-9.]*) echo "bench.sh: $(basename "$program") failed on case '$1':" >&2; cat "$work/bare.err" >&2; exit 1 ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$kind" "$rate" \
      "$(awk '{ print $2 + $3 }' "$work/bare.time")" "$3" >>"$results"
  done
}

run_wrk() { # case rep body
  [ -n "$wrk_bin" ] || return 0
  local lua=$work/wrk.lua rate c line
  c=$(conc_of "$1")
  { echo 'wrk.method = "POST"'
    echo "local f = assert(io.open(\"$3\", \"rb\")); wrk.body = f:read(\"*a\"); f:close()"
    while IFS= read -r line; do
      echo "wrk.headers[\"${line%%:*}\"] = \"${line#*: }\""
    done <"$3.headers"
  } >"$lua"
  "$wrk_bin" -t1 -c"$c" -d"${wrk_seconds}s" -s "$lua" "$url" >"$work/wrk.out" 2>&1 || true
  rate=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.out")
  if [ -z "$rate" ] || grep -q 'Non-2xx' "$work/wrk.out"; then
    echo "bench.sh: wrk failed on case '$1':" >&2; cat "$work/wrk.out" >&2; exit 1
  fi
  printf '%s\t%s\twrk\t%s\n' "$1" "$2" "$rate" >>"$results"
}

conc_of() { echo "$1" | sed -E 's/^c([0-9]+) .*/\1/'; }

# --- remote-like endpoint (--remote) -------------------------------------------------------
# One row: a receiver playing the endpoint, one connector run against it, and what each saw.
remote_row() { # name K latency_ms receiver-mode extra-config-fields [h1|h2: over TLS]
  local name=$1 k=$2 latency=$3 mode=$4 extra=$5 tls=${6:-} wall
  local tls_args=()
  case "$tls" in
    h1) tls_args=(--tls-ca-file "$work/ca.pem") ;;
    h2) tls_args=(--tls-ca-file "$work/ca.pem" --http2) ;;
  esac
  rm -f "$work/remote.port" "$work/ca.pem"
  start_receiver remote --log none --no-record --latency-ms "$latency" --capacity "$k" \
    --beyond "$mode" --retry-after 1 "${tls_args[@]}"
  if [ -n "$tls" ]; then
    python3 -c 'import json, sys; print(json.dumps({"tls": {"ca_certificate": open(sys.argv[1]).read()}})[1:-1])' \
      "$work/ca.pem" >"$work/tls.json"
    extra="${extra:+$extra,}$(cat "$work/tls.json")"
    started_url=https${started_url#http}
  fi
  printf '{"url":"%s"%s}\n' "$started_url" "${extra:+,$extra}" >"$work/remote.cfg"
  log "remote row: $name"
  DESTINATION_WEBHOOK_LIMIT_TRACE=$work/trace.tsv /usr/bin/time -f '%e' -o "$work/time" "$bin" write --config "$work/remote.cfg" \
    --catalog "$work/src.json" --destination_catalog "$work/dest.json" \
    <"$work/r_remote.jsonl" >"$work/out.jsonl" 2>"$work/err" \
    || { echo "bench.sh: the connector failed on '$name':" >&2; tail -n 5 "$work/out.jsonl" >&2; exit 1; }
  kill "$started_pid"; wait "$started_pid" 2>/dev/null || true
  wall=$(tail -n 1 "$work/time")
  [ -z "$svg_dir" ] || python3 "$work/svg.py" "$work/trace.tsv" "$name" "$k" "$latency" \
    "$svg_dir/$(echo "$name" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//').svg"
  remote_figures "$name" "$k" "$latency" "$wall" "$(tail -n 1 "$work/out.jsonl")"
}

# The best any client gets from the endpoint: a bare reqwest loop at a fixed concurrency of K,
# which a client can only have by being told K. (A client that must learn K from a refusal
# pays one Retry-After pause on top, in the 429 rows.)
remote_bare_row() { # name K latency_ms
  local name=$1 k=$2 latency=$3 wall
  rm -f "$work/remote.port"
  start_receiver remote --log none --no-record --latency-ms "$latency" --capacity "$k" \
    --beyond refuse --retry-after 1
  log "remote row: $name"
  /usr/bin/time -f '%e' -o "$work/time" "$bare_bin" --url "$started_url" --concurrency "$k" \
    --requests "$records" --body-file "$work/remote_body" --header "Content-Type: application/json" \
    >/dev/null 2>"$work/bare.err" \
    || { echo "bench.sh: bare_reqwest failed on '$name':" >&2; cat "$work/bare.err" >&2; exit 1; }
  kill "$started_pid"; wait "$started_pid" 2>/dev/null || true
  wall=$(tail -n 1 "$work/time")
  remote_figures "$name" "$k" "$latency" "$wall" \
    "{\"log\":{\"message\":\"concurrency limit $k at the end (fixed)\"}}"
}

# One row of remote.tsv from the receiver's exit line and the run's last LOG.
remote_figures() { # name K latency_ms wall_s last-stdout-line
  python3 - "$1" "$2" "$3" "$records" "$4" "$(tail -n 1 "$work/remote.err")" "$5" \
    >>"$work/remote.tsv" <<'PY'
import json, re, sys
name, k, latency, n, wall, receiver, last = sys.argv[1:]
m = re.search(r"(\d+) requests received, (\d+) refused beyond capacity, latency p50 (\d+) ms, (\d+) connections", receiver)
if not m:
    sys.exit(f"bench.sh: unexpected receiver exit line: {receiver}")
requests, refused, p50, connections = map(int, m.groups())
limit = re.search(r"concurrency limit (\d+) at the end \(([^)]*)\)", json.loads(last)["log"]["message"])
rate = int(n) / float(wall)
ideal = int(k) * 1000 / int(latency)
print("\t".join([name, f"{rate:.0f}", f"{rate / ideal:.2f}", f"{100 * refused / requests:.1f}",
                 str(p50), latency, limit.group(1) if limit else "?", f"{float(wall):.2f}",
                 str(connections)]))
PY
}

# svg.py TRACE TITLE K LATENCY OUT: the trace drawn as two panels sharing the time axis.
cat >"$work/svg.py" <<'PY'
import sys
trace, title, k, latency, out = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(trace) if l.strip()]
t = [int(r[0]) / 1000 for r in rows]
limit = [int(r[1]) for r in rows]
flight = [int(r[2]) for r in rows]
acked = [int(r[3]) for r in rows]
# records/s over the last 250 ms (5 samples), so one sample's jitter does not dominate
rate = [0.0] + [(acked[i] - acked[max(0, i - 5)]) / max(t[i] - t[max(0, i - 5)], 1e-3)
                for i in range(1, len(t))]
ideal = int(k) * 1000 / int(latency)
W, H, L, R, T, GAP = 760, 420, 60, 20, 40, 40
ph = (H - T - GAP - 30) / 2
tmax = max(t[-1], 1e-3)
def panel(y0, series, ymax, label, ref=None):
    out = [f'<text x="{L}" y="{y0 - 6}" font-size="12">{label}</text>',
           f'<rect x="{L}" y="{y0}" width="{W - L - R}" height="{ph}" fill="none" stroke="#999"/>']
    for frac in (0, 0.5, 1):
        y = y0 + ph * (1 - frac)
        out.append(f'<text x="{L - 6}" y="{y + 4}" font-size="10" text-anchor="end">{ymax * frac:.0f}</text>')
    if ref is not None:
        y = y0 + ph * (1 - ref / ymax)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    for values, colour in series:
        pts = " ".join(f"{L + (W - L - R) * x / tmax:.1f},{y0 + ph * (1 - min(v, ymax) / ymax):.1f}"
                       for x, v in zip(t, values))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    return out
top = max(max(limit), max(flight), int(k)) * 1.15
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{L}" y="18" font-size="14" font-weight="bold">{title}</text>']
svg += panel(T + 10, [(limit, "#d62728"), (flight, "#1f77b4")], top,
             "concurrency limit (red), requests in flight (blue); dashed: the endpoint's K", int(k))
svg += panel(T + 10 + ph + GAP, [(rate, "#2ca02c")], max(max(rate), ideal) * 1.15,
             "records/s acknowledged; dashed: ideal K / latency", ideal)
for frac in (0, 0.25, 0.5, 0.75, 1):
    x = L + (W - L - R) * frac
    svg.append(f'<text x="{x:.1f}" y="{H - 8}" font-size="10" text-anchor="middle">{tmax * frac:.1f} s</text>')
svg.append("</svg>")
open(out, "w").write("\n".join(svg) + "\n")
PY

if [ "$remote" = 1 ]; then
  [ -z "$svg_dir" ] || mkdir -p "$svg_dir"
  gen "$work/r_remote.jsonl" "$records" 0
  echo '{"_valmi_meta":{"_valmi_row_num":1,"_valmi_sync_op":"upsert"},"id":1,"email":"u1@x"}' >"$work/remote_body"
  : >"$work/remote.tsv"
  for rep in $(seq 1 "$repeat"); do
    remote_bare_row "K 64, 50 ms; bare client at a fixed 64 (told K)" 64 50
    remote_bare_row "K 512, 20 ms; bare client at a fixed 512 (told K)" 512 20
    remote_row "K 64, 50 ms, 429 beyond; default config" 64 50 refuse ""
    remote_row "K 64, 50 ms, queue beyond; default config" 64 50 queue ""
    remote_row "K 64, 50 ms, 429 beyond; concurrency 256" 64 50 refuse '"concurrency":256'
    remote_row "K 512, 20 ms, queue beyond; concurrency 512" 512 20 queue '"concurrency":512'
    remote_row "K 64, 50 ms, queue beyond, TLS HTTP/1.1; default" 64 50 queue "" h1
    remote_row "K 64, 50 ms, queue beyond, TLS HTTP/2; default" 64 50 queue "" h2
    remote_row "K 512, 20 ms, queue beyond, TLS HTTP/1.1; conc. 512" 512 20 queue '"concurrency":512' h1
    remote_row "K 512, 20 ms, queue beyond, TLS HTTP/2; conc. 512" 512 20 queue '"concurrency":512' h2
  done
  python3 - "$work/remote.tsv" "$records" "$repeat" <<'PY'
import statistics, sys
path, n, repeat = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    rows.setdefault(f[0], []).append(f[1:])
print(f"\nremote-like endpoint, {int(n):,} records per row, median of {repeat}:")
print(f"{'endpoint; connector config':<52} {'records/s':>9} {'of ideal':>8} {'429s':>6} {'p50 ms':>7} {'base':>5} {'limit':>6} {'wall s':>7} {'conns':>6}")
for name, runs in rows.items():
    med = [statistics.median(float(r[i]) if r[i] != "?" else 0 for r in runs) for i in range(8)]
    print(f"{name:<52} {med[0]:>9.0f} {med[1]:>8.2f} {med[2]:>5.1f}% {med[3]:>7.0f} {med[4]:>5.0f} {med[5]:>6.0f} {med[6]:>7.2f} {med[7]:>6.0f}")
PY
  exit 0
fi

if [ "$templates" = 1 ]; then
  gen "$work/r_small.jsonl" "$records" 0
  start_receiver templates --log none --no-record
  receiver_pid=$started_pid
  body='{"id": {{ record.id }}, "email_sha256": "{{ record.email | sha256 }}", "first_name": "{{ record.my_first_name }}", "last_name": "{{ record.last_name }}", "op": "{{ op }}", "row": {{ row_num }}}'
  batch='{"events": {{ records | tojson }}}'
  python3 - "$started_url" "$body" "$batch" "$work" <<'PY'
import json, sys
url, body, batch, work = sys.argv[1:]
configs = {
    "envelope c16 b1": {},
    "body template c16 b1": {"request": {"body": body}},
    "envelope c16 b100": {"batch_size": 100},
    "batch template c16 b100": {"batch_size": 100, "request": {"batch_body": batch}},
    "body + batch template c16 b100": {"batch_size": 100, "request": {"body": body, "batch_body": batch}},
}
for i, (name, extra) in enumerate(configs.items()):
    json.dump({"url": url, "concurrency": 16, **extra}, open(f"{work}/t{i}.cfg", "w"))
    open(f"{work}/t{i}.name", "w").write(name)
PY
  : >"$work/templates.tsv"
  for rep in $(seq 1 "$repeat"); do
    for i in 0 1 2 3 4; do
      log "templates: $(cat "$work/t$i.name"), run $rep/$repeat"
      /usr/bin/time -f '%e %M' -o "$work/time" "$bin" write --config "$work/t$i.cfg" --catalog "$work/src.json" \
        --destination_catalog "$work/dest.json" <"$work/r_small.jsonl" >"$work/out.jsonl" 2>"$work/err" \
        || { echo "bench.sh: the templated run failed:" >&2; tail -n 5 "$work/err" "$work/out.jsonl" >&2; exit 1; }
      grep -q "\"sync complete: $records delivered" "$work/out.jsonl" \
        || { echo "bench.sh: not every record was delivered:" >&2; tail -n 2 "$work/out.jsonl" >&2; exit 1; }
      printf '%s\t%s\t%s\n' "$(cat "$work/t$i.name")" "$rep" "$(cat "$work/time")" >>"$work/templates.tsv"
    done
  done
  python3 - "$work/templates.tsv" "$records" "$repeat" <<'PY'
import statistics, sys
path, n, repeat = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(path):
    name, rep, times = line.rstrip("\n").split("\t")
    wall, rss = times.split()
    runs.setdefault(name, {})[rep] = (n / float(wall), int(rss) / 1024)
base = {"b1": "envelope c16 b1", "b100": "envelope c16 b100"}
print(f"\nrequest templates, {n:,} records per row, median of {repeat} (ratio: to the envelope's records/s in the same repeat):")
print(f"{'case':<32} {'records/s':>10} {'ratio':>6} {'peak RSS MiB':>13}")
for name, reps in runs.items():
    own = base[name.split()[-1]]
    ratios = [reps[r][0] / runs[own][r][0] for r in reps]
    print(f"{name:<32} {statistics.median(v[0] for v in reps.values()):>10,.0f} "
          f"{statistics.median(ratios):>6.2f} {statistics.median(v[1] for v in reps.values()):>13.1f}")
PY
  exit 0
fi

# --- request bodies, taken from what the connector really sends ------------------------------
# Short runs against a recording receiver, on records whose ids are about N/2 (so bodies have
# the typical size of the run), give a real body of each kind for wrk and bare_reqwest.
python3 "$work/gen.py" 200 $((records / 2)) 0 >"$work/probe_small.jsonl"
python3 "$work/gen.py" 20 $((records / 20)) 10000 >"$work/probe_big.jsonl"
start_receiver probe --log jsonl >"$work/probe.log"
probe_pid=$started_pid
probe_url=$started_url
for spec in "1 probe_small dest" "100 probe_small dest" "1 probe_big dest_big" "1 probe_big dest_big gzip"; do
  set -- $spec
  write_cfg "$work/probe.cfg" "$probe_url" 1 "$1" "${4:-}"
  "$bin" write --config "$work/probe.cfg" --catalog "$work/src.json" --destination_catalog "$work/$3.json" \
    <"$work/$2.jsonl" >/dev/null 2>"$work/probe.err" || { cat "$work/probe.err" >&2; exit 1; }
done
kill "$probe_pid"; wait "$probe_pid" 2>/dev/null || true
probe_pid=""
# Sort the recorded requests into the four kinds and write one body file of each: body1,
# body100, bodybig and bodygz (the 10 KB body gzipped at level 1, like the connector's flate2
# `fast`, since the receiver logs bodies decoded), plus the mean size of each on the wire. Each
# body file gets a .headers file with the headers the connector sent with it (all but host and
# content-length, which every client sets itself): wrk and bare_reqwest send the same requests,
# headers included, so the yardsticks do the same HTTP work and differ only in what surrounds it.
python3 - "$work" <<'PY'
import gzip, json, statistics, sys
work = sys.argv[1]
kinds = {}
for line in open(f"{work}/probe.log"):
    r = json.loads(line)
    h = dict(r["headers"])
    if h.get("content-encoding") == "gzip":
        kind = "pgz"
    elif r["body"].startswith("["):
        kind = "p100"
    else:
        kind = "pbig" if len(r["body"]) > 5000 else "p1"
    kinds.setdefault(kind, []).append((int(h.get("content-length", len(r["body"]))), r["body"], r["headers"]))
sizes = {}
for kind, reqs in kinds.items():
    # The largest body: a batch run may also send a short batch.
    wire, body, headers = max(reqs, key=lambda r: r[0])
    body = body.encode()
    sizes[kind] = {"requests": len(reqs), "wire_mean": statistics.mean(r[0] for r in reqs),
                   "wire": wire}
    name = {"p1": "body1", "p100": "body100", "pbig": "bodybig", "pgz": "bodygz"}[kind]
    open(f"{work}/{name}", "wb").write(gzip.compress(body, 1) if kind == "pgz" else body)
    with open(f"{work}/{name}.headers", "w") as f:
        for key, value in headers:
            if key not in ("host", "content-length"):
                f.write(f"{key}: {value}\n")
missing = {"p1", "p100", "pbig", "pgz"} - set(sizes)
if missing:
    sys.exit(f"bench.sh: the probe run recorded no request of kind {sorted(missing)}")
json.dump(sizes, open(f"{work}/sizes.json", "w"))
PY

start_receiver bench --log none --no-record
receiver_pid=$started_pid
url=$started_url
log "receiver at $url; bodies: $(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(', '.join(f'{k} {v[\"wire\"]:.0f} B' for k,v in s.items()))" "$work/sizes.json")"

# --- instruction counts (--callgrind) ----------------------------------------------------------
if [ "$callgrind" = 1 ]; then
  command -v valgrind >/dev/null || apt_install valgrind
  command -v valgrind >/dev/null || { echo "bench.sh: --callgrind needs valgrind" >&2; exit 1; }
  gen "$work/r_small.jsonl" "$records" 0
  head -n 1 "$work/r_small.jsonl" >"$work/r_one.jsonl"
  write_cfg "$work/c16b1.cfg" "$url" 16 1
  : >"$work/grind.tsv"
  # grind NAME REQUESTS INPUT CMD...: CMD under callgrind, one count per thread appended to
  # grind.tsv: name, requests, thread number, instructions, of which in SHA-256 compression.
  grind() {
    local name=$1 n=$2 input=$3 f total sha
    shift 3
    rm -f "$work"/cg.*
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.%p" "$@" \
      <"$input" >/dev/null 2>"$work/cg.err" || { echo "bench.sh: $name failed under valgrind:" >&2; tail "$work/cg.err" >&2; exit 1; }
    for f in "$work"/cg.*-*; do
      total=$(awk '/^summary:/ { print $2; exit }' "$f")
      # (awk reads to the end: stopping early would fail the pipe under pipefail)
      sha=$(callgrind_annotate --inclusive=yes "$f" | awk '!found && /sha256::compress256 \[/ { gsub(",", "", $1); print $1; found = 1 }')
      printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "${f##*-}" "$total" "${sha:-0}" >>"$work/grind.tsv"
    done
  }
  conn_cmd=("$bin" write --config "$work/c16b1.cfg" --catalog "$work/src.json" --destination_catalog "$work/dest.json")
  mapfile -d '' headers < <(header_args "$work/body1")
  bare_args=(--url "$url" --concurrency 16 --body-file "$work/body1" "${headers[@]}")
  log "callgrind: connector, $records records"
  grind conn "$records" "$work/r_small.jsonl" "${conn_cmd[@]}"
  grind conn 1 "$work/r_one.jsonl" "${conn_cmd[@]}"
  log "callgrind: bare reqwest, $records requests"
  grind bare "$records" /dev/null "$bare_bin" "${bare_args[@]}" --requests "$records"
  grind bare 1 /dev/null "$bare_bin" "${bare_args[@]}" --requests 1
  log "callgrind: bare reqwest with mimalloc, $records requests"
  grind bare_mi "$records" /dev/null "$bare_mi_bin" "${bare_args[@]}" --requests "$records"
  grind bare_mi 1 /dev/null "$bare_mi_bin" "${bare_args[@]}" --requests 1
  python3 - "$work/grind.tsv" "$records" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
runs = {}
for line in open(path):
    name, reqs, thread, total, sha = line.split()
    runs.setdefault((name, int(reqs)), {})[thread] = (int(total), int(sha))
def per_record(name, thread, without_sha=False):
    big, one = runs[(name, n)].get(thread, (0, 0)), runs[(name, 1)].get(thread, (0, 0))
    pick = lambda t: t[0] - t[1] if without_sha else t[0]
    return (pick(big) - pick(one)) / (n - 1)
threads = sorted(runs[("conn", n)])
# Threads in the order they start: the runtime (main) thread, the signal listener, the stdin reader.
names = {"01": "runtime thread (delivery loop, HTTP)", "02": "signals thread (waits for SIGTERM/SIGINT/SIGHUP)",
         "03": "stdin-reader thread (parse, map, envelope, keys)"}
print()
print(f"instructions per record, valgrind --tool=callgrind, concurrency 16, batch 1, {n:,} records;")
print("start-up subtracted (a run of 1 record); SHA-256 compression left out, since valgrind runs")
print("it in software where the real run uses the CPU's SHA instructions:")
conn = 0.0
for t in threads:
    x = per_record("conn", t, without_sha=True)
    conn += x
    sha = per_record("conn", t) - x
    print(f"  connector {names.get(t, 'thread ' + t):<50} {x:>9,.0f}" + (f"   (+{sha:,.0f} software SHA-256)" if sha > 1 else ""))
bare = sum(per_record("bare", t, without_sha=True) for t in runs[("bare", n)])
bare_mi = sum(per_record("bare_mi", t, without_sha=True) for t in runs[("bare_mi", n)])
print(f"  connector, all threads {'':<37} {conn:>9,.0f}")
print(f"  bare reqwest loop {'':<42} {bare:>9,.0f}")
print(f"  bare reqwest loop with mimalloc {'':<28} {bare_mi:>9,.0f}")
print(f"  connector / bare: {conn / bare:.2f} in all; runtime thread alone: {per_record('conn', '01', True) / bare:.2f}")
print(f"  connector / bare with mimalloc: {conn / bare_mi:.2f} in all; runtime thread alone: {per_record('conn', '01', True) / bare_mi:.2f}")
PY
  exit 0
fi

# --- runs ----------------------------------------------------------------------------------
all_before=$(ticks_all); ours_before=$(ticks_ours); started_at=$(date +%s.%N)
if [ "$memory" = 1 ]; then
  big=$((records * 10))
  gen "$work/r_small.jsonl" "$records" 0
  gen "$work/r_large.jsonl" "$big" 0
  write_cfg "$work/c16b1.cfg" "$url" 16 1
  for rep in $(seq 1 "$repeat"); do
    log "memory run $rep/$repeat: $records records"
    run_connector "c16 b1 N=$records" "$rep" "$work/r_small.jsonl" "$records" "$work/dest.json" "$work/c16b1.cfg"
    log "memory run $rep/$repeat: $big records"
    run_connector "c16 b1 N=$big" "$rep" "$work/r_large.jsonl" "$big" "$work/dest.json" "$work/c16b1.cfg"
  done
else
  gen "$work/r_small.jsonl" "$records" 0
  big_n=$((records / 10))
  gen "$work/r_big.jsonl" "$big_n" 10000
  cases=("c1 b1" "c4 b1" "c16 b1" "c64 b1" "c1 b100" "c4 b100" "c16 b100" "c64 b100" "c16 b1 10KB" "c16 b1 10KB gzip")
  for rep in $(seq 1 "$repeat"); do
    for case in "${cases[@]}"; do
      log "run $rep/$repeat: $case"
      set -- $case
      c=${1#c}; b=${2#b}
      cfg=$work/cfg.json
      if [ "${3:-}" = 10KB ]; then
        write_cfg "$cfg" "$url" "$c" "$b" "${4:-}"
        run_connector "$case" "$rep" "$work/r_big.jsonl" "$big_n" "$work/dest_big.json" "$cfg"
        if [ "${4:-}" = gzip ]; then
          run_bare "$case" "$rep" "$big_n" "$work/bodygz"
          run_wrk "$case" "$rep" "$work/bodygz"
        else
          run_bare "$case" "$rep" "$big_n" "$work/bodybig"
          run_wrk "$case" "$rep" "$work/bodybig"
        fi
      else
        write_cfg "$cfg" "$url" "$c" "$b"
        run_connector "$case" "$rep" "$work/r_small.jsonl" "$records" "$work/dest.json" "$cfg"
        run_bare "$case" "$rep" $(((records + b - 1) / b)) "$work/body$b"
        run_wrk "$case" "$rep" "$work/body$b"
      fi
    done
  done
fi

# Stop the receiver first so that its CPU time is counted as ours.
kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true
receiver_pid=""
foreign_pct=$(awk -v a0="$all_before" -v a1="$(ticks_all)" -v o0="$ours_before" -v o1="$(ticks_ours)" \
  -v t0="$started_at" -v t1="$(date +%s.%N)" -v hz="$clk_tck" -v n="$(nproc)" \
  'BEGIN { f = (a1 - a0) - (o1 - o0); if (f < 0) f = 0; printf "%.0f", 100 * f / hz / ((t1 - t0) * n) }')

# --- report --------------------------------------------------------------------------------
python3 - "$results" "$work/sizes.json" "$memory" "$records" "$repeat" "$wrk_seconds" \
  "$(nproc)" "$busy_before" "$foreign_pct" <<'PY'
import json, statistics, sys
path, sizes_path, memory, n, repeat, wrk_s, ncpu, busy, foreign = sys.argv[1:]
memory, n, repeat = memory == "1", int(n), int(repeat)
sizes = json.load(open(sizes_path))
ORIGINAL = 600.0  # records/s of the original Python connector
MIB = 1024.0

conn, bare, bare_mi, bare_cpu, wrk, order = {}, {}, {}, {}, {}, []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    case, kind = f[0], f[2]
    if case not in order:
        order.append(case)
    if kind == "conn":
        recs, reqs, wall, user, sys_, rss, p50, p99, rcpu = map(float, f[3:12])
        conn.setdefault(case, []).append(dict(
            recs=recs, rps=recs / wall, qps=reqs / wall, p50=p50, p99=p99, rss=rss / MIB,
            cpu=user + sys_, cpu100k=(user + sys_) * 100000 / recs, wall=wall, rcpu=rcpu))
    elif kind == "bare":
        bare.setdefault(case, []).append(float(f[3]))
        bare_cpu.setdefault(case, []).append(float(f[4]) / float(f[5]))  # CPU s per request
    elif kind == "bare_mi":
        bare_mi.setdefault(case, []).append(float(f[3]))
    elif kind == "wrk":
        wrk.setdefault(case, []).append(float(f[3]))

def med(runs, key):
    return statistics.median(r[key] for r in runs)

rows, summary = [], {}
for case in order:
    runs = conn[case]
    s = {k: med(runs, k) for k in runs[0]}
    s["wrk"] = statistics.median(wrk[case]) if case in wrk else None
    s["bare"] = statistics.median(bare[case]) if case in bare else None
    s["bare_mi"] = statistics.median(bare_mi[case]) if case in bare_mi else None
    # bare CPU per 100k records, for the same number of requests as the connector made
    s["bare_cpu100k"] = (statistics.median(bare_cpu[case]) * s["qps"] / s["rps"] * 100000
                         if case in bare_cpu else None)
    summary[case] = s

def fnum(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"

def ratio(a, b):
    return None if b in (None, 0) else a / b

header = ["case", "records/s", "requests/s", "p50 ms", "p99 ms", "peak RSS MiB", "CPU s",
          "CPU s/100k", "vs wrk", "vs bare", "vs original(600/s)"]
table = [header]
for case in order:
    s = summary[case]
    table.append([case, fnum(s["rps"]), fnum(s["qps"]), fnum(s["p50"], 2), fnum(s["p99"], 2),
                  fnum(s["rss"], 1), fnum(s["cpu"], 2), fnum(s["cpu100k"], 2),
                  fnum(ratio(s["qps"], s["wrk"]), 2), fnum(ratio(s["qps"], s["bare"]), 2),
                  fnum(s["rps"] / ORIGINAL, 0) + "x"])
widths = [max(len(r[i]) for r in table) for i in range(len(header))]
def show(rows, widths):
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))

print()
print(f"destination-webhook write, Valmi dialect; {'median of %d runs' % repeat if repeat > 1 else '1 run'} per row; "
      f"records/s = records / wall time of the process; ratios compare requests/s")
show(table, widths)
print()
noisy = float(busy) > 10 or float(foreign) > 5
print(f"machine: {ncpu} CPUs; {busy}% busy in the second before the runs; other processes took "
      f"{foreign}% of the CPUs during the runs"
      + (" -- figures are low and noisy, run again on a quiet machine" if noisy else ""))
print()
if not memory:
    y = [["case", "wrk req/s", "bare req/s", "bare mimalloc req/s", "vs bare mimalloc",
          "bare CPU s/100k", "connector CPU s/100k",
          "receiver CPU s/100k", "connector wall s", "records/s min-max"]]
    for case in order:
        s = summary[case]
        rps = [r["rps"] for r in conn[case]]
        y.append([case, fnum(s["wrk"]), fnum(s["bare"]), fnum(s["bare_mi"]),
                  fnum(ratio(s["qps"], s["bare_mi"]), 2), fnum(s["bare_cpu100k"], 2),
                  fnum(s["cpu100k"], 2), fnum(s["rcpu"] * 100000 / s["recs"], 2),
                  fnum(s["wall"], 2), f"{min(rps):,.0f}-{max(rps):,.0f}"])
    print(f"yardsticks (same receiver, bodies and concurrency; wrk -t1 -d{wrk_s}s; "
          f"bare = examples/bare_reqwest.rs, with the system allocator; bare mimalloc = the same loop "
          f"with the connector's allocator; receiver CPU measured during the connector's run):")
    show(y, [max(len(r[i]) for r in y) for i in range(len(y[0]))])
    print()
    p1, p100, pbig, pgz = (sizes.get(k, {}) for k in ("p1", "p100", "pbig", "pgz"))
    print(f"request bodies: batch 1 {p1.get('wire_mean', 0):.0f} B; batch 100 {p100.get('wire', 0):,.0f} B; "
          f"10KB rows {pbig.get('wire_mean', 0):,.0f} B, gzip on the wire {pgz.get('wire_mean', 0):,.0f} B "
          f"({pbig.get('wire_mean', 1) / max(pgz.get('wire_mean', 1), 1):.1f}x smaller)")
    g, p = summary.get("c16 b1 10KB gzip"), summary.get("c16 b1 10KB")
    if g and p:
        print(f"gzip: {g['rps']:,.0f} records/s, {g['rps'] * pgz.get('wire_mean', 0) / 1e6:,.1f} MB/s on the wire "
              f"({g['rps'] * pbig.get('wire_mean', 0) / 1e6:,.1f} MB/s of JSON), {g['cpu100k']:.2f} CPU s/100k; "
              f"uncompressed: {p['rps']:,.0f} records/s, {p['rps'] * pbig.get('wire_mean', 0) / 1e6:,.1f} MB/s, "
              f"{p['cpu100k']:.2f} CPU s/100k")
    print()

def target(ok, text):
    print(f"{'PASS' if ok else 'FAIL'}  {text}")

print("targets:")
if memory:
    small, large = order[0], order[1]
    a, b = summary[small]["rss"], summary[large]["rss"]
    target(b < 64, f"peak RSS < 64 MiB at {summary[large]['recs']:,.0f} records: {b:.1f} MiB")
    flat = b - a <= max(4.0, 0.1 * a)
    target(flat, f"peak RSS flat in N: {a:.1f} MiB at {summary[small]['recs']:,.0f}, {b:.1f} MiB at "
                 f"{summary[large]['recs']:,.0f} (+{b - a:.1f} MiB; flat = within max(4 MiB, 10%))")
else:
    c16 = summary.get("c16 b1")
    if c16:
        r = ratio(c16["qps"], c16["wrk"])
        if r is None:
            print(f"n/a   c16 b1 >= 0.45 x wrk ceiling: wrk not available")
        else:
            target(r >= 0.45, f"c16 b1 >= 0.45 x wrk ceiling: {c16['qps']:,.0f} / {c16['wrk']:,.0f} req/s = {r:.2f}")
        r = ratio(c16["qps"], c16["bare"])
        target(r >= 0.9, f"c16 b1 >= 0.9 x bare reqwest: {c16['qps']:,.0f} / {c16['bare']:,.0f} req/s = {r:.2f}")
        r = ratio(c16["qps"], c16["bare_mi"])
        if r is not None:
            print(f"info  c16 b1 vs the bare loop with mimalloc too: {c16['qps']:,.0f} / {c16['bare_mi']:,.0f} req/s = {r:.2f}")
        target(c16["rps"] >= 50 * ORIGINAL, f"c16 b1 >= 50 x 600 = 30,000 records/s: {c16['rps']:,.0f} ({c16['rps'] / ORIGINAL:.0f}x)")
    c1 = summary.get("c1 b1")
    if c1:
        target(c1["rps"] >= 10 * ORIGINAL, f"c1 b1 >= 10 x 600 = 6,000 records/s: {c1['rps']:,.0f} ({c1['rps'] / ORIGINAL:.0f}x)")
    b100 = summary.get("c16 b100")
    if b100:
        best = max((summary[c]["rps"], c) for c in order if " b100" in c)
        target(b100["rps"] >= 100000, f"c16 b100 >= 100,000 records/s: {b100['rps']:,.0f} "
                                      f"(best batch-100 row: {best[1]} {best[0]:,.0f})")
    print(f"n/a   peak RSS < 64 MiB at 1,000,000 records and flat in N: run scripts/bench.sh --memory "
          f"(this run: {max(s['rss'] for s in summary.values()):.1f} MiB at most)")
PY
