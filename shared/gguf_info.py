"""GGUF metadata and the memory a model needs to run (constants from the ``gguf`` package).

The agent uses this to refuse a model before loading it; the controller uses
it to place models on devices it has not measured yet. The estimate is
weights + KV cache + compute buffer + a fixed runtime overhead; it is
calibrated against peak RSS measured with llama-cpp-python (see
``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

from shared.profiles import KV_BYTES_PER_ELEMENT, DeviceProfile

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_STRING_BYTES = 16 * 1_048_576
MAX_NAME_CHARS = 256
MAX_HYPERPARAMETER = 2**31 - 1
"""Largest value a count or size in the metadata may have (context length, layers, heads...)."""
_SCALAR_FORMATS: dict[int, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
MB = 1_000_000

RUNTIME_OVERHEAD_BYTES = 48 * MB
"""Python, llama.cpp's code and allocator slack, measured on x86-64 and aarch64."""

VOCAB_ENTRY_BYTES = 160
"""llama.cpp's in-memory tokenizer per vocabulary entry (strings, maps, scores)."""

UBATCH_TOKENS = 512
"""llama.cpp's default micro-batch; the compute buffer scales with it."""

DEFAULT_MOST_PARALLEL = 4
"""Sequences a class decodes together when its profile does not say: as many as fit, up to this."""


class GgufError(ValueError):
    """A file that is not a readable GGUF model, with the reason."""


