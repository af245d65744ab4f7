"""Text-CLIP: a dual encoder (query tower, answer tower) over a BERT backbone, e5 style.

Both towers mean-pool the last hidden states over real tokens and L2-normalise, so a dot product is a
cosine; texts get e5's `query: ` / `passage: ` prefixes. A learnable logit scale (1 / temperature,
CLIP's parameterisation) sharpens the in-batch softmax during training.

Saved layout (sentence-transformers style: whatever training wrote is exactly what loads back):

    <dir>/text_clip.json     settings (shared towers?, prefixes, max lengths, logit scale)
    <dir>/query_encoder/     BertModel + tokenizer (save_pretrained); also the answer tower when shared
    <dir>/answer_encoder/    only when the towers do not share weights

The model sits in sub-directories because the training loop owns `<dir>/config.json` (the run's
TrainConfig). `TextClip.from_pretrained` also accepts a plain Hugging Face encoder directory (the
imported multilingual-e5-small): that is zero-shot e5, the frozen feature extractor others use.
"""
from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

SETTINGS_FILE = "text_clip.json"
QUERY_DIR = "query_encoder"
ANSWER_DIR = "answer_encoder"
# transformers builds models inside global patches (accelerate's init_empty_weights swaps
# nn.Module.register_parameter for the whole process), so two threads building models at once can
# leave one with meta tensors: every model construction here holds this lock (others may share it).
MODEL_LOAD_LOCK = threading.RLock()
# Below this batch the per-call overhead dominates; above, padding to the longest text wastes work.
ENCODE_BATCH_SIZE = 32


