"""A custom model (``spec.model.family: custom``): find its code, import it, build its config, count it.

The code is the submitter's: a module defining a Levanter ``LmConfig`` subclass and its model. It comes from
a ConfigMap the operator mounts (``contract.CODE_DIR_ENV``; the folder of the job's file for a local run), a
folder any fsspec URL opens, or the image. Whatever goes wrong while loading it — a syntax error, an import
that fails, a missing class, fields the class does not take, a model that cannot be built — is one
``CodeError`` naming the file and line, for the status and the console.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from speedrun_operator import contract
from speedrun_operator.api.model_code import ModelCode
from speedrun_operator.runinfo import ModelCounts

CODE_ERROR = "CodeError"
"""The failure's reason on the status."""


class CodeError(Exception):
    """The model's code cannot be used; the message is one line: ``file:line: what``."""

    def __reduce__(self) -> tuple[type[CodeError], tuple[str]]:
        # Crosses from a Ray task to its driver intact.
        return CodeError, (str(self),)


@dataclass(frozen=True)
class LoadedModel:
    config: Any
    """The LmConfig subclass's instance, built from ``code.config``."""
    counts: ModelCounts
    digest: str
    """``contract.code_digest`` of the code's files."""
    files: tuple[str, ...]
    """The code's files by relative path (for the image: the module's own)."""

    def record(self, code: ModelCode) -> dict[str, Any]:
        """What the results say about the code: ``run_info.model_code``."""
        return {
            "module": code.module,
            "config_class": code.config_class,
            "source": code.describe(),
            "digest": self.digest,
            "files": list(self.files),
        }


def code_folder(code: ModelCode) -> Path | None:
    """Where the code's files are on this host; None when the module is on the image's path."""
    if code.config_map is not None:
        return Path(os.environ.get(contract.CODE_DIR_ENV) or contract.CODE_MOUNT_PATH)
    if code.url is not None:
        return _download(code.url)
    return None


def load_model(code: ModelCode, *, seq_len: int, vocab_size: int) -> LoadedModel:
    """Import the code, build its config and count its model; raises CodeError."""
    folder = code_folder(code)
    if folder is not None and not folder.is_dir():
        raise CodeError(f"{folder}: the model's code folder does not exist ({code.describe()})")
    module = _import(code.module, folder)
    config = _build_config(module, code, folder)
    pos = _call(lambda: config.Pos.size, folder, f"{code.config_class}.Pos")
    if pos != seq_len:
        raise CodeError(
            f"{_where(module, folder)}: {code.config_class}'s Pos has {pos} tokens but train.seqLen is "
            f"{seq_len}; make them equal (set its seq_len in code.config)"
        )
    counts = model_counts(config, vocab_size, folder)
    files = contract.code_files(folder) if folder is not None else _module_files(module)
    return LoadedModel(config, counts, contract.code_digest(files), tuple(sorted(files)))


def model_counts(config: Any, vocab_size: int, folder: Path | None = None) -> ModelCounts:
    """Parameters of the model the config builds (its arrays' sizes, from ``eval_shape``: nothing is
    allocated) and the config's own forward FLOPs per token (Levanter's ``flops_per_token``)."""
    import equinox as eqx
    import haliax as hax
    import jax
    from levanter.utils.jax_utils import parameter_count

    name = type(config).__name__
    per_token = _call(lambda: config.flops_per_token(vocab_size), folder, f"{name}.flops_per_token")
    if per_token is None:
        raise CodeError(
            f"{_class_file(config, folder)}: {name}.flops_per_token returned None (Levanter's default); "
            "define it, so the run's model FLOPs can be counted"
        )
    vocab = hax.Axis("vocab", vocab_size)
    shapes = _call(
        lambda: eqx.filter_eval_shape(lambda: config.build(vocab, key=jax.random.PRNGKey(0))),
        folder,
        f"{name}.build",
    )
    return ModelCounts(parameters=int(parameter_count(shapes)), flops_per_token=float(per_token))


