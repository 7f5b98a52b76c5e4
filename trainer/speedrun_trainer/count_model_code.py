"""``python -m speedrun_trainer.count_model_code FILE``: import the custom model of the SpeedrunJob in FILE
and print its counts and code digest as JSON; a broken model is one line on stderr (``error: file:line:
...``) and exit code 2. ``speedrun info`` runs it, so its own process never imports JAX."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from speedrun_operator.manifests import ManifestError, load_job
from speedrun_operator.runinfo import seq_len_of
from speedrun_trainer.model_code import CodeError, load_model


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("error: usage: python -m speedrun_trainer.count_model_code FILE", file=sys.stderr)
        return 2
    try:
        job = load_job(Path(argv[0]))
    except ManifestError as exc:
        print(f"error: {exc}".replace("\n", "; "), file=sys.stderr)
        return 2
    code = job.spec.model.code
    if code is None:
        print(f"error: {argv[0]}: the model is not of family custom", file=sys.stderr)
        return 2
    try:
        vocab = job.spec.dataset.resolved_vocab_size
        loaded = load_model(code, seq_len=seq_len_of(job.spec), vocab_size=vocab)
    except CodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = loaded.counts
    found = {
        "parameters": counts.parameters,
        "flops_per_token": counts.flops_per_token,
        "digest": loaded.digest,
        "files": list(loaded.files),
    }
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
