"""The Levanter data config for a SpeedrunJob's dataset: the bundled corpus, raw text URLs, or a token cache.

Every source becomes one component of an ``LMMixtureDatasetConfig`` (as Marin builds its data): the training
data under ``TRAIN_COMPONENT`` with weight 1, each validation set under its own name with weight 0, so
Levanter logs ``eval/<name>/bpb`` (``eval/paloma/c4_en/bpb`` for the leaderboard's set).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from levanter.data.text import LMMixtureDatasetConfig, TextLmDatasetFormat, UrlDatasetSourceConfig

from speedrun_operator.api import DatasetSpec
from speedrun_operator.api.dataset import BUNDLED, PALOMA_C4_EN
from speedrun_operator.contract import join
from speedrun_operator.eval_sets import DEFAULT_VALIDATION_SETS, ValidationSets

TRAIN_COMPONENT = "speedrun_train"
BUNDLED_VALIDATION = "bundled/kjv"
BUNDLED_VOCAB_SIZE = 1024


def bundled_dir() -> Path:
    return Path(str(resources.files("speedrun_trainer").joinpath("data")))


def bundled_tokenizer_dir() -> Path:
    return bundled_dir() / "tokenizer"


def tokenizer_for(dataset: DatasetSpec) -> str:
    """What Levanter loads the tokenizer from: the bundled directory (no network) or the spec's name/URL."""
    name = dataset.resolved_tokenizer
    return str(bundled_tokenizer_dir()) if name == BUNDLED else name


def validation_sets(dataset: DatasetSpec, defaults: ValidationSets | None = None) -> ValidationSets:
    """Validation sets by name, as Levanter will tag them: the job's own, the bundled one for the bundled
    corpus, else ``defaults`` (the operator's or ``speedrun run``'s list; else Paloma's c4_en)."""
    if dataset.bundled:
        return {BUNDLED_VALIDATION: [str(bundled_dir() / "kjv-validation.jsonl.gz")]}
    if dataset.validation_urls is not None:
        return dict(dataset.validation_urls)
    return dict(DEFAULT_VALIDATION_SETS if defaults is None else defaults)


def eval_set_name(dataset: DatasetSpec, defaults: ValidationSets | None = None) -> str | None:
    """The set whose bpb the results report: Paloma's c4_en when present, else the first by name."""
    names = sorted(validation_sets(dataset, defaults))
    if not names:
        return None
    return PALOMA_C4_EN if PALOMA_C4_EN in names else names[0]


def data_config(
    dataset: DatasetSpec, caches: str, default_validation: ValidationSets | None = None
) -> LMMixtureDatasetConfig:
    """Levanter's data config. ``caches`` is a prefix every Ray node can read and write (under the output).

    Each raw source gets one file per split where it can: Levanter's cache builder adds a 4-CPU, 6 GiB copy
    task when a source has several shard groups, which small Ray nodes can never schedule.
    """
    tokenizer = tokenizer_for(dataset)
    # Cache keys use names, not this machine's install paths, so every node and attempt finds the same cache.
    key = (dataset.resolved_tokenizer, dataset.text_key)
    text_format = TextLmDatasetFormat(text_key=dataset.text_key)
    components: dict[str, UrlDatasetSourceConfig] = {}
    if dataset.bundled:
        train_urls = [str(bundled_dir() / "kjv-train.jsonl.gz")]
    else:
        train_urls = list(dataset.train_urls or [])
    cache_url = dataset.resolved_cache_url
    if train_urls:
        components[TRAIN_COMPONENT] = UrlDatasetSourceConfig(
            train_urls=train_urls,
            cache_dir=join(caches, _digest(*key, _source_names(dataset, train_urls))),
            format=text_format,
        )
    else:
        assert cache_url is not None
        components[TRAIN_COMPONENT] = UrlDatasetSourceConfig(cache_dir=cache_url, format=text_format)
    for name, urls in validation_sets(dataset, default_validation).items():
        components[name] = UrlDatasetSourceConfig(
            validation_urls=list(urls),
            cache_dir=join(caches, _digest(*key, _source_names(dataset, list(urls)))),
            format=text_format,
        )
    return LMMixtureDatasetConfig(
        tokenizer=tokenizer,
        cache_dir=caches,
        configs=dict(components),
        train_weights={TRAIN_COMPONENT: 1.0},
    )


def _source_names(dataset: DatasetSpec, urls: list[str]) -> list[str]:
    return [f"bundled:{Path(url).name}" for url in urls] if dataset.bundled else urls


def _digest(tokenizer: str, text_key: str, urls: list[str]) -> str:
    """A cache folder name that changes whenever the tokens would: same sources and tokenizer, same cache."""
    payload = json.dumps({"tokenizer": tokenizer, "text_key": text_key, "urls": urls}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
