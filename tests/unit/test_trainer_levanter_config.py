"""SpeedrunJob → Levanter TrainLmConfig: every field lands where Marin would put it."""

from __future__ import annotations

from pathlib import Path

import pytest
from levanter.layers.rotary import DefaultRotaryEmbeddingsConfig
from levanter.optim import AdamConfig
from levanter.schedule import ScheduleStep
from levanter.tracker import NoopConfig

from fixtures.trainer import JobFactory
from speedrun_trainer.dataset import BUNDLED_VALIDATION, TRAIN_COMPONENT, bundled_tokenizer_dir
from speedrun_trainer.levanter_config import build_train_config
from speedrun_trainer.multihost import slots
from speedrun_trainer.paths import RunPaths

pytestmark = pytest.mark.unit

PATHS = RunPaths(output="gs://bucket/runs", job="tiny", local_dir=Path("/tmp/speedrun/default/tiny"))


def test_the_model_is_the_resolved_llama_with_the_bundled_tokenizer_read_from_the_package(
    tiny_job: JobFactory,
) -> None:
    job = tiny_job(model={"ropeTheta": 5e5, "tieWordEmbeddings": True})
    model = build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink").model
    assert (model.seq_len, model.hidden_dim, model.intermediate_dim) == (64, 32, 64)
    assert (model.num_heads, model.num_kv_heads, model.num_layers) == (2, 2, 1)
    assert model.activation_function.name == "silu"
    assert model.rope == DefaultRotaryEmbeddingsConfig(theta=5e5)
    assert model.tie_word_embeddings is True
    # A hub name here would make Levanter reach the network for the tokenizer.
    assert model.reference_checkpoint == model.tokenizer == str(bundled_tokenizer_dir())


def test_a_preset_with_a_training_sequence_length_trains_at_that_length(tiny_job: JobFactory) -> None:
    shape = dict.fromkeys(("seqLen", "hiddenDim", "intermediateDim", "numHeads", "numKvHeads", "numLayers"))
    job = tiny_job(model={"preset": "llama_nano", **shape}, train={"seqLen": 256})
    model = build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink").model
    assert (model.seq_len, model.hidden_dim, model.num_layers) == (256, 32, 2)


def test_unset_optimizer_fields_keep_levanter_defaults_as_marin_does(tiny_job: JobFactory) -> None:
    optimizer = build_train_config(tiny_job().spec, PATHS, "run-1", [NoopConfig()], "sink").optimizer
    defaults = AdamConfig()
    assert optimizer.learning_rate == 3.0e-3
    for name in ("weight_decay", "beta1", "beta2", "epsilon", "max_grad_norm", "warmup", "min_lr_ratio"):
        assert getattr(optimizer, name) == getattr(defaults, name), name
    assert optimizer.lr_schedule == defaults.lr_schedule


def test_set_optimizer_fields_reach_adam(tiny_job: JobFactory) -> None:
    train = {"weightDecay": 0.0, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6, "maxGradNorm": 0.5,
             "warmup": 100, "decay": 0.2, "minLrRatio": 0.0, "lrSchedule": "linear",
             "cycleLength": 50}  # fmt: skip
    spec = tiny_job(train=train).spec
    optimizer = build_train_config(spec, PATHS, "run-1", [NoopConfig()], "sink").optimizer
    assert (optimizer.weight_decay, optimizer.beta1, optimizer.beta2, optimizer.epsilon) == (
        0.0,
        0.8,
        0.99,
        1e-6,
    )
    assert (optimizer.max_grad_norm, optimizer.warmup, optimizer.decay) == (0.5, 100, 0.2)
    assert (optimizer.min_lr_ratio, optimizer.lr_schedule, optimizer.cycle_length) == (0.0, "linear", 50)


def test_trainer_settings_follow_the_train_section(tiny_job: JobFactory) -> None:
    job = tiny_job(train={"steps": 500, "stepsPerEval": 50, "maxEvalBatches": 3, "seed": 7, "emaBeta": 0.99,
                          "zLossWeight": 1e-4})  # fmt: skip
    config = build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink")
    trainer = config.trainer
    assert (trainer.num_train_steps, trainer.steps_per_eval, trainer.max_eval_batches) == (500, 50, 3)
    assert (trainer.seed, trainer.id, trainer.train_batch_size) == (7, "run-1", 4)
    assert trainer.model_averaging.beta == 0.99
    assert config.z_loss_weight == 1e-4
    assert str(trainer.mp) == str(__import__("jmp").get_policy("p=f32,c=bfloat16"))
    assert isinstance(trainer.log_dir, Path)  # a str crashes Levanter's write_artifact
    assert trainer.require_accelerator is False


def test_a_batch_schedule_becomes_a_levanter_int_schedule(tiny_job: JobFactory) -> None:
    schedule = [{"startStep": 0, "batchSize": 4}, {"startStep": 10, "batchSize": 8}]
    job = tiny_job(train={"batchSize": None, "batchSchedule": schedule})
    trainer = build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink").trainer
    assert trainer.train_batch_size == [ScheduleStep(start=0, value=4), ScheduleStep(start=10, value=8)]


def test_checkpoints_go_to_the_jobs_folder_so_any_attempt_resumes_from_them(tiny_job: JobFactory) -> None:
    job = tiny_job(train={"stepsPerCheckpoint": 25})
    checkpointer = build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink").trainer.checkpointer
    assert checkpointer.expanded_path("any-run-id") == "gs://bucket/runs/checkpoints/tiny"
    assert checkpointer.keep == [{"every": 25}]


