"""A model defined by the submitter's own code (family custom): the API, the pods it mounts into, the digest,
its counts, and the one line a broken model's code fails with."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from speedrun_operator import contract
from speedrun_operator.api import InvalidSpeedrunJob, Phase, SpeedrunJobStatus, parse_job
from speedrun_operator.builders import build_rayjob
from speedrun_operator.cli import main as cli
from speedrun_operator.config import OperatorConfig
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import NeedsModelCode, compute_run_info
from speedrun_operator.status.accept import accept
from speedrun_operator.status.results import trainer_failed

pytestmark = pytest.mark.unit

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "custom-model"
EXAMPLE = EXAMPLE_DIR / "parallel-llama.yaml"
CONFIG = OperatorConfig(default_image="trainer:test", default_output="gs://speedruns/runs")
NOW = "2026-12-02T00:00:00Z"


def manifest(**model: Any) -> dict[str, Any]:
    data = load_job(EXAMPLE).manifest()
    data["spec"]["model"] = {**data["spec"]["model"], **model}
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpeedrunJob) as caught:
        parse_job(data)
    return "; ".join(str(error) for error in caught.value.errors)


def test_the_example_is_a_custom_model_from_a_configmap() -> None:
    job = load_job(EXAMPLE)
    code = job.spec.model.code
    assert job.spec.model.is_custom and code is not None and code.config_map is not None
    assert (code.config_map.name, code.module, code.config_class) == (
        "parallel-llama-code",
        "parallel_llama",
        "ParallelLlamaConfig",
    )
    assert code.config["hidden_dim"] == 64


def test_custom_needs_code_and_code_needs_custom() -> None:
    data = manifest()
    del data["spec"]["model"]["code"]
    assert "family custom needs code" in refusal(data)
    assert "code is the model of family custom, not llama" in refusal(manifest(family="llama"))


def test_a_custom_model_refuses_the_fields_of_levanter_families() -> None:
    assert "hiddenDim is not an option of family custom" in refusal(manifest(hiddenDim=64))
    assert "preset is not an option of family custom" in refusal(manifest(preset="llama_nano"))


def test_the_code_comes_from_exactly_one_place() -> None:
    code = {**manifest()["spec"]["model"]["code"], "url": "gs://bucket/code/"}
    assert "exactly one of configMap, url or image: true (found: configMap, url)" in refusal(
        manifest(code=code)
    )
    del code["configMap"], code["url"]
    assert "(found: none)" in refusal(manifest(code=code))
    assert parse_job(manifest(code={**code, "image": True})).spec.model.code is not None


def test_a_custom_model_needs_train_seq_len() -> None:
    data = manifest()
    del data["spec"]["train"]["seqLen"]
    assert "spec.train.seqLen: is required for a model of family custom" in refusal(data)


def test_the_crd_refuses_what_pydantic_refuses_for_custom_models() -> None:
    from speedrun_operator import crd

    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    model = spec["properties"]["model"]
    rules = [r["rule"] for r in model["x-kubernetes-validations"]]
    assert any("== has(self.code)" in r for r in rules)
    code = model["properties"]["code"]
    assert "size() == 1" in code["x-kubernetes-validations"][0]["rule"]
    assert code["properties"]["config"]["x-kubernetes-preserve-unknown-fields"] is True
    assert any("has(self.train.seqLen)" in r["rule"] for r in spec["x-kubernetes-validations"])
    ladder = crd.build_ladder_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for model in (
        ladder["properties"]["base"]["properties"]["model"],
        ladder["properties"]["rungs"]["items"]["properties"]["model"],
    ):
        assert model["properties"]["code"]["properties"]["config"] == {
            "description": code["properties"]["config"]["description"],
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }


def test_the_operator_mounts_the_code_configmap_into_the_head_and_every_worker() -> None:
    job = load_job(EXAMPLE)
    rayjob = build_rayjob(job, "uid-1", CONFIG)
    cluster = rayjob["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        assert pod["volumes"] == [
            {"name": contract.CODE_VOLUME, "configMap": {"name": "parallel-llama-code"}}
        ]
        main = pod["containers"][0]
        assert main["volumeMounts"] == [
            {"name": contract.CODE_VOLUME, "mountPath": contract.CODE_MOUNT_PATH, "readOnly": True}
        ]
        assert {"name": contract.CODE_DIR_ENV, "value": contract.CODE_MOUNT_PATH} in main["env"]


def test_other_jobs_mount_nothing() -> None:
    job = load_job(EXAMPLE.parents[1] / "hello-world-cpu.yaml")
    head = build_rayjob(job, "uid-1", CONFIG)["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert "volumes" not in head and "volumeMounts" not in head["containers"][0]


def test_the_digest_is_over_the_files_sorted_by_path_and_skips_a_configmaps_links(tmp_path: Path) -> None:
    files = {"b.py": b"B = 2\n", "a.py": b"A = 1\n", "pkg/c.py": b"C = 3\n"}
    digest = contract.code_digest(files)
    assert digest == contract.code_digest(dict(sorted(files.items())))
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert digest != contract.code_digest({**files, "a.py": b"A = 2\n"})
    assert digest != contract.code_digest({"a.py": b"A = 1\nB = 2\n"}), "file boundaries count"
    # A mounted ConfigMap: the files are links into a hidden ..data folder beside it.
    data = tmp_path / "..2026_12_02" / "pkg"
    data.mkdir(parents=True)
    for name, content in files.items():
        (tmp_path / "..2026_12_02" / name).write_bytes(content)
    (tmp_path / "..data").symlink_to("..2026_12_02")
    (tmp_path / "pkg").mkdir()
    for name in files:
        (tmp_path / name).symlink_to(Path("..data") / name if "/" not in name else Path("../..data") / name)
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    assert contract.code_files(tmp_path) == files
    assert contract.code_digest(contract.code_files(tmp_path)) == digest


def test_the_operator_accepts_a_custom_model_without_counting_it() -> None:
    job = load_job(EXAMPLE)
    spec_data = job.manifest()["spec"]
    spec, decision = accept(spec_data, SpeedrunJobStatus(), generation=1, now=NOW)
    assert spec is not None and decision.status.run_info is None
    accepted = next(c for c in decision.status.conditions if c.type == "Accepted")
    assert "custom parallel_llama.ParallelLlamaConfig on cpu" in accepted.message
    with pytest.raises(NeedsModelCode):
        compute_run_info(spec)


def test_a_broken_models_failure_record_fails_the_job_with_its_line() -> None:
    text = json.dumps({"reason": "CodeError", "message": "parallel_llama.py:29: SyntaxError: invalid syntax"})
    decision = trainer_failed(SpeedrunJobStatus(phase=Phase.SUCCEEDED), text, "gs://b/x/f.json", now=NOW)
    status = decision.status
    assert (status.phase, status.reason) == (Phase.FAILED, "CodeError")
    assert status.message == "parallel_llama.py:29: SyntaxError: invalid syntax"
    assert status.settled, "Failed for good: nothing retries it"
    assert [(note.type, note.reason) for note in decision.notes] == [("Warning", "CodeError")]


# --- The trainer's side: these import the code, so JAX and Levanter -------------------------------------


def write_module(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_BODY = (EXAMPLE_DIR / "parallel_llama.py").read_text().replace('"parallel_llama"', '"{registry}"')


def code_spec(module: str, config_class: str = "ParallelLlamaConfig", **config: Any) -> Any:
    from speedrun_operator.api.model_code import ModelCode

    fields = {"seq_len": 16, "hidden_dim": 16, "intermediate_dim": 32, "num_heads": 2, "num_kv_heads": 2}
    return ModelCode.model_validate(
        {"configMap": {"name": "x"}, "module": module, "configClass": config_class, "config": fields | config}
    )


@pytest.fixture
def code_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(contract.CODE_DIR_ENV, str(tmp_path))
    yield tmp_path


def load_error(module: str, **config: Any) -> str:
    from speedrun_trainer.model_code import CodeError, load_model

    with pytest.raises(CodeError) as caught:
        load_model(code_spec(module, **config), seq_len=16, vocab_size=64)
    return str(caught.value)


def test_a_syntax_error_names_the_file_and_line(code_dir: Path) -> None:
    write_module(code_dir, "broken_syntax", "X = 1\n\ndef f(:\n    pass\n")
    assert load_error("broken_syntax") == "broken_syntax.py:3: SyntaxError: invalid syntax"


def test_errors_in_a_mounted_configmap_name_its_files_not_the_links_behind_them(code_dir: Path) -> None:
    data = code_dir / "..2026_12_02_03_00_00.1"
    write_module(data, "mounted_mod", "import os\nimport not_on_this_node\n")
    (code_dir / "..data").symlink_to(data.name)
    (code_dir / "mounted_mod.py").symlink_to(Path("..data") / "mounted_mod.py")
    assert (
        load_error("mounted_mod")
        == "mounted_mod.py:2: ModuleNotFoundError: No module named 'not_on_this_node'"
    )


def test_an_import_that_fails_names_the_line_that_imports(code_dir: Path) -> None:
    write_module(code_dir, "broken_import", "import os\nimport no_such_module_here\n")
    assert load_error("broken_import") == (
        "broken_import.py:2: ModuleNotFoundError: No module named 'no_such_module_here'"
    )


def test_an_error_raised_while_importing_names_the_innermost_line_of_the_code(code_dir: Path) -> None:
    write_module(code_dir, "helper_mod", "def boom():\n    raise RuntimeError('bad  constant')\n")
    write_module(code_dir, "raises_on_import", "from helper_mod import boom\nboom()\n")
    assert load_error("raises_on_import") == "helper_mod.py:2: RuntimeError: bad constant"


def test_a_missing_module_and_a_missing_class_say_what_is_there(code_dir: Path) -> None:
    assert load_error("not_written") == f"not_written: no module not_written in {code_dir}"
    write_module(code_dir, "no_class", GOOD_BODY.replace("{registry}", "no_class_registry"))
    from speedrun_trainer.model_code import CodeError, load_model

    with pytest.raises(CodeError) as caught:
        load_model(code_spec("no_class", "WrongConfig"), seq_len=16, vocab_size=64)
    assert (
        str(caught.value)
        == "no_class.py: module no_class has no class WrongConfig; it defines ParallelLlamaConfig"
    )


def test_fields_the_config_refuses_name_the_line_that_refuses_them(code_dir: Path) -> None:
    write_module(code_dir, "bad_fields", GOOD_BODY.replace("{registry}", "bad_fields_registry"))
    unknown = load_error("bad_fields", no_such_field=3)
    assert unknown.startswith("bad_fields.py: ParallelLlamaConfig(**code.config): TypeError: ")
    assert "no_such_field" in unknown
    refused = load_error("bad_fields", num_heads=3)
    line = next(n for n, text in enumerate(GOOD_BODY.splitlines(), start=1) if "raise ValueError(" in text)
    assert refused.startswith(f"bad_fields.py:{line}: ValueError: num_heads 3 must divide hidden_dim 16")


def test_a_seq_len_other_than_train_seq_len_is_refused(code_dir: Path) -> None:
    write_module(code_dir, "other_seq", GOOD_BODY.replace("{registry}", "other_seq_registry"))
    assert "Pos has 32 tokens but train.seqLen is 16" in load_error("other_seq", seq_len=32)


def test_the_examples_counts_are_its_codes_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from levanter.utils.flop_utils import lm_flops_per_token

    from speedrun_trainer.model_code import load_model

    monkeypatch.setenv(contract.CODE_DIR_ENV, str(EXAMPLE_DIR))
    job = load_job(EXAMPLE)
    assert job.spec.model.code is not None
    vocab = job.spec.dataset.resolved_vocab_size
    loaded = load_model(job.spec.model.code, seq_len=128, vocab_size=vocab)
    config = loaded.config
    assert loaded.counts.parameters == config.total_trainable_params(vocab), (
        "eval_shape agrees with the formula"
    )
    assert loaded.counts.flops_per_token == lm_flops_per_token(64, 256, 2, 2, 2, 128, vocab, glu=False)
    assert loaded.files == ("parallel_llama.py",)
    assert loaded.digest == contract.code_digest(
        {"parallel_llama.py": (EXAMPLE_DIR / "parallel_llama.py").read_bytes()}
    )


def test_speedrun_info_counts_the_example_by_importing_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.CODE_DIR_ENV, raising=False)
    result = CliRunner().invoke(cli, ["info", "--json", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    code_bytes = (EXAMPLE_DIR / "parallel_llama.py").read_bytes()
    assert info["parameters"] == 164_032
    assert info["codeDigest"] == contract.code_digest({"parallel_llama.py": code_bytes})
    assert info["modelFlops"] == 3 * info["flopsPerToken"] * info["totalTokens"]


def test_speedrun_info_on_broken_code_is_one_line_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(contract.CODE_DIR_ENV, raising=False)
    for path in EXAMPLE_DIR.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    source = (tmp_path / "parallel_llama.py").read_text().replace("seq_len: int = 1024", "seq_len: int = = 1")
    (tmp_path / "parallel_llama.py").write_text(source)
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "parallel-llama.yaml")])
    line = next(n for n, text in enumerate(source.splitlines(), start=1) if "= = 1" in text)
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"{tmp_path / 'parallel-llama.yaml'}: parallel_llama.py:{line}: SyntaxError: invalid syntax"
    )
