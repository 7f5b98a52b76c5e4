"""The validation sets a job gets when it names none: Marin always evaluates on Paloma, and the leaderboard
ranks by ``eval/paloma/c4_en/bpb``, so the default list is Paloma's ``c4_en`` split.

Paloma is published on the Hugging Face Hub as the gated dataset ``allenai/paloma`` (each subset's validation
split at ``<subset>/val/val*.jsonl.gz``): reading it needs a Hub token of an account that accepted its terms
(the AI2 ImpACT low-risk licence), given to jobs as ``spec.hfTokenSecret``.

The operator's list is a setting (``SPEEDRUN_DEFAULT_VALIDATION_SETS``, the chart's
``defaultValidationSets``), passed to the trainer in the same variable; ``speedrun run --validation-set``
replaces it for a local run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from speedrun_operator.api.dataset import PALOMA_C4_EN
from speedrun_operator.contract import DEFAULT_VALIDATION_ENV as DEFAULT_VALIDATION_ENV

PALOMA_DATASET = "hf://datasets/allenai/paloma"
PALOMA_SUBSET_DIRS = {
    "4chan": "4chan_meta_sep",
    "c4_100_domains": "c4_100_domains",
    "c4_en": "c4_en",
    "dolma-v1_5": "dolma-v1_5",
    "dolma_100_programing_languages": "dolma_100_programing_languages",
    "dolma_100_subreddits": "dolma_100_subreddits",
    "falcon-refinedweb": "falcon-refinedweb",
    "gab": "gab",
    "m2d2_s2orc_unsplit": "m2d2_s2orc_unsplit",
    "m2d2_wikipedia_unsplit": "m2d2_wikipedia_unsplit",
    "manosphere_meta_sep": "manosphere_meta_sep",
    "mc4": "mc4",
    "ptb": "ptb",
    "redpajama": "redpajama",
    "twitterAAE_HELM_fixed": "twitterAAE_HELM_fixed",
    "wikitext_103": "wikitext_103",
}
"""Paloma's subsets (as Marin names them under ``paloma/``) and their folders in the Hub dataset."""

ValidationSets = dict[str, list[str]]
_SHAPE = "{NAME: [URL, ...]}"


def paloma_urls(name: str) -> list[str]:
    """The validation files of ``paloma/<subset>``. Raises ValueError for a name that is no Paloma subset."""
    subset = name.removeprefix("paloma/")
    if not name.startswith("paloma/") or subset not in PALOMA_SUBSET_DIRS:
        known = ", ".join(f"paloma/{key}" for key in PALOMA_SUBSET_DIRS)
        raise ValueError(f"{name!r} is not a Paloma subset; give NAME=URL[,URL...] or one of: {known}")
    return [f"{PALOMA_DATASET}/{PALOMA_SUBSET_DIRS[subset]}/val/val*.jsonl.gz"]


DEFAULT_VALIDATION_SETS: ValidationSets = {PALOMA_C4_EN: paloma_urls(PALOMA_C4_EN)}


def parse_setting(text: str) -> ValidationSets:
    """The env/chart form: a JSON object of set name → list of URLs (``{}`` evaluates on nothing)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{DEFAULT_VALIDATION_ENV}: not JSON ({exc.msg}); expected {{NAME: [URL, ...]}}"
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(urls, list) and urls and all(isinstance(url, str) and url for url in urls)
        for urls in value.values()
    ):
        raise ValueError(
            f"{DEFAULT_VALIDATION_ENV}: expected a JSON object {{NAME: [URL, ...]}}, got {text!r}"
        )
    return {str(name): list(urls) for name, urls in value.items()}


def format_setting(sets: Mapping[str, Sequence[str]]) -> str:
    return json.dumps({name: list(urls) for name, urls in sets.items()}, sort_keys=True)


def from_env(environ: Mapping[str, str]) -> ValidationSets:
    """The default list the environment sets, else Paloma's c4_en."""
    text = environ.get(DEFAULT_VALIDATION_ENV)
    return parse_setting(text) if text else dict(DEFAULT_VALIDATION_SETS)


def parse_options(entries: Sequence[str]) -> ValidationSets:
    """``--validation-set`` values: ``NAME=URL[,URL...]``, or a bare ``paloma/<subset>``."""
    sets: ValidationSets = {}
    for entry in entries:
        name, sep, urls = entry.partition("=")
        if not name:
            raise ValueError(f"{entry!r}: expected NAME=URL[,URL...] or paloma/<subset>")
        if sep:
            listed = [url for url in urls.split(",") if url]
            if not listed:
                raise ValueError(f"{entry!r}: no URL after '='")
            sets[name] = listed
        else:
            sets[name] = paloma_urls(name)
    return sets
