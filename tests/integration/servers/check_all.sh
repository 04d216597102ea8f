#!/usr/bin/env bash
# Run the opt-in integration checks against every server start.sh brought up, one pytest run
# per server, and print each check's outcome (the rows of docs/compatibility.md).
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 2
REAL="${TRIO_INFER_REAL:-/opt/trio-infer-real}"
# shellcheck disable=SC1091
. "$REAL/urls.env"
status=0
run() {
    local name=$1
    shift
    echo "=== $name"
    python -m pytest -q -s -rA -p no:cacheprovider "$@" || status=1
}
[ -n "${VLLM_URL:-}" ] && run vllm tests/integration/test_real_openai.py \
    --inference-url "$VLLM_URL" ${VLLM_EMBED_URL:+--embeddings-url "$VLLM_EMBED_URL"}
[ -n "${LLAMACPP_URL:-}" ] && run llama.cpp tests/integration/test_real_openai.py \
    --inference-url "$LLAMACPP_URL" --embeddings-url "$LLAMACPP_URL"
for server in TRITON MLSERVER KSERVE; do
    url_var="${server}_URL"
    [ -n "${!url_var:-}" ] && run "$server" tests/integration/test_real_kserve.py --kserve-url "${!url_var}"
done
exit $status
