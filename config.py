"""Configuration: one class per environment, every value overridable by an environment variable.

The app factory takes one of these classes (or a mapping for tests). Nothing here touches the disk or
the network; paths are only computed.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, str(default))).expanduser().resolve()


class Config:
    """Defaults shared by every environment (the `small` model profile, SQLite, local artifacts)."""

    # --- storage -------------------------------------------------------------------------------
    INSTANCE_DIR = _env_path("INSTANCE_DIR", ROOT / "instance")
    DATA_DIR = _env_path("DATA_DIR", ROOT / "data")
    # Build outputs: models, versioned indexes. Read-only for the app; shared between workers.
    ARTIFACTS_DIR = _env_path("ARTIFACTS_DIR", ROOT / "artifacts")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'customs.db'}")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    # --- models --------------------------------------------------------------------------------
    # `small`: architectures built small from config and trained here (no hub weights offline).
    # `base`: the seeds' pretrained checkpoints, by name or local path (a deployment with weights).
    MODEL_PROFILE = _env("MODEL_PROFILE", "small")
    MODELS_DIR = _env_path("MODELS_DIR", ARTIFACTS_DIR / "models")
    # Where `flask models import-e5` writes the Hugging Face copy of multilingual-e5-small.
    E5_BASE_MODEL = _env("E5_BASE_MODEL", str(MODELS_DIR / "multilingual-e5-small"))
    CLIP_MODEL = _env("CLIP_MODEL", str(MODELS_DIR / "clip"))
    KOBART_BASE_MODEL = _env("KOBART_BASE_MODEL", "gogamza/kobart-base-v1")
    KOBART_MODEL = _env("KOBART_MODEL", str(MODELS_DIR / "kobart"))
    KOGPT2_BASE_MODEL = _env("KOGPT2_BASE_MODEL", "skt/kogpt2-base-v2")
    KOGPT2_MODEL = _env("KOGPT2_MODEL", str(MODELS_DIR / "kogpt2"))
    REVIEW_BASE_MODEL = _env("REVIEW_BASE_MODEL", "klue/roberta-base")
    REVIEW_MODEL = _env("REVIEW_MODEL", str(MODELS_DIR / "review"))
    # What `flask train review` trains: "linear" (logistic-regression heads on frozen e5 + char/morpheme
    # TF-IDF; measured best here) or "transformer" (sequence classifiers fine-tuned on the shared loop).
    REVIEW_ARCHITECTURE = _env("REVIEW_ARCHITECTURE", "linear")
    # Longest review `POST /api/v1/review` accepts (the highlight costs one pass per word).
    REVIEW_MAX_CHARS = _env_int("REVIEW_MAX_CHARS", 500)
    COREF_BASE_MODEL = _env("COREF_BASE_MODEL", "meta-llama/Llama-3.2-1B")
    COREF_MODEL = _env("COREF_MODEL", str(MODELS_DIR / "coref"))
    # What `flask train coref` trains: "features" (logistic regression over deictic/mention features and
    # e5 cosines; measured best here) or "causal_lm" (COREF_BASE_MODEL fine-tuned, options by likelihood).
    COREF_ARCHITECTURE = _env("COREF_ARCHITECTURE", "features")
    # Most dialogue turns `POST /api/v1/coref` accepts.
    COREF_MAX_TURNS = _env_int("COREF_MAX_TURNS", 40)
    # Threads torch may use per process (gunicorn workers each get this many).
    TORCH_THREADS = _env_int("TORCH_THREADS", 1)
    # Load the models and the index when the app starts (off in unit tests that need no models).
    LOAD_MODELS = _env("LOAD_MODELS", "1") == "1"

    # --- index ---------------------------------------------------------------------------------
    INDEX_DIR = _env_path("INDEX_DIR", ARTIFACTS_DIR / "index")
    # Above this many vectors the FAISS store switches from exact (flat) to approximate search.
    INDEX_APPROX_MIN_VECTORS = _env_int("INDEX_APPROX_MIN_VECTORS", 50_000)
    INDEX_APPROX_KIND = _env("INDEX_APPROX_KIND", "ivf")  # ivf | hnsw (bench: IVF recall 1.0 at 1M, HNSW 0.70)
    # How often (seconds) a worker checks whether a new index version became current.
    INDEX_RELOAD_SECONDS = _env_float("INDEX_RELOAD_SECONDS", 2.0)

    # --- retrieval and routing -----------------------------------------------------------------
    RETRIEVAL_TOP_K = _env_int("RETRIEVAL_TOP_K", 5)
    RETRIEVAL_MAX_TOP_K = _env_int("RETRIEVAL_MAX_TOP_K", 20)
    # Calibrated confidence at or above which the FAQ answer is returned (route "retrieval").
    ANSWER_THRESHOLD = _env_float("ANSWER_THRESHOLD", 0.5)
    # Between this and ANSWER_THRESHOLD the reply suggests the top FAQs ("혹시 이 질문을 찾으셨나요?").
    SUGGEST_THRESHOLD = _env_float("SUGGEST_THRESHOLD", 0.25)
    # A follow-up read with the previous turn must be this much more confident to be preferred.
    FOLLOWUP_MARGIN = _env_float("FOLLOWUP_MARGIN", 0.1)
    # Only messages this short (non-space characters) may borrow the previous turn's keywords.
    FOLLOWUP_MAX_CHARS = _env_int("FOLLOWUP_MAX_CHARS", 12)
    # Candidates each signal proposes before fusion, and the fusion method (learned | rrf).
    RETRIEVAL_DEPTH = _env_int("RETRIEVAL_DEPTH", 20)
    FUSION_METHOD = _env("FUSION_METHOD", "learned")
    # Hand-written tuning messages (in- and out-of-domain) the index build fits the calibrator on.
    TUNE_QUERIES = _env_path("TUNE_QUERIES", ROOT / "data" / "tune" / "tune_queries.jsonl")

    # --- HTTP ----------------------------------------------------------------------------------
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 64 * 1024)
    MAX_MESSAGE_CHARS = _env_int("MAX_MESSAGE_CHARS", 1000)
    # Admin-only endpoints need `Authorization: Bearer <ADMIN_TOKEN>`; empty disables them.
    ADMIN_TOKEN = _env("ADMIN_TOKEN", "")
    # Origins whose pages may embed the widget and call the API (comma-separated; "*" for any).
    CORS_ORIGINS = [o.strip() for o in _env("CORS_ORIGINS", "").split(",") if o.strip()]
    JSON_SORT_KEYS = False
    LOG_LEVEL = _env("LOG_LEVEL", "INFO")


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = _env("TEST_DATABASE_URL", "sqlite://")
    LOAD_MODELS = False


class ProductionConfig(Config):
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(name: str | None = None) -> type[Config]:
    """The config class named by `name` or by the APP_ENV variable (default: development)."""
    return CONFIGS[name or os.environ.get("APP_ENV", "development")]