@dataclass(frozen=True)
class GgufInfo:
    """What edgefleet needs to know about a GGUF model."""

    path: Path
    file_size: int
    architecture: str
    name: str | None
    parameters: int
    quantization: str
    context_length: int
    layers: int
    heads: int
    kv_heads: int
    embedding: int
    vocab_size: int
    key_length: int
    value_length: int
    sliding_window: int | None
    chat_template: str | None
    tensor_bytes: int

    @property
    def instruction_tuned(self) -> bool:
        """A model without a chat template is treated as a base model."""
        return bool(self.chat_template)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to serve a model at one context size and KV-cache type."""

    weights: int
    kv_cache: int
    compute: int
    overhead: int

    @property
    def total(self) -> int:
        """The sum of the parts."""
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def total_mb(self) -> float:
        """The sum in MB (10^6 bytes)."""
        return self.total / MB


def read_gguf_info(path: str | os.PathLike[str]) -> GgufInfo:
    """Read metadata without loading weights; raise :class:`GgufError` for bad files.

    The header is streamed and arrays (the vocabulary) are skipped, not
    materialised: ``gguf.GGUFReader`` builds every array, which for a 262k-token
    vocabulary takes 9 s and 750 MB, more than a small Pi has.
    """
    path = Path(path)
    try:
        file_size = path.stat().st_size
        with path.open("rb") as handle:
            header = _read_header(_Stream(handle, path, file_size))
    except OSError as exc:
        raise GgufError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _info_from_header(path, file_size, header)


@dataclass(frozen=True)
class _Array:
    """An array value, kept only as its length."""

    length: int


@dataclass(frozen=True)
class _Header:
    fields: dict[str, object]
    tensor_bytes: int
    tensor_elements: int
    data_end: int


class _Stream:
    """Little-endian reads and skips, each checked against the file's size.

    Every length the file claims is checked before it is used, so a crafted
    header gives a :class:`GgufError`, never a huge seek, loop or allocation.
    """

    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle = handle
        self.path = path
        self.size = size

    @property
    def remaining(self) -> int:
        """Bytes left after the current position."""
        return self.size - self.handle.tell()

    def count(self, what: str, smallest_item_bytes: int) -> int:
        """A claimed number of items, refused if they could not fit in the rest of the file."""
        claimed = int(self.scalar("<Q"))
        if claimed * smallest_item_bytes > self.remaining:
            raise GgufError(
                f"{self.path}: corrupt GGUF: {claimed} {what} cannot fit in "
                f"the {self.remaining} bytes left"
            )
        return claimed

    def read(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise GgufError(f"{self.path}: truncated GGUF header at byte {self.handle.tell()}")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.read(self._length()).decode("utf-8", errors="replace")

    def skip(self, size: int) -> None:
        if size > self.remaining:
            raise GgufError(f"{self.path}: truncated GGUF header at byte {self.handle.tell()}")
        self.handle.seek(size, os.SEEK_CUR)

    def _length(self) -> int:
        length = int(self.scalar("<Q"))
        if length > MAX_STRING_BYTES:
            raise GgufError(f"{self.path}: corrupt GGUF: a string of {length} bytes")
        return length

    def value(self, value_type: int) -> object:
        if value_type == GGUFValueType.STRING:
            return self.string()
        if value_type == GGUFValueType.ARRAY:
            return self._skip_array()
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is None:
            raise GgufError(f"{self.path}: corrupt GGUF: unknown value type {value_type}")
        return self.scalar(fmt)

    def _skip_array(self) -> _Array:
        item_type = int(self.scalar("<I"))
        if item_type == GGUFValueType.STRING:
            length = self.count("array strings", 8)
            for _ in range(length):
                self.skip(self._length())
        elif item_type in _SCALAR_FORMATS:
            item_bytes = struct.calcsize(_SCALAR_FORMATS[item_type])
            length = self.count("array items", item_bytes)
            self.skip(length * item_bytes)
        else:
            raise GgufError(f"{self.path}: corrupt GGUF: array of unsupported type {item_type}")
        return _Array(length)


def _read_header(stream: _Stream) -> _Header:
    if stream.handle.read(4) != GGUF_MAGIC:  # what it holds instead is not repeated
        raise GgufError(f"{stream.path}: not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    version = stream.scalar("<I")
    if version not in (2, 3):
        raise GgufError(f"{stream.path}: unsupported GGUF version {version}")
    n_tensors = int(stream.scalar("<Q"))
    n_fields = stream.count("metadata fields", 8 + 8 + 4 + 1)
    if n_tensors * (8 + 4 + 4 + 8) > stream.remaining:
        raise GgufError(f"{stream.path}: corrupt GGUF: {n_tensors} tensors cannot fit")
    fields: dict[str, object] = {}
    for _ in range(n_fields):
        key = stream.string()
        fields[key] = stream.value(stream.scalar("<I"))
    tensors = [_read_tensor_info(stream) for _ in range(n_tensors)]
    alignment = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    alignment = alignment if isinstance(alignment, int) and alignment > 0 else DEFAULT_ALIGNMENT
    data_start = -(-stream.handle.tell() // alignment) * alignment
    return _Header(
        fields=fields,
        tensor_bytes=sum(n_bytes for _, n_bytes, _ in tensors),
        tensor_elements=sum(elements for _, _, elements in tensors),
        data_end=data_start + max((offset + n_bytes for offset, n_bytes, _ in tensors), default=0),
    )


def _read_tensor_info(stream: _Stream) -> tuple[int, int, int]:
    """(offset, bytes, elements) of one tensor."""
    stream.string()
    n_dims = stream.scalar("<I")
    if n_dims > 8:
        raise GgufError(f"{stream.path}: corrupt GGUF: tensor with {n_dims} dimensions")
    elements = math.prod(int(stream.scalar("<Q")) for _ in range(n_dims))
    type_id, offset = int(stream.scalar("<I")), int(stream.scalar("<Q"))
    try:
        block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):
        raise GgufError(f"{stream.path}: unknown tensor type {type_id}") from None
    return offset, elements // block * block_bytes, elements


def _info_from_header(path: Path, file_size: int, header: _Header) -> GgufInfo:
    fields = header.fields
    arch = fields.get("general.architecture")
    if not isinstance(arch, str):
        raise GgufError(f"{path}: missing general.architecture")
    if header.data_end > file_size:
        raise GgufError(
            f"{path}: truncated: tensor data ends at byte {header.data_end}, file has {file_size}"
        )
    if len(arch) > MAX_NAME_CHARS:
        raise GgufError(f"{path}: corrupt GGUF: general.architecture is {len(arch)} characters")

    def number(key: str, default: object = 0) -> int:
        return _hyperparameter(path, key, fields.get(key, default))

    heads = number(f"{arch}.attention.head_count")
    embedding = number(f"{arch}.embedding_length")
    head_dim = embedding // heads if heads else 0
    tokens = fields.get("tokenizer.ggml.tokens")
    window = fields.get(f"{arch}.attention.sliding_window")
    name = _as_str(fields.get("general.name"))
    return GgufInfo(
        path=path,
        file_size=file_size,
        architecture=arch,
        name=name[:MAX_NAME_CHARS] if name else None,
        parameters=header.tensor_elements,
        quantization=_quantization_name(fields.get("general.file_type")),
        context_length=number(f"{arch}.context_length"),
        layers=number(f"{arch}.block_count"),
        heads=heads,
        kv_heads=number(f"{arch}.attention.head_count_kv", heads),
        embedding=embedding,
        vocab_size=number(f"{arch}.vocab_size", tokens.length if isinstance(tokens, _Array) else 0),
        key_length=number(f"{arch}.attention.key_length", head_dim),
        value_length=number(f"{arch}.attention.value_length", head_dim),
        sliding_window=None if window is None else number(f"{arch}.attention.sliding_window"),
        chat_template=_as_str(fields.get("tokenizer.chat_template")),
        tensor_bytes=header.tensor_bytes,
    )


def estimate_memory(
    info: GgufInfo, *, n_ctx: int, kv_cache_type: str = "f16", parallel: int = 1
) -> MemoryEstimate:
    """Bytes to run ``info`` with ``parallel`` sequences of ``n_ctx`` tokens of context each.

    - weights: the tensor data, all of which is read for every token (mmap'd);
    - KV cache: K and V for every layer, ``n_ctx`` cells of ``kv_heads`` heads per sequence;
    - compute buffer: the activations of one micro-batch, the logits rows
      llama.cpp keeps, and the in-memory tokenizer (large for 262k vocabularies);
    - a fixed overhead for the runtime itself.
    """
    if n_ctx <= 0 or parallel <= 0:
        raise ValueError("n_ctx and parallel must be positive")
    try:
        kv_bytes = KV_BYTES_PER_ELEMENT[kv_cache_type]
    except KeyError:
        raise ValueError(f"unknown KV-cache type {kv_cache_type!r}") from None
    kv_width = info.kv_heads * (info.key_length + info.value_length)
    kv_cache = int(info.layers * n_ctx * parallel * kv_width * kv_bytes)
    ubatch = min(UBATCH_TOKENS, n_ctx)
    activations = 4 * ubatch * (4 * info.embedding + info.heads * min(n_ctx, UBATCH_TOKENS))
    logits = 4 * info.vocab_size * max(2, parallel)  # one logits row per decoding sequence
    tokenizer = VOCAB_ENTRY_BYTES * info.vocab_size
    return MemoryEstimate(
        weights=info.tensor_bytes,
        kv_cache=kv_cache,
        compute=activations + logits + tokenizer,
        overhead=RUNTIME_OVERHEAD_BYTES,
    )


def parallel_for(info: GgufInfo, profile: DeviceProfile, *, n_ctx: int | None = None) -> int:
    """Sequences ``info`` decodes together on a class: the profile's setting, else as many as fit.

    The default is the most (up to :data:`DEFAULT_MOST_PARALLEL`) whose KV
    cells, each sequence with the class's full context, fit the memory budget
    beside the weights; at least one.
    """
    if profile.parallel is not None:
        return profile.parallel
    ctx = n_ctx or profile.n_ctx
    for n in range(DEFAULT_MOST_PARALLEL, 1, -1):
        need = estimate_memory(info, n_ctx=ctx, kv_cache_type=profile.kv_cache_type, parallel=n)
        if need.total_mb <= profile.memory_budget_mb:
            return n
    return 1


def _quantization_name(file_type: object) -> str:
    if not isinstance(file_type, int):
        return "unknown"
    try:
        return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type-{file_type}"


def _hyperparameter(path: Path, key: str, raw: object) -> int:
    """A count or size from the metadata: a whole number from 0 to MAX_HYPERPARAMETER."""
    if raw is None or isinstance(raw, str | _Array):
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise GgufError(f"{path}: corrupt GGUF: {key} is not a number")
    if not 0 <= raw <= MAX_HYPERPARAMETER or raw != int(raw):
        raise GgufError(f"{path}: corrupt GGUF: {key} is out of range")
    return int(raw)


def _as_str(raw: object) -> str | None:
    return raw if isinstance(raw, str) and raw else None
