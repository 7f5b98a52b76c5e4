"""Regenerate the bundled corpus and tokenizer in ``speedrun_trainer/data/`` from the King James Bible.

The text comes from Debian's ``bible-kjv-text`` package (read through its ``bible`` program, from
``bible-kjv``): ``apt-get install bible-kjv``, then ``python trainer/tools/build_bundled_data.py``.
The output is byte-for-byte the same on every run: documents in canonical order, a fixed validation split,
gzip without timestamps, and a BPE trained single-threaded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent.parent / "speedrun_trainer" / "data"
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ["<|endoftext|>"]
VERSES_IN_KJV = 31102
VALIDATION_EVERY = 25
"""Every 25th chapter (1-based chapter index in canonical order) goes to validation: about 4% of the text."""

_VERSE = re.compile(r"^(?P<book>[0-9]?[A-Za-z]+)(?P<chapter>[0-9]+):(?P<verse>[0-9]+) (?P<text>.*)$")


@dataclass(frozen=True)
class Chapter:
    book: str
    number: int
    verses: list[str]

    def document(self) -> str:
        return f"{self.book} {self.number}\n\n" + "\n".join(self.verses) + "\n"


def read_kjv() -> list[Chapter]:
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    text = subprocess.run(
        ["bible", "-f", "-l100000", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True, env=env
    ).stdout
    chapters: list[Chapter] = []
    lines = text.splitlines()
    if len(lines) != VERSES_IN_KJV:
        raise SystemExit(f"expected {VERSES_IN_KJV} verses from `bible`, got {len(lines)}")
    for line in lines:
        match = _VERSE.match(line)
        if match is None:
            raise SystemExit(f"unexpected line from `bible`: {line!r}")
        book, number = match["book"], int(match["chapter"])
        if not chapters or (chapters[-1].book, chapters[-1].number) != (book, number):
            chapters.append(Chapter(book, number, []))
        chapters[-1].verses.append(match["text"].strip())
    return chapters


def write_jsonl_gz(path: Path, documents: list[str]) -> None:
    payload = "".join(json.dumps({"text": doc}, ensure_ascii=False) + "\n" for doc in documents).encode()
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(payload)


def train_tokenizer(documents: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    if tokenizer.get_vocab_size() != VOCAB_SIZE:
        raise SystemExit(f"trained {tokenizer.get_vocab_size()} tokens, expected {VOCAB_SIZE}")
    return tokenizer


def write_tokenizer(tokenizer: Tokenizer, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIAL_TOKENS[0],
        "eos_token": SPECIAL_TOKENS[0],
        "unk_token": SPECIAL_TOKENS[0],
        "model_max_length": 1_000_000,
        "clean_up_tokenization_spaces": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    special = {"bos_token": SPECIAL_TOKENS[0], "eos_token": SPECIAL_TOKENS[0], "unk_token": SPECIAL_TOKENS[0]}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True) + "\n")


def main() -> None:
    # One thread, so the BPE trainer counts and breaks ties the same way on every machine.
    os.environ["RAYON_NUM_THREADS"] = "1"
    chapters = read_kjv()
    train = [c.document() for i, c in enumerate(chapters, 1) if i % VALIDATION_EVERY]
    validation = [c.document() for i, c in enumerate(chapters, 1) if not i % VALIDATION_EVERY]
    OUT.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(OUT / "kjv-train.jsonl.gz", train)
    write_jsonl_gz(OUT / "kjv-validation.jsonl.gz", validation)
    write_tokenizer(train_tokenizer(train), OUT / "tokenizer")
    for path in sorted(OUT.rglob("*")):
        if path.is_file() and path.suffix != ".md":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            print(f"{path.relative_to(OUT)}  {path.stat().st_size:>9,} bytes  sha256 {digest}")
    print(f"{len(train)} train chapters, {len(validation)} validation chapters")


if __name__ == "__main__":
    main()
