"""Where the tokens come from: a pre-tokenized Levanter cache, raw text URLs, or the bundled corpus."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from speedrun_operator import accelerators
from speedrun_operator.api.base import ApiModel, ShortText, Url
from speedrun_operator.api.cel import literal, or_default, rule, validations
from speedrun_operator.api.urls import ReadableUrl, check_url

MARIN_FINEWEB_EDU_10B = "hf://datasets/marin-community/fineweb-edu-pretokenized-10B"
MARIN_TOKENIZER = "marin-community/marin-tokenizer"
BUNDLED = "bundled"
PALOMA_C4_EN = "paloma/c4_en"
C4_EN_BPB = f"eval/{PALOMA_C4_EN}/bpb"
"""Marin's headline metric in run_info: bits per byte on Paloma's C4 (en) split."""


class DatasetSpec(ApiModel):
    """Training and validation data. With nothing set: Marin's pre-tokenized FineWeb-Edu 10B cache."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule(
                "(has(self.cacheUrl) ? 1 : 0) + (has(self.trainUrls) ? 1 : 0) + "
                "((has(self.bundled) && self.bundled) ? 1 : 0) <= 1",
                "dataset: set at most one of cacheUrl, trainUrls or bundled",
            ),
            rule(
                f"!{or_default('self.bundled', False)} || !has(self.tokenizer) || "
                f"self.tokenizer == {literal(BUNDLED)}",
                "bundled: true uses the bundled tokenizer; remove tokenizer or set it to 'bundled'",
                field=".tokenizer",
            ),
            rule(
                "has(self.vocabSize) || (has(self.tokenizer) ? self.tokenizer : "
                f"({or_default('self.bundled', False)} ? {literal(BUNDLED)} : {literal(MARIN_TOKENIZER)})) "
                f"in {literal(sorted(accelerators.tables().tokenizer_vocab))}",
                "the vocabulary size of this tokenizer is not known here; set dataset.vocabSize",
                field=".vocabSize",
            ),
        )
    }

    cache_url: ReadableUrl | None = Field(
        default=None,
        description="A pre-tokenized Levanter cache. "
        f"Default: {MARIN_FINEWEB_EDU_10B} (Marin's FineWeb-Edu 10B).",
    )
    train_urls: list[ReadableUrl] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Raw jsonl/text files (globs allowed) to tokenize.",
    )
    validation_urls: dict[ShortText, Annotated[list[ReadableUrl], Field(max_length=16)]] | None = Field(
        default=None,
        max_length=16,
        description=f"Validation sets by name. Name one {PALOMA_C4_EN!r} to get the leaderboard metric "
        f"eval/{PALOMA_C4_EN}/bpb. Default: the operator's default list (Paloma's c4_en, Marin's), or the "
        "bundled validation text with bundled: true; {} evaluates on nothing.",
    )
    bundled: bool = Field(
        default=False, description="Use the small corpus and tokenizer shipped in the package (no download)."
    )
    tokenizer: Url | None = Field(
        default=None,
        description=f"Tokenizer: a hub name, URL or local directory. Default: {MARIN_TOKENIZER}, "
        "or the bundled one with bundled: true.",
    )
    vocab_size: int | None = Field(
        default=None,
        ge=2,
        le=4_194_304,
        description="Tokenizer vocabulary size, for tokenizers not in the table.",
    )
    text_key: ShortText = Field(default="text", description="JSON field holding the text in jsonl files.")

    @field_validator("cache_url")
    @classmethod
    def _readable_cache(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, writable=False)

    @field_validator("train_urls")
    @classmethod
    def _readable_train(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_url(url, writable=False) for url in value]

    @field_validator("validation_urls")
    @classmethod
    def _readable_validation(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        return {name: [check_url(url, writable=False) for url in urls] for name, urls in value.items()}

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        sources = [name for name, on in self._sources().items() if on]
        if len(sources) > 1:
            raise ValueError(f"set at most one of cacheUrl, trainUrls or bundled (got {', '.join(sources)})")
        if self.bundled and self.tokenizer not in (None, BUNDLED):
            raise ValueError(
                "bundled: true uses the bundled tokenizer; remove tokenizer or set it to 'bundled'"
            )
        if self.resolved_tokenizer not in accelerators.tables().tokenizer_vocab and self.vocab_size is None:
            raise ValueError(
                f"the vocabulary size of tokenizer {self.resolved_tokenizer!r} is not known here; "
                "set dataset.vocabSize"
            )
        return self

    def _sources(self) -> dict[str, bool]:
        return {
            "cacheUrl": self.cache_url is not None,
            "trainUrls": self.train_urls is not None,
            "bundled": self.bundled,
        }

    @property
    def resolved_tokenizer(self) -> str:
        if self.tokenizer is not None:
            return self.tokenizer
        return BUNDLED if self.bundled else MARIN_TOKENIZER

    @property
    def resolved_cache_url(self) -> str | None:
        if self.bundled or self.train_urls is not None:
            return self.cache_url
        return self.cache_url or MARIN_FINEWEB_EDU_10B

    @property
    def resolved_vocab_size(self) -> int:
        if self.vocab_size is not None:
            return self.vocab_size
        return accelerators.tables().tokenizer_vocab[self.resolved_tokenizer]

    @property
    def uses_default_validation(self) -> bool:
        """True when the job names no validation sets and is not bundled: it gets the default list."""
        return not self.bundled and self.validation_urls is None

    def describe(self) -> str:
        """What Marin records as ``tokenized_dataset``."""
        if self.bundled:
            return "bundled:speedrun-operator-tiny-corpus"
        if self.train_urls is not None:
            return ",".join(self.train_urls)
        return self.resolved_cache_url or ""
