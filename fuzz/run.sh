#!/usr/bin/env bash
# Run every fuzz target for a while (default 180 s each) with a seed corpus built from the
# conformance kit's test vectors. Not part of `cargo test`. Needs a nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). Usage: fuzz/run.sh [seconds per target] [target…]
# A crash leaves its input in fuzz/artifacts/<target>/; replay with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv ndjson package_xml)
vectors=../conformance/vectors/v1
# The hub's own lock file, so the fuzzed code is built from the same dependency versions.
[ -f Cargo.lock ] || cp ../Cargo.lock Cargo.lock

seed() {
  local target=$1 dir=corpus/$1
  mkdir -p "$dir"
  case $target in
    csv) cp "$vectors"/files/*.csv "$dir"/ ;;
    ndjson)
      cp "$vectors"/files/*.ndjson "$vectors"/files/*.json "$dir"/
      # Every record vector as a one-line NDJSON file.
      python3 - "$vectors" "$dir" <<'PY'
import json, pathlib, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for file in vectors.glob("*.json"):
    if file.name == "files.json":
        continue
    for i, case in enumerate(json.loads(file.read_text()).get("cases", [])):
        line = json.dumps(case["data"], ensure_ascii=False) + "\n"
        (out / f"{file.stem}-{i}.ndjson").write_text(line)
PY
      ;;
    package_xml) cp "$vectors"/files/transfer-*.xml "$dir"/ ;;
  esac
}

for target in "${targets[@]}"; do
  seed "$target"
  echo "== $target: ${seconds}s"
  # Packages are a few KB; records and CSV files a few hundred bytes per row.
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048
done
