#!/usr/bin/env bash
# Mutation testing of the connector's correctness code with cargo-mutants: each mutant changes
# one operator, constant or function body, rebuilds, and runs the whole test suite; a mutant no
# test notices ("missed") is behaviour nothing pins down.
#
# usage: scripts/mutants.sh [--file PATH]... [--shard K/N] [--in-diff REV [--max M]] [--fast-first
#                           [--suite TEST,...]] [-- extra args]
#   (no option)    every mutant of the correctness modules: hours on 2 cores; split it with --shard.
#   --file PATH    only these files (repeatable; globs as cargo-mutants takes them), e.g. one
#                  feature's modules before its issue is called resolved.
#   --shard K/N    the K-th of N shards (0-based), for running a full pass by hand in pieces.
#   --in-diff REV  only the mutants on lines changed since REV (what CI runs, against HEAD~1).
#   --max M        with --in-diff: at most M mutants (default 4, about 1.5 min each here): when
#                  the change has more, one shard of them, chosen by the commit, so CI time stays
#                  bounded whatever the change's size and successive commits cover different ones.
#   --fast-first   two passes: every mutant against the library's unit tests alone (`--lib`: one
#                  test binary to rebuild, 10-30 s a mutant here instead of minutes), then only
#                  that pass's survivors against the whole suite (`--iterate`, which skips what
#                  the first pass caught or found unviable). The figures are the whole suite's.
#   --suite T,...  with --fast-first: pass 2 runs only these integration tests (`tests/T.rs`),
#                  the ones that exercise the files, instead of the whole suite (minutes a
#                  mutant here). Its misses are an upper bound: a test outside T might catch them.
#
# Prints caught / missed / timeout / unviable per file, then every missed mutant. Mutants are
# applied in place (this tree's own target/ is reused, so each is an incremental build), and the
# tree is restored after each one by cargo-mutants. Exits 0 whatever survived: the survivors are
# reported, not judged here (the closing note of every issue says what was done about each).
# Speed-only mutants are excluded in .cargo/mutants.toml, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=27.1.0
shard=""
base=""
max=4
fast_first=""
suite=""
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shard) shard=$2; shift 2 ;;
    --in-diff) base=$2; shift 2 ;;
    --max) max=$2; shift 2 ;;
    --file) only+=("$2"); shift 2 ;;
    --fast-first) fast_first=1; shift ;;
    --suite) suite=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mutants.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(cargo mutants --version 2>/dev/null | awk '{print $2}')" != "$VERSION" ]; then
  echo "mutants.sh: installing cargo-mutants $VERSION" >&2
  cargo install --quiet --locked cargo-mutants --version "$VERSION"
fi

