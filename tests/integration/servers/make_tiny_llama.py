"""Build the tiny random Llama the real-server integration suite serves (no download possible).

hidden 128, 2 layers, vocab 1024, random weights, a byte-level BPE tokenizer trained here with
`tokenizers` on local text (Python's own stdlib sources plus multi-byte words), a chat template;
saved with `save_pretrained`, and optionally converted to GGUF for llama.cpp with the converter
shipped in the llama-cpp-python sdist.

The tokenizer is byte-level on purpose: its vocabulary holds single bytes >= 0x80 and merges that
stop inside a multi-byte UTF-8 character, so random generation often emits a token that ends
mid-character. Servers then send an empty text delta for it, which is the behaviour the client's
token counting must survive (issue 11, defect 2).

Runs in the vLLM venv (torch, transformers, tokenizers); those packages are not in the project's
own environment, hence the `importlib` imports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VOCAB_SIZE = 1024
SPECIALS = ["<s>", "</s>", "<unk>"]

# A Jinja chat template in the common "role header" style; vLLM and llama.cpp both render it.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Multi-byte text so BPE learns merges that cover part of a character: 2-, 3- and 4-byte UTF-8.
MULTIBYTE_LINES = [
    "café naïve façade résumé Straße Größe über Ärger Öl Übung déjà vu",
    "Ελληνικά γλώσσα καλημέρα κόσμε λόγος ψυχή",
    "русский язык привет мир спасибо пожалуйста",
    "日本語のテキスト こんにちは 世界 東京 学校 先生",
    "中文 你好 世界 学习 语言 模型 推理 服务器",
    "한국어 안녕하세요 세계 서버 모델",
    "emoji 🙂 🚀 🎉 ✓ → € £ ¥ ° ± µ ½",
    "עברית שלום עולם العربية مرحبا بالعالم हिन्दी नमस्ते",
]


def corpus(limit_bytes: int) -> Iterator[str]:
    """Yield training text: stdlib sources, interleaved with the multi-byte lines."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        total += len(text)
        yield text
        # Repeated often enough that their byte pairs compete with ASCII pairs for merges.
        yield "\n".join(MULTIBYTE_LINES * 20)
        if total >= limit_bytes:
            return


def build_tokenizer(out: Path) -> Any:
    tokenizers = importlib.import_module("tokenizers")
    models = importlib.import_module("tokenizers.models")
    pre_tokenizers = importlib.import_module("tokenizers.pre_tokenizers")
    decoders = importlib.import_module("tokenizers.decoders")
    trainers = importlib.import_module("tokenizers.trainers")
    processors = importlib.import_module("tokenizers.processors")

    tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
    # GPT-2's byte-level pre-tokenizer (regex split): the GGUF converter maps it to "gpt-2".
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(3_000_000), trainer=trainer)

    transformers = importlib.import_module("transformers")
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def build_model(out: Path, tokenizer: Any) -> None:
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    model = transformers.LlamaForCausalLM(config)
    # Larger-than-default logits spread so sampling is not uniform noise but still random.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.2)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    gen = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")


def partial_char_tokens(tokenizer: Any) -> int:
    """How many vocabulary entries do not decode to whole characters (for the log)."""
    bad = 0
    for i in range(len(tokenizer)):
        if "\ufffd" in tokenizer.decode([i]):
            bad += 1
    return bad


def convert_gguf(model_dir: Path, gguf: Path, llama_cpp_src: Path) -> None:
    """Run llama.cpp's convert_hf_to_gguf.py from the llama-cpp-python sdist."""
    root = llama_cpp_src / "vendor" / "llama.cpp"
    script = root / "convert_hf_to_gguf.py"
    sys.path[:0] = [str(root), str(root / "gguf-py")]
    # The converter identifies BPE pre-tokenizers by hashing a sample's token ids and refuses an
    # unknown hash; ours is GPT-2's byte-level split, so say so instead of registering a hash.
    base = importlib.import_module("conversion.base")
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    argv = sys.argv
    sys.argv = [str(script), str(model_dir), "--outfile", str(gguf), "--outtype", "f32"]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="save_pretrained directory")
    parser.add_argument("--gguf", type=Path, help="also write this GGUF file")
    parser.add_argument("--llama-cpp-src", type=Path, help="unpacked llama-cpp-python sdist")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    out: Path = args.out
    if not (out / "config.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        tokenizer = build_tokenizer(out)
        build_model(out, tokenizer)
        print(
            f"saved {out}: vocab {len(tokenizer)}, partial-char tokens {partial_char_tokens(tokenizer)}"
        )
    else:
        print(f"{out} exists")
    if args.gguf is not None and not args.gguf.exists():
        if args.llama_cpp_src is None:
            parser.error("--gguf needs --llama-cpp-src")
        convert_gguf(out, args.gguf, args.llama_cpp_src)
        print(f"saved {args.gguf}")


if __name__ == "__main__":
    main()
