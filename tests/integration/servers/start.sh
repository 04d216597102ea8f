#!/usr/bin/env bash
# Starts the real servers installed by setup.sh, in the background, on 127.0.0.1 only, waits until
# each answers its health URL (bounded), and records its URL in $TRIO_INFER_REAL/urls.env:
#
#   start.sh                       # every installed server
#   start.sh vllm triton           # only these
#   . /opt/trio-infer-real/urls.env; echo "$VLLM_URL"
#
# Ports: vllm 8100, vllm-embed 8101, vllm-token-embed 8106 (only when named), llamacpp 8102, triton 8103 (gRPC 8113, metrics 8123),
# mlserver 8104 (gRPC 8114, metrics 8124), kserve 8105 (gRPC off).
# Logs: $TRIO_INFER_REAL/logs/NAME.log; pids: $TRIO_INFER_REAL/run/NAME.pid (stop.sh uses them).
set -euo pipefail

REAL="${TRIO_INFER_REAL:-/opt/trio-infer-real}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Seconds to wait for a server to become ready (vLLM compiles and warms up: ~1-2 min on 2 cores).
READY_TIMEOUT="${READY_TIMEOUT:-300}"
MODEL="$REAL/tiny-llama"
mkdir -p "$REAL/logs" "$REAL/run"
touch "$REAL/urls.env"

log() { printf '[start] %s\n' "$*"; }

running() { # name -> true if its recorded pid is alive
    local pidfile="$REAL/run/$1.pid"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

set_url() { # VAR url -> replaces VAR's line in urls.env
    local tmp
    tmp="$(mktemp)"
    grep -v "^$1=" "$REAL/urls.env" >"$tmp" || true
    echo "$1=$2" >>"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$REAL/urls.env"
}

wait_ready() { # name health-url -> polls until 200, the process dies, or READY_TIMEOUT passes
    local name="$1" url="$2" start=$SECONDS
    while ((SECONDS - start < READY_TIMEOUT)); do
        if ! running "$name"; then
            log "$name: exited while starting; last log lines:"
            tail -n 20 "$REAL/logs/$name.log" >&2
            return 1
        fi
        if curl -fsS -m 5 -o /dev/null "$url" 2>/dev/null; then
            log "$name: ready after $((SECONDS - start)) s ($url)"
            return 0
        fi
        sleep 2
    done
    log "$name: not ready after ${READY_TIMEOUT} s; see $REAL/logs/$name.log"
    return 1
}

launch() { # name var port health-path command... -> starts it unless already running
    local name="$1" var="$2" port="$3" health="$4"
    shift 4
    local url="http://127.0.0.1:$port"
    if running "$name"; then
        log "$name: already running (pid $(cat "$REAL/run/$name.pid"))"
    else
        log "$name: starting: $*"
        # setsid: its own process group, so stop.sh ends the server and every child it spawned.
        setsid "$@" >"$REAL/logs/$name.log" 2>&1 </dev/null &
        echo $! >"$REAL/run/$name.pid"
    fi
    wait_ready "$name" "$url$health" && set_url "$var" "$url"
}

vllm_env=(env HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 TRANSFORMERS_OFFLINE=1)
vllm_args=(-m vllm.entrypoints.openai.api_server --model "$MODEL" --served-model-name tiny-llama
    --host 127.0.0.1 --max-model-len 512 --dtype bfloat16)

start_vllm() {
    launch vllm VLLM_URL 8100 /health "${vllm_env[@]}" "$REAL/vllm/bin/python" "${vllm_args[@]}" \
        --port 8100
}

start_vllm_embed() {
    launch vllm-embed VLLM_EMBED_URL 8101 /health "${vllm_env[@]}" "$REAL/vllm/bin/python" \
        "${vllm_args[@]}" --port 8101 --runner pooling --convert embed
}

start_vllm_token_embed() {
    # Per-token embeddings: the pooling runner with its task switched to token_embed, served by
    # POST /pooling ({"task": "token_embed"}); /v1/embeddings needs the plain `embed` task.
    launch vllm-token-embed VLLM_TOKEN_EMBED_URL 8106 /health "${vllm_env[@]}" \
        "$REAL/vllm/bin/python" "${vllm_args[@]}" --port 8106 --runner pooling --convert embed \
        --pooler-config '{"task": "token_embed"}'
}

start_llamacpp() {
    launch llamacpp LLAMACPP_URL 8102 /v1/models "$REAL/llamacpp/bin/python" -m llama_cpp.server \
        --model "$REAL/tiny-llama.gguf" --model_alias tiny-llama --host 127.0.0.1 --port 8102 \
        --n_ctx 512 --embedding true
}

start_triton() {
    # The Python backend stub links libpython: point it at this interpreter's own, not the system's.
    local libdir
    libdir="$("$REAL/triton/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
    launch triton TRITON_URL 8103 /v2/health/ready env "LD_LIBRARY_PATH=$libdir:${LD_LIBRARY_PATH:-}" \
        "$REAL/triton/bin/python" "$HERE/serve_triton.py" --port 8103
}

start_mlserver() {
    local dir="$REAL/mlserver-models"
    mkdir -p "$dir"
    cat >"$dir/settings.json" <<EOF
{"host": "127.0.0.1", "http_port": 8104, "grpc_port": 8114, "metrics_port": 8124,
 "parallel_workers": 0, "debug": false}
EOF
    local m cls
    for m in add:Add identity_bytes:IdentityBytes identity_fp32:IdentityFp32; do
        cls="${m#*:}"
        m="${m%%:*}"
        mkdir -p "$dir/$m"
        printf '{"name": "%s", "implementation": "mlserver_models.%s"}\n' "$m" "$cls" \
            >"$dir/$m/model-settings.json"
    done
    launch mlserver MLSERVER_URL 8104 /v2/health/ready env "PYTHONPATH=$HERE" \
        "$REAL/mlserver/bin/mlserver" start "$dir"
}

start_kserve() {
    launch kserve KSERVE_URL 8105 /v2/health/ready "$REAL/kserve/bin/python" \
        "$HERE/serve_kserve.py" --port 8105
}

main() {
    local targets=("$@") t rc=0
    if [[ ${#targets[@]} -eq 0 ]]; then
        for t in vllm vllm-embed llamacpp triton mlserver kserve; do
            case "$t" in
                vllm-embed) [[ -x "$REAL/vllm/bin/python" ]] && targets+=("$t") ;;
                *) [[ -x "$REAL/$t/bin/python" ]] && targets+=("$t") ;;
            esac
        done
    fi
    for t in "${targets[@]}"; do
        case "$t" in
            vllm | vllm-embed | vllm-token-embed | llamacpp | triton | mlserver | kserve)
                "start_${t//-/_}" || rc=1
                ;;
            *)
                echo "unknown server: $t (vllm vllm-embed vllm-token-embed llamacpp triton mlserver kserve)" >&2
                exit 2
                ;;
        esac
    done
    log "urls ($REAL/urls.env):"
    cat "$REAL/urls.env"
    return $rc
}

main "$@"