def test_jax_distributed_init_only_for_several_hosts(tiny_job: JobFactory) -> None:
    def distributed(resources: dict[str, object]) -> bool:
        job = tiny_job(resources=resources, train={"batchSize": 32})
        return bool(
            build_train_config(
                job.spec, PATHS, "r", [NoopConfig()], "sink"
            ).trainer.distributed.initialize_jax_distributed
        )

    assert distributed({"cpu": None, "gpu": {"type": "H100", "count": 8}, "peakFlopsPerChip": None}) is False
    assert distributed({"cpu": None, "tpu": {"type": "v4-8"}, "peakFlopsPerChip": None}) is False
    assert distributed({"cpu": None, "tpu": {"type": "v4-16"}, "peakFlopsPerChip": None}) is True
    assert distributed({"cpu": None, "tpu": {"type": "v4-8", "slices": 2}, "peakFlopsPerChip": None}) is True
    assert distributed({"cpu": {"hosts": 2}}) is True


def test_each_cpu_host_joins_process_zeros_coordinator_as_the_process_its_task_index_names(
    tiny_job: JobFactory,
) -> None:
    job = tiny_job(resources={"cpu": {"hosts": 2}}, train={"batchSize": 8})
    told = slots("10.0.0.7:41234", 2)
    configs = [
        build_train_config(job.spec, PATHS, "r", [NoopConfig()], "sink", host=slot).trainer.distributed
        for slot in told
    ]
    assert [(c.coordinator_address, c.num_processes, c.process_id) for c in configs] == [
        ("10.0.0.7:41234", 2, 0),
        ("10.0.0.7:41234", 2, 1),
    ]
    assert all(c.initialize_jax_distributed and c._is_distributed() for c in configs)
    # A TPU slice's hosts are told nothing: JAX reads the coordinator from the environment GKE gives them.
    tpu = tiny_job(
        resources={"cpu": None, "tpu": {"type": "v4-16"}, "peakFlopsPerChip": None}, train={"batchSize": 32}
    )
    alone = build_train_config(tpu.spec, PATHS, "r", [NoopConfig()], "sink").trainer.distributed
    assert (alone.coordinator_address, alone.num_processes, alone.process_id) == (None, None, None)


def test_levanter_starts_or_joins_ray_unless_the_caller_started_one(tiny_job: JobFactory) -> None:
    job = tiny_job()
    joined = build_train_config(job.spec, PATHS, "r", [NoopConfig()], "sink").trainer.ray
    assert (joined.address, joined.auto_start_cluster) == (None, True)  # RAY_ADDRESS, else a local Ray
    assert (
        build_train_config(job.spec, PATHS, "r", [], "sink", start_ray=False).trainer.ray.auto_start_cluster
        is False
    )


def test_the_bundled_data_trains_on_one_file_and_evaluates_on_the_held_out_split(
    tiny_job: JobFactory,
) -> None:
    data = build_train_config(tiny_job().spec, PATHS, "r", [NoopConfig()], "sink").data
    assert data.train_weights == {TRAIN_COMPONENT: 1.0}
    train, validation = data.configs[TRAIN_COMPONENT], data.configs[BUNDLED_VALIDATION]
    assert [Path(url).name for url in train.train_urls] == ["kjv-train.jsonl.gz"]
    assert [Path(url).name for url in validation.validation_urls] == ["kjv-validation.jsonl.gz"]
    assert train.cache_dir.startswith("gs://bucket/runs/caches/")
    assert data.tokenizer == str(bundled_tokenizer_dir())


def test_raw_urls_with_paloma_c4_en_give_the_leaderboard_metric_name(tiny_job: JobFactory) -> None:
    dataset = {"bundled": False, "trainUrls": ["gs://data/train.jsonl.gz"], "tokenizer": "gpt2",
               "textKey": "body",
               "validationUrls": {"paloma/c4_en": ["gs://data/c4_en.jsonl.gz"]}}  # fmt: skip
    data = build_train_config(tiny_job(dataset=dataset).spec, PATHS, "r", [NoopConfig()], "sink").data
    assert set(data.configs) == {TRAIN_COMPONENT, "paloma/c4_en"}  # Levanter logs eval/paloma/c4_en/bpb
    assert data.configs[TRAIN_COMPONENT].train_urls == ["gs://data/train.jsonl.gz"]
    assert data.configs[TRAIN_COMPONENT].format.text_key == "body"
    assert data.tokenizer == "gpt2"


def test_a_pretokenized_cache_is_read_in_place(tiny_job: JobFactory) -> None:
    dataset = {"bundled": False, "cacheUrl": "gs://data/fineweb-cache", "tokenizer": "gpt2"}
    data = build_train_config(tiny_job(dataset=dataset).spec, PATHS, "r", [NoopConfig()], "sink").data
    assert data.configs[TRAIN_COMPONENT].cache_dir == "gs://data/fineweb-cache"
    assert data.configs[TRAIN_COMPONENT].train_urls == ()


def test_the_same_sources_share_a_cache_and_different_ones_do_not(tiny_job: JobFactory) -> None:
    def cache(urls: list[str]) -> str:
        dataset = {"bundled": False, "trainUrls": urls, "tokenizer": "gpt2"}
        return str(
            build_train_config(tiny_job(dataset=dataset).spec, PATHS, "r", [], "sink")
            .data.configs[TRAIN_COMPONENT]
            .cache_dir
        )

    assert cache(["gs://data/a.jsonl"]) == cache(["gs://data/a.jsonl"]) != cache(["gs://data/b.jsonl"])