def load_tokenizer(path: str | Path):
    """The backbone's fast tokenizer. `fix_mistral_regex=False` only silences a spurious warning that
    transformers 4.57.3+ prints for every local directory (the check is meant for Mistral models)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), fix_mistral_regex=False)


@dataclass
class TextClipSettings:
    shared: bool = True
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    query_max_length: int = 64
    passage_max_length: int = 160
    temperature: float = 0.05  # initial value; the learnt one is saved as logit_scale
    logit_scale: float | None = None
    max_logit_scale: float = 100.0  # CLIP's clamp: keeps the softmax from collapsing to one-hot

    def initial_logit_scale(self) -> float:
        return self.logit_scale if self.logit_scale is not None else math.log(1.0 / self.temperature)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors that are not padding (e5's pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class TextClip(nn.Module):
    """Query and answer towers; `forward(queries, passages)` returns both sides' unit vectors."""

    def __init__(self, query_encoder: nn.Module, tokenizer, answer_encoder: nn.Module | None = None,
                 settings: TextClipSettings | None = None):
        super().__init__()
        self.settings = settings or TextClipSettings(shared=answer_encoder is None)
        self.settings.shared = answer_encoder is None
        self.query_encoder = query_encoder
        self.answer_encoder = answer_encoder
        self.tokenizer = tokenizer
        self.logit_scale = nn.Parameter(torch.tensor(self.settings.initial_logit_scale()))

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_config(cls, bert_config, tokenizer, shared: bool = True, **settings) -> "TextClip":
        """A randomly initialised model (tests, small profiles): any BertConfig + any tokenizer."""
        from transformers import BertModel

        with MODEL_LOAD_LOCK:
            query = BertModel(bert_config, add_pooling_layer=False)
            answer = None if shared else BertModel(bert_config, add_pooling_layer=False)
        return cls(query, tokenizer, answer, TextClipSettings(shared=shared, **settings))

    @classmethod
    def from_pretrained(cls, path: str | Path, shared: bool | None = None, query_only: bool = False,
                        **settings) -> "TextClip":
        """Load a saved TextClip, or start one from a plain encoder directory (zero-shot e5).

        `shared=False` on a plain encoder (or a shared TextClip) starts the answer tower as a copy;
        `query_only=True` skips the answer tower (query-time search needs only the query side).
        """
        from transformers import AutoModel

        path = Path(path)
        settings_file = path / SETTINGS_FILE
        if settings_file.exists():
            saved = TextClipSettings(**json.loads(settings_file.read_text(encoding="utf-8")))
            encoder_dir = path / QUERY_DIR
        elif (path / "config.json").exists():
            saved, encoder_dir = TextClipSettings(), path
        else:
            raise FileNotFoundError(f"{path} is neither a TextClip nor a Hugging Face encoder directory")
        for key, value in settings.items():
            setattr(saved, key, value)
        with MODEL_LOAD_LOCK:
            query = AutoModel.from_pretrained(str(encoder_dir), add_pooling_layer=False)
        answer = None
        if query_only:
            return cls(query, load_tokenizer(encoder_dir), None, saved)
        if not saved.shared and (path / ANSWER_DIR).exists():
            with MODEL_LOAD_LOCK:
                answer = AutoModel.from_pretrained(str(path / ANSWER_DIR), add_pooling_layer=False)
        if shared is False and answer is None:
            answer = copy.deepcopy(query)
        elif shared is True:
            answer = None
        return cls(query, load_tokenizer(encoder_dir), answer, saved)

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.settings.logit_scale = float(self.logit_scale.detach())
        self.query_encoder.save_pretrained(path / QUERY_DIR)
        self.tokenizer.save_pretrained(path / QUERY_DIR)
        if self.answer_encoder is not None:
            self.answer_encoder.save_pretrained(path / ANSWER_DIR)
        (path / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2), encoding="utf-8")

    # --- encoding -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    @property
    def answer_tower(self) -> nn.Module:
        return self.answer_encoder if self.answer_encoder is not None else self.query_encoder

    @property
    def dim(self) -> int:
        return self.query_encoder.config.hidden_size

    def tokenize(self, texts: list[str], is_query: bool) -> dict[str, torch.Tensor]:
        s = self.settings
        prefix = s.query_prefix if is_query else s.passage_prefix
        max_length = s.query_max_length if is_query else s.passage_max_length
        return dict(self.tokenizer([prefix + t for t in texts], padding=True, truncation=True,
                                   max_length=max_length, return_tensors="pt"))

    def embed(self, batch: dict[str, torch.Tensor], is_query: bool) -> torch.Tensor:
        """Unit vectors for a tokenised batch, through the query or the answer tower."""
        encoder = self.query_encoder if is_query else self.answer_tower
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)

    def forward(self, queries: dict[str, torch.Tensor], passages: dict[str, torch.Tensor] | torch.Tensor):
        """(query vectors, passage vectors, logit scale): what the contrastive loss takes.

        `passages` may be precomputed unit vectors (a locked answer tower needs no forward pass)."""
        scale = self.logit_scale.clamp(max=math.log(self.settings.max_logit_scale)).exp()
        p = passages if isinstance(passages, torch.Tensor) else self.embed(passages, False)
        return self.embed(queries, True), p, scale

    @torch.no_grad()
    def encode(self, texts: Iterable[str], is_query: bool, batch_size: int = ENCODE_BATCH_SIZE,
               progress: bool = False) -> torch.Tensor:
        """(n, dim) float32 unit vectors on the CPU; texts are length-sorted so batches pad little."""
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.dim)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding " + ("queries" if is_query else "passages"), unit="batch")
        was_training = self.training
        self.eval()
        for start in starts:
            idx = order[start:start + batch_size]
            batch = {k: v.to(self.device) for k, v in self.tokenize([texts[i] for i in idx], is_query).items()}
            out[idx] = self.embed(batch, is_query).float().cpu()
        self.train(was_training)
        return out

    def encode_queries(self, texts: Iterable[str], **kwargs) -> torch.Tensor:
        return self.encode(texts, True, **kwargs)

    def encode_passages(self, texts: Iterable[str], **kwargs) -> torch.Tensor:
        return self.encode(texts, False, **kwargs)

    def freeze_word_embeddings(self) -> None:
        """Keep the 250k x 384 vocabulary matrix fixed (80 % of the weights; rare tokens would drift)."""
        for encoder in filter(None, (self.query_encoder, self.answer_encoder)):
            encoder.get_input_embeddings().weight.requires_grad_(False)
