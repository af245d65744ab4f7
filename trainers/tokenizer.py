"""A subword tokenizer trained on the bundled Korean text, for models built small from config.

The `small` model profile has no pretrained KoBART/KoGPT2/RoBERTa checkpoints, so it needs its own
vocabulary. A SentencePiece-style Unigram model (Metaspace pre-tokeniser, NFKC) fits Korean well
without any language-specific rules; it is wrapped as a `PreTrainedTokenizerFast` so models load it
with `AutoTokenizer.from_pretrained` exactly like a downloaded one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

DEFAULT_VOCAB_SIZE = 8000


def train_tokenizer(
    texts: Iterable[str],
    special_tokens: dict[str, str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    extra_special_tokens: Iterable[str] = (),
) -> PreTrainedTokenizerFast:
    """Train a Unigram tokenizer on `texts`.

    special_tokens maps transformers' roles to strings, e.g. {"bos_token": "<s>", "eos_token": "</s>",
    "pad_token": "<pad>", "unk_token": "<unk>"}; extra_special_tokens are added as
    additional_special_tokens (e.g. the chit-chat format's `<usr>`, `<sys>`).
    """
    extras = list(extra_special_tokens)
    all_special = list(dict.fromkeys([*special_tokens.values(), *extras]))
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=all_special,
        unk_token=special_tokens.get("unk_token"),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special_tokens)
    if extras:
        fast.add_special_tokens({"additional_special_tokens": extras})
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(path))