def _import(name: str, folder: Path | None) -> ModuleType:
    if folder is not None:
        where = os.path.abspath(folder)
        loaded = sys.modules.get(name)
        if loaded is not None and _under(getattr(loaded, "__file__", None), folder):
            return loaded  # imported once already; importing again would register its config twice
        for other in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[other]
        if where not in sys.path:
            sys.path.insert(0, where)
        importlib.invalidate_caches()
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a ConfigMap is read-only, and a local folder stays as it was
    try:
        return importlib.import_module(name)
    except SyntaxError as exc:
        place = _relative(exc.filename, folder) if exc.filename else name
        raise CodeError(f"{place}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        if exc.name == name.split(".")[0] or exc.name == name:
            where_text = f"in {folder}" if folder is not None else "on the image's PYTHONPATH"
            raise CodeError(f"{name}: no module {name} {where_text}") from None
        raise CodeError(_located(exc, folder)) from None
    except Exception as exc:
        raise CodeError(_located(exc, folder)) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode


def _build_config(module: ModuleType, code: ModelCode, folder: Path | None) -> Any:
    from levanter.models.lm_model import LmConfig

    where = _where(module, folder)
    cls = getattr(module, code.config_class, None)
    if cls is None:
        known = sorted(
            attr
            for attr, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, LmConfig) and value.__module__ == module.__name__
        )
        has = f"; it defines {', '.join(known)}" if known else "; it defines no LmConfig subclass"
        raise CodeError(f"{where}: module {code.module} has no class {code.config_class}{has}")
    if not isinstance(cls, type) or not issubclass(cls, LmConfig):
        raise CodeError(f"{where}: {code.config_class} is not a subclass of Levanter's LmConfig")
    return _call(lambda: cls(**code.config), folder, f"{where}: {code.config_class}(**code.config)")


def _call(fn: Any, folder: Path | None, what: str) -> Any:
    """``fn()``, an exception from it a CodeError at the innermost line of the code that raised it."""
    try:
        return fn()
    except CodeError:
        raise
    except Exception as exc:
        raise CodeError(_located(exc, folder, what)) from None


def _located(exc: BaseException, folder: Path | None, what: str | None = None) -> str:
    """``file:line: Type: message`` at the deepest frame in the code's folder; without one (the code is on
    the image, or a library refused what the code asked), ``what`` names the call, else the deepest frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [frame for frame in frames if folder is not None and _under(frame.filename, folder)]
    if ours:
        place = f"{_relative(ours[-1].filename, folder)}:{ours[-1].lineno}"
    elif what is not None:
        place = what
    else:
        place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "code"
    text = " ".join(str(exc).split())
    return f"{place}: {type(exc).__name__}: {text}" if text else f"{place}: {type(exc).__name__}"


def _under(filename: str | None, folder: Path) -> bool:
    return bool(filename) and _relative_to(str(filename), folder) is not None


def _relative(filename: str, folder: Path | None) -> str:
    relative = _relative_to(filename, folder) if folder is not None else None
    return relative if relative is not None else filename


def _relative_to(filename: str, folder: Path) -> str | None:
    """The path of ``filename`` under ``folder``, symbolic links not followed: a mounted ConfigMap's files
    are links into a hidden ``..<timestamp>`` folder, and the user knows them by their own names."""
    try:
        return Path(os.path.abspath(filename)).relative_to(os.path.abspath(folder)).as_posix()
    except ValueError:
        return None


def _where(module: ModuleType, folder: Path | None) -> str:
    filename = getattr(module, "__file__", None)
    return _relative(filename, folder) if filename else module.__name__


def _class_file(config: Any, folder: Path | None) -> str:
    module = sys.modules.get(type(config).__module__)
    return _where(module, folder) if module is not None else type(config).__module__


def _module_files(module: ModuleType) -> dict[str, bytes]:
    """The code of a module from the image: its package's .py files, or its one file."""
    filename = getattr(module, "__file__", None)
    if filename is None:
        return {}
    path = Path(filename)
    if path.name == "__init__.py":
        return contract.code_files(path.parent)
    return {path.name: path.read_bytes()}


def _download(url: str) -> Path:
    """A fresh local copy of the folder at ``url``, one per URL and process."""
    import fsspec

    local = Path(tempfile.gettempdir()) / "speedrun-code" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if local.exists():
        shutil.rmtree(local)
    local.mkdir(parents=True)
    fs, path = fsspec.core.url_to_fs(url)
    root = path.rstrip("/")
    try:
        for name in fs.find(root):
            target = local / Path(name).relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(name, str(target))
    except OSError as exc:
        raise CodeError(f"{url}: cannot read the model's code ({type(exc).__name__}: {exc})") from None
    return local


def load_job_model(
    code: ModelCode, *, seq_len: int, vocab_size: int, failure_url: str, where: str
) -> LoadedModel:
    """``load_model`` for a job's attempt. A CodeError is also written to ``failure_url`` (the operator fails
    the job with it, once) before it is raised; a loadable model clears an earlier attempt's record."""
    import logging

    from speedrun_operator import storage

    logger = logging.getLogger(__name__)
    try:
        loaded = load_model(code, seq_len=seq_len, vocab_size=vocab_size)
    except CodeError as exc:
        logger.info("[%s] the model's code is broken: %s", where, exc)
        storage.write_text_atomic(failure_url, json.dumps({"reason": CODE_ERROR, "message": str(exc)}) + "\n")
        raise
    _remove(failure_url)
    logger.info(
        "[%s] model %s: %d parameters, %.4g FLOPs per token, code %s",
        where,
        code.describe(),
        loaded.counts.parameters,
        loaded.counts.flops_per_token,
        loaded.digest,
    )
    return loaded


def _remove(url: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path)