# The correctness code: policy, acknowledgement window, ordering, flattening, envelope,
# idempotency, signing, redaction, checkpoints, dialects, delivery, the write loop; then the
# request shaping (templates, routes, destination objects), adaptive concurrency and OAuth2.
files=(
  src/policy.rs src/ack.rs src/ordering.rs src/backlog.rs src/flatten.rs src/envelope.rs
  src/encoder.rs src/shape.rs src/idempotency.rs src/signing.rs src/redact.rs src/endpoint.rs
  src/rejection.rs src/failure.rs src/resume.rs src/reader.rs src/protocol.rs
  'src/checkpoint/*.rs' 'src/dialect/*.rs' 'src/delivery/*.rs' src/sink.rs src/outbox.rs
  src/template.rs src/path_template.rs src/header_template.rs src/json_value.rs src/sample.rs
  src/routes.rs src/objects.rs src/refresh.rs src/discover.rs src/hmac_header.rs
  src/concurrency.rs src/oauth.rs
)
[ ${#only[@]} -gt 0 ] && files=("${only[@]}")
mkdir -p target
args=(--in-place --no-shuffle --output target/mutants --timeout 240)
for f in "${files[@]}"; do args+=(--file "$f"); done

if [ -n "$base" ]; then
  diff_file=target/mutants-change.diff
  git diff "$base" -- src > "$diff_file"
  # The suite has just passed in CI's test step: no baseline run before the mutants.
  args+=(--in-diff "$diff_file" --baseline skip)
  count=$(cargo mutants "${args[@]}" --list 2>/dev/null | grep -c . || true)
  echo "mutants.sh: $count mutants on the lines changed since $base" >&2
  if [ "$count" -eq 0 ]; then
    echo "0 mutants: nothing to test"
    exit 0
  fi
  if [ "$count" -gt "$max" ]; then
    shards=$(( (count + max - 1) / max ))
    pick=$(( 16#$(git rev-parse --short=7 HEAD) % shards ))
    shard="$pick/$shards"
    echo "mutants.sh: testing shard $shard of them (--max $max)" >&2
  fi
fi
[ -n "$shard" ] && args+=(--shard "$shard")

# 0 all caught, 2 some missed, 3 some timed out: results either way. Anything else is a failure
# of the run itself (4: the tests fail without any mutant).
mutants() {
  set +e
  cargo mutants "$@"
  local status=$?
  set -e
  case "$status" in 0|2|3) ;; *) echo "mutants.sh: cargo mutants exited $status" >&2; exit "$status" ;; esac
}
if [ -n "$fast_first" ]; then
  echo "mutants.sh: pass 1 of 2, the unit tests (--lib) alone" >&2
  mutants "${args[@]}" --test-workspace=false --cargo-arg=--lib "$@"
  # --iterate lists pass 1's unviable mutants among the caught: keep them apart for the table.
  cp target/mutants/mutants.out/unviable.txt target/mutants/unviable-pass1.txt
  if [ -n "$suite" ]; then
    echo "mutants.sh: pass 2 of 2, the survivors of pass 1 against tests/{$suite}.rs" >&2
    targets=()
    IFS=, read -ra names <<< "$suite"
    for name in "${names[@]}"; do targets+=("--cargo-arg=--test=$name"); done
    mutants "${args[@]}" --test-workspace=false "${targets[@]}" --iterate "$@"
  else
    echo "mutants.sh: pass 2 of 2, the survivors of pass 1 against the whole suite" >&2
    mutants "${args[@]}" --test-workspace=true --iterate "$@"
  fi
else
  rm -f target/mutants/unviable-pass1.txt
  mutants "${args[@]}" --test-workspace=true "$@"
fi

out=target/mutants/mutants.out
python3 - "$out" <<'PY'
import collections, pathlib, sys
out = pathlib.Path(sys.argv[1])
kinds = ["caught", "missed", "timeout", "unviable"]
table = collections.defaultdict(lambda: dict.fromkeys(kinds, 0))
def lines(path):
    return path.read_text().splitlines() if path.exists() else []
found = {kind: lines(out / f"{kind}.txt") for kind in kinds}
# After --fast-first, pass 1's caught and unviable mutants are all in previously_caught.txt.
unviable_before = set(lines(out.parent / "unviable-pass1.txt"))
for line in lines(out / "previously_caught.txt"):
    found["unviable" if line in unviable_before else "caught"].append(line)
for kind in kinds:
    for line in found[kind]:
        table[line.split(":", 1)[0]][kind] += 1
print(f"{'file':32} {'caught':>7} {'missed':>7} {'timeout':>8} {'unviable':>9} {'caught/viable':>14}")
total = dict.fromkeys(kinds, 0)
for name in sorted(table):
    row = table[name]
    for k in kinds:
        total[k] += row[k]
    viable = row["caught"] + row["missed"] + row["timeout"]
    share = f"{row['caught'] / viable:.0%}" if viable else "-"
    print(f"{name:32} {row['caught']:7} {row['missed']:7} {row['timeout']:8} {row['unviable']:9} {share:>14}")
viable = total["caught"] + total["missed"] + total["timeout"]
share = f"{total['caught'] / viable:.0%}" if viable else "-"
print(f"{'all':32} {total['caught']:7} {total['missed']:7} {total['timeout']:8} {total['unviable']:9} {share:>14}")
missed = out / "missed.txt"
if missed.exists() and missed.read_text().strip():
    print("\nmissed (no test noticed these):")
    print(missed.read_text().rstrip())
PY
