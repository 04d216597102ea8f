#!/usr/bin/env bash
# Stops servers started by start.sh (all, or those named), by the process group start.sh recorded,
# and removes their lines from urls.env.
#
#   stop.sh                 # every server with a pid file
#   stop.sh llamacpp        # only this one
set -euo pipefail

REAL="${TRIO_INFER_REAL:-/opt/trio-infer-real}"
declare -A VAR=([vllm]=VLLM_URL [vllm-embed]=VLLM_EMBED_URL [vllm-token-embed]=VLLM_TOKEN_EMBED_URL [llamacpp]=LLAMACPP_URL
    [triton]=TRITON_URL [mlserver]=MLSERVER_URL [kserve]=KSERVE_URL)

stop_one() {
    local name="$1" pidfile="$REAL/run/$1.pid" pid _
    if [[ -f "$pidfile" ]]; then
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            # start.sh ran each server under setsid, so its pid is its process group id.
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 1
            done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL -- "-$pid" 2>/dev/null || true
            fi
            echo "[stop] $name: stopped (pid $pid)"
        else
            echo "[stop] $name: not running"
        fi
        rm -f "$pidfile"
    fi
    if [[ -f "$REAL/urls.env" && -n "${VAR[$name]:-}" ]]; then
        sed -i "/^${VAR[$name]}=/d" "$REAL/urls.env"
    fi
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for f in "$REAL"/run/*.pid; do
        [[ -e "$f" ]] && targets+=("$(basename "$f" .pid)")
    done
fi
for t in "${targets[@]}"; do
    stop_one "$t"
done
