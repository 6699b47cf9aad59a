#!/usr/bin/env bash
# Contract checks with real third-party tools against a live demo hub:
# openapi-spec-validator, Spectral with the OWASP API Security ruleset, schemathesis,
# openapi-python-client (+ a script using the generated client), headless Chromium rendering
# /docs with every other network destination closed, and the conformance kit's server suite
# against the hub with its report.html rendered offline.
# Expects the debug binary built by `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="$root/target/debug/kodomo-hub"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

python3 -m pip install --quiet --disable-pip-version-check \
  'schemathesis>=4.3,<5' 'openapi-spec-validator>=0.7' 'openapi-python-client>=0.26'
if ! command -v chromium >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# Japanese glyphs for the screenshot of the conformance report (any CJK font will do).
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
  apt-get update -qq && apt-get install -y -qq fonts-ipafont-gothic >/dev/null
fi

# schemathesis deliberately sends hundreds of wrong tokens from this one address; the failed-auth
# throttle (429 after 30 a minute) has its own test in the suite, so here it is set out of reach.
"$bin" serve --demo --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --failed-auth-per-minute 1000000 >"$work/serve.log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.2; done
. "$work/data/demo-tokens.env"
token=$("$bin" admin client add --municipality "$KH_TOWN" --name contract-ci \
  --role source,caseworker,auditor,transfer-officer --data-dir "$work/data" 2>/dev/null)

echo "== openapi-spec-validator"
openapi-spec-validator openapi/openapi.json

echo "== Spectral, OWASP API Security ruleset (no errors; warnings explained in the ruleset)"
npm install --prefix .ci/spectral --no-audit --no-fund --silent
.ci/spectral/node_modules/.bin/spectral lint --fail-severity error \
  -r .ci/spectral/owasp.yaml openapi/openapi.json

echo "== schemathesis (fixed seed, bounded examples, default checks)"
(cd .ci && SCHEMATHESIS_HOOKS=schemathesis_hooks st --config-file schemathesis.toml run \
  "$root/openapi/openapi.json" --url "$base" -H "Authorization: Bearer $token" \
  --seed 20261121 --max-examples 25)

echo "== openapi-python-client"
openapi-python-client generate --path openapi/openapi.json --output-path "$work/client" >/dev/null
python3 -m pip install --quiet --disable-pip-version-check "$work/client"
python3 .ci/contract/generated_client_check.py "$base" "$token" "$KH_TOWN"

echo "== headless Chromium renders /docs offline"
# Every destination but the hub goes to a closed proxy port, so the page must work offline.
dom=$(chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chromium" \
  --proxy-server=127.0.0.1:9 --proxy-bypass-list="127.0.0.1" \
  --virtual-time-budget=10000 --dump-dom "$base/docs" 2>/dev/null)
operations=$(grep -o 'data-operation-id="[a-z_]*"' <<<"$dom" | sort -u | wc -l)
expected=$(python3 -c 'import json; d=json.load(open("openapi/openapi.json")); print(sum(len(v) for v in d["paths"].values()))')
echo "rendered $operations of $expected operations"
[ "$operations" -eq "$expected" ]
echo "== conformance kit: server suite against the demo hub; report.html in headless Chromium"
report="$work/conformance"
KH_CONFORMANCE_TOKEN="$token" "$bin" conformance server --base-url "$base" \
  --token-env KH_CONFORMANCE_TOKEN --municipality "$KH_TOWN" \
  --capabilities conformance/capabilities.example.json --out "$report"
# One self-contained file: nothing to fetch, so it renders the same without network.
if grep -Eq '(src|href)=|url\(' "$report/report.html"; then
  echo "report.html refers to an external asset"; exit 1
fi
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chromium-report"
  --proxy-server=127.0.0.1:9)
"${chrome[@]}" --window-size=1240,1754 --screenshot="$report/report.png" \
  "file://$report/report.html" 2>/dev/null
"${chrome[@]}" --no-pdf-header-footer --print-to-pdf="$report/report.pdf" \
  "file://$report/report.html" 2>/dev/null
test -s "$report/report.png"
test -s "$report/report.pdf"
rendered=$("${chrome[@]}" --dump-dom "file://$report/report.html" 2>/dev/null)
grep -q 'id="verdict">適合 ' <<<"$rendered"
echo "report.html rendered: $(stat -c %s "$report/report.png") byte screenshot, $(stat -c %s "$report/report.pdf") byte A4 PDF"

echo "contract checks passed"
