"""``archivist models import FILE.gguf`` and ``python -m archivist_models.gguf``, end to end.

The command runs through click as a user would, into a fresh home; the imported folder is
then found, listed and loaded by the same code that loads any installed model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from conftest import write_tiny_gguf
from gguf import GGMLQuantizationType as Q

from archivist.errors import ArchivistError, ConversionError
from archivist.model_commands import add_model_commands
from archivist.model_service import import_id


@pytest.fixture()
def invoke(home: Path):
    from archivist.application import Application

    group = click.Group("models")
    add_model_commands(group)
    runner = CliRunner()
    apps: list[Application] = []

    def run(*args: str):
        app = Application(home, safe_mode=True)
        apps.append(app)
        return runner.invoke(group, list(args), obj=SimpleNamespace(app=app), catch_exceptions=False)

    yield run
    for app in apps:
        app.close()


@pytest.fixture()
def gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "Tiny-Qwen2-Q4_K_M.gguf", architecture="qwen2", weight_type=Q.Q4_K,
                           embedding_type=Q.Q6_K, overrides={"attn_v": Q.Q6_K})


def test_import_installs_a_loadable_model(invoke, gguf: Path, home: Path) -> None:
    result = invoke("import", str(gguf), "--json", "--use")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == import_id(gguf) == "tiny-qwen2-q4-k-m"
    folder = home / "models" / report["imported"]
    assert Path(report["path"]) == folder and report["architecture"] == "qwen2" and report["current"] is True
    assert {"model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json", "archivist.json"} <= {
        p.name for p in folder.iterdir()}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left

    listed = json.loads(invoke("list", "--json").stdout)["installed"]
    assert [(m["id"], m["chosen"]) for m in listed] == [(report["imported"], True)]

    from archivist.engine.installed import find_model
    from archivist.engine.runtime import load_model

    loaded = load_model(Path(find_model(home / "models", report["imported"]).path))
    assert loaded.info.name == "tiny"
    assert loaded.count_tokens("hello") > 0


def test_import_with_id_name_and_progress(invoke, gguf: Path, home: Path) -> None:
    result = invoke("import", str(gguf), "--id", "my-qwen", "--name", "My Qwen")
    assert result.exit_code == 0, result.output
    assert "[100.0%] done" in result.stderr
    assert "imported My Qwen (qwen2" in result.stdout and "archivist models use my-qwen" in result.stdout
    manifest = json.loads((home / "models" / "my-qwen" / "archivist.json").read_text())
    assert manifest["id"] == "my-qwen" and manifest["name"] == "My Qwen"
    assert manifest["source"]["file"] == gguf.name


def test_import_refuses_to_overwrite_unless_asked(invoke, gguf: Path, home: Path) -> None:
    assert invoke("import", str(gguf), "--id", "twice", "--json").exit_code == 0
    stamp = (home / "models" / "twice" / "model.onnx").stat().st_mtime_ns
    with pytest.raises(ArchivistError, match="already installed"):
        invoke("import", str(gguf), "--id", "twice")
    assert (home / "models" / "twice" / "model.onnx").stat().st_mtime_ns == stamp
    assert invoke("import", str(gguf), "--id", "twice", "--replace", "--json").exit_code == 0
    with pytest.raises(ArchivistError, match="cannot be a model id"):
        invoke("import", str(gguf), "--id", "../escape")


def test_import_of_a_bad_file_leaves_nothing(invoke, tmp_path: Path, home: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model\n" * 50)
    with pytest.raises(ConversionError, match="not a readable GGUF"):
        invoke("import", str(bogus))
    with pytest.raises(ConversionError, match="not found"):
        invoke("import", str(tmp_path / "absent.gguf"))
    models = home / "models"
    assert not models.exists() or not any(models.iterdir())


def test_module_entry_point(gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "folder"
    done = subprocess.run([sys.executable, "-m", "archivist_models.gguf", str(gguf), str(out), "--id", "x"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert json.loads((out / "archivist.json").read_text())["id"] == "x"
    failed = subprocess.run([sys.executable, "-m", "archivist_models.gguf", str(tmp_path / "absent.gguf"), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "error: GGUF file not found" in failed.stderr
