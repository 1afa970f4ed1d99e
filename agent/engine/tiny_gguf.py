"""Write small GGUF models that llama.cpp really loads, with the ``gguf`` package.

The engine's smoke check generates with one (a box needs no model file to learn
whether its llama.cpp runs), and the tests use them for speed.

The weights are random (seeded), the architecture is llama and the tokenizer
is a small SentencePiece-style vocabulary: the control tokens, the 256 byte
tokens (so any text can be encoded) and a few hundred common pieces. The
rows of the output matrix for the end tokens are zero, so greedy generation
never stops early and a test can count on getting ``max_tokens`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType
from gguf.quants import quantize

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONTROL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
_WORDS = (
    "the of and to in is it that for you was with on as have be at this are not but"
    " what all were when we there can an your which their said if do will each about"
    " how up out them then she many some so these would other into has more her two"
    " like him see time could no make than first been its who now people my made over"
    " did down only way find use may water long little very after words called just"
    " where most know answer question critique refine good bad correct wrong number"
).split()


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of a generated model; the defaults load and generate in milliseconds."""

    n_embd: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    n_ff: int = 128
    context_length: int = 2048
    seed: int = 0
    quantization: str = "Q4_0"
    chat_template: str | None = CHATML_TEMPLATE
    name: str = "tiny-llama"


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = list(CONTROL_TOKENS)
    types = [TokenType.UNKNOWN] + [TokenType.CONTROL] * (len(CONTROL_TOKENS) - 1)
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = sorted({f"\u2581{w}" for w in _WORDS} | set("abcdefghijklmnopqrstuvwxyz") | {"\u2581"})
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (len(CONTROL_TOKENS) + 256) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_tiny_gguf(path: Path, spec: TinyModelSpec = TinyModelSpec()) -> Path:
    """Write a random-weight llama model to ``path`` and return it."""
    rng = np.random.default_rng(spec.seed)
    tokens, scores, types = _vocabulary()
    n_vocab = len(tokens)
    qtype = GGMLQuantizationType[spec.quantization]
    writer = GGUFWriter(str(path), "llama")
    writer.add_name(spec.name)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_heads)
    writer.add_head_count_kv(spec.n_kv_heads)
    writer.add_rope_dimension_count(spec.n_embd // spec.n_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(_file_type(qtype))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if spec.chat_template:
        writer.add_chat_template(spec.chat_template)

    def weight(name: str, rows: int, cols: int, *, quantized: bool = True) -> None:
        data = rng.normal(0.0, 0.08, size=(rows, cols)).astype(np.float32)
        if name == "output.weight":
            data[[2, 4], :] = 0.0  # never emit </s> or <|im_end|>: fixed-length answers
        if quantized and qtype not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            writer.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(
                name, data.astype(np.float16 if qtype == GGMLQuantizationType.F16 else np.float32)
            )

    def norm(name: str) -> None:
        writer.add_tensor(name, np.ones(spec.n_embd, dtype=np.float32))

    e, kv = spec.n_embd, spec.n_embd // spec.n_heads * spec.n_kv_heads
    weight("token_embd.weight", n_vocab, e)
    for layer in range(spec.n_layers):
        prefix = f"blk.{layer}"
        norm(f"{prefix}.attn_norm.weight")
        weight(f"{prefix}.attn_q.weight", e, e)
        weight(f"{prefix}.attn_k.weight", kv, e)
        weight(f"{prefix}.attn_v.weight", kv, e)
        weight(f"{prefix}.attn_output.weight", e, e)
        norm(f"{prefix}.ffn_norm.weight")
        weight(f"{prefix}.ffn_gate.weight", spec.n_ff, e)
        weight(f"{prefix}.ffn_up.weight", spec.n_ff, e)
        weight(f"{prefix}.ffn_down.weight", e, spec.n_ff)
    norm("output_norm.weight")
    weight("output.weight", n_vocab, e)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _file_type(qtype: GGMLQuantizationType) -> LlamaFileType:
    names = {"F32": "ALL_F32", "F16": "MOSTLY_F16"}
    return LlamaFileType[names.get(qtype.name, f"MOSTLY_{qtype.name}")]
