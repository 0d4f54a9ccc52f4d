"""Fetching a catalog variant from the Hugging Face hub into the models folder.

Everything goes through ``huggingface_hub`` (the hub's own client): the file list and
its LFS checksums from ``HfApi.list_repo_tree``, each file from ``hf_hub_download``, which
retries a cut connection with an HTTP Range request so the bytes already received are
kept. Only the variant's subfolder is fetched.

A download lives in ``<models>/.partial/<id>/`` until every file has the size and the
sha256 (LFS files) or git blob id (small files) the hub lists for the pinned commit;
only then is the folder renamed to ``<models>/<id>/``. The installed-model scan skips
dot-folders, so an interrupted download never looks like a model. Files that were
complete and verified survive an interruption (recorded in ``download.json``), so the
next ``install`` resumes where the last one stopped, file by file; a file cut half way
is fetched again (this huggingface_hub version deletes its partial temp file).

Network access happens only here and only when the user asks for a download; the hub
client's telemetry is switched off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archivist.engine.catalog import Variant
from archivist.errors import ArchivistError, ModelNotFound

log = logging.getLogger(__name__)

PARTIAL = ".partial"
STATE_FILE = "download.json"
DISK_SLACK = 64 * 2**20  # metadata, lock files, the filesystem's own rounding


class DownloadError(ArchivistError):
    """A download that could not finish; nothing was installed."""


class NotEnoughDisk(DownloadError):
    """The models folder's disk cannot hold the variant."""


class IntegrityError(DownloadError):
    """A file arrived with the wrong size or checksum; it was deleted."""


class DownloadCancelled(DownloadError):
    """The user stopped the download; what was verified is kept for a resume."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the variant's subfolder as the hub lists it at a commit."""

    path: str  # path in the repository, subfolder included
    size: int
    sha256: str | None  # LFS files
    blob_id: str  # git blob sha1 (of the pointer file for LFS files)


@dataclass(frozen=True)
class Progress:
    """What the CLI's bar and the GUI draw: bytes done of the whole variant."""

    variant_id: str
    filename: str
    done_bytes: int
    total_bytes: int


ProgressCallback = Callable[[Progress], None]


def _endpoint(endpoint: str | None) -> str | None:
    """Read ``HF_ENDPOINT`` at call time (huggingface_hub reads it once, at import)."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def _hub() -> Any:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import huggingface_hub

    return huggingface_hub


def list_remote_files(
    variant: Variant, *, revision: str = "main", endpoint: str | None = None, token: str | bool | None = None
) -> tuple[str, list[RemoteFile]]:
    """The commit ``revision`` points at, and the files of the variant's subfolder there."""
    hub = _hub()
    api = hub.HfApi(endpoint=_endpoint(endpoint), token=token)
    try:
        commit = api.model_info(variant.repo, revision=revision).sha or revision
        entries = api.list_repo_tree(variant.repo, path_in_repo=variant.subfolder, recursive=True, revision=commit)
        files = [
            RemoteFile(
                path=e.path,
                size=int(e.lfs.size if e.lfs is not None else e.size),
                sha256=e.lfs.sha256 if e.lfs is not None else None,
                blob_id=e.blob_id,
            )
            for e in entries
            if isinstance(e, hub.hf_api.RepoFile)
        ]
    except Exception as exc:
        raise DownloadError(f"cannot list {variant.repo}/{variant.subfolder} on the hub: {_short(exc)}") from exc
    if not files:
        raise DownloadError(f"{variant.repo} has no files under {variant.subfolder!r} at {revision}")
    return commit, files


def disk_free(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def verify_file(path: Path, remote: RemoteFile) -> None:
    """Raise :class:`IntegrityError` unless ``path`` has the hub's size and checksum."""
    size = path.stat().st_size
    if size != remote.size:
        raise IntegrityError(f"{remote.path}: {size} bytes arrived, the hub lists {remote.size}")
    if remote.sha256:
        digest = hashlib.sha256()
        expected = remote.sha256
    else:  # a small file kept in git: its blob id is sha1("blob <size>\0" + content)
        digest = hashlib.sha1(f"blob {size}\0".encode())
        expected = remote.blob_id
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise IntegrityError(f"{remote.path}: checksum {digest.hexdigest()[:12]}… does not match the hub's {expected[:12]}…")


def partial_folder(models_dir: Path, variant_id: str) -> Path:
    return Path(models_dir) / PARTIAL / variant_id


def install_variant(
    variant: Variant,
    models_dir: Path,
    *,
    revision: str = "main",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    free_space: Callable[[Path], int] = disk_free,
) -> Path:
    """Download ``variant`` and install it as ``<models_dir>/<variant.id>``; return that folder.

    Raises :class:`NotEnoughDisk` before any byte is fetched when the disk is too small,
    :class:`IntegrityError` when a file does not match the hub's checksum (the file is
    deleted, the rest kept), :class:`DownloadCancelled` when ``cancel`` is set.
    ``free_space`` exists so tests can simulate a small disk.
    """
    if variant.source != "hub":
        raise DownloadError(f"{variant.id} is not downloaded: run `archivist models build-default`")
    models_dir = Path(models_dir)
    final = models_dir / variant.id
    if (final / "genai_config.json").is_file():
        return final
    commit, files = list_remote_files(variant, revision=revision, endpoint=endpoint, token=token)
    partial = partial_folder(models_dir, variant.id)
    state = _read_state(partial)
    if state.get("commit") not in (None, commit):
        log.info("%s changed on the hub (%s -> %s): starting over", variant.id, state.get("commit"), commit)
        shutil.rmtree(partial, ignore_errors=True)
        state = {}
    partial.mkdir(parents=True, exist_ok=True)
    verified: set[str] = set(state.get("verified", []))
    state = {"variant": variant.id, "repo": variant.repo, "subfolder": variant.subfolder,
             "commit": commit, "verified": sorted(verified)}
    _write_state(partial, state)

    total = sum(f.size for f in files)
    done = sum(f.size for f in files if f.path in verified and (partial / f.path).is_file())
    missing = total - done
    free = free_space(models_dir)
    if missing + DISK_SLACK > free:
        raise NotEnoughDisk(
            f"{variant.id} needs {_gb(missing)} more on {models_dir} but only {_gb(free)} is free"
        )

    counter = _Counter(variant.id, total, done, progress, cancel)
    for remote in files:
        target = partial / remote.path
        if remote.path in verified and target.is_file():
            continue
        counter.start(remote)
        try:
            _hub().hf_hub_download(
                variant.repo, remote.path, revision=commit, local_dir=partial,
                endpoint=_endpoint(endpoint), token=token, tqdm_class=counter.bar_class(),
                cache_dir=models_dir / PARTIAL / ".hub-cache",
            )
        except DownloadCancelled:
            raise
        except OSError as exc:
            if getattr(exc, "errno", None) == 28:  # ENOSPC: the disk filled up under us
                raise NotEnoughDisk(f"the disk holding {models_dir} filled up during {remote.path}") from exc
            raise DownloadError(f"{remote.path}: {_short(exc)}") from exc
        except Exception as exc:
            raise DownloadError(f"{remote.path}: {_short(exc)}") from exc
        try:
            verify_file(target, remote)
        except IntegrityError:
            target.unlink(missing_ok=True)
            raise
        verified.add(remote.path)
        state["verified"] = sorted(verified)
        _write_state(partial, state)
        counter.finish(remote)

    source = partial / variant.subfolder
    meta = {"id": variant.id, "name": variant.id, "variant": variant.id, "model": variant.model_id,
            "provider": variant.provider, "precision": variant.precision, "repo": variant.repo,
            "subfolder": variant.subfolder, "commit": commit}
    (source / "archivist.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    shutil.rmtree(source / ".cache", ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)  # a broken earlier install without genai_config.json
    os.replace(source, final)
    shutil.rmtree(partial, ignore_errors=True)
    return final


def remove_model(models_dir: Path, model_id: str) -> Path:
    """Delete an installed model folder (and any unfinished download of the same id)."""
    models_dir = Path(models_dir)
    folder = models_dir / model_id
    partial = partial_folder(models_dir, model_id)
    if not folder.is_dir() and not partial.is_dir():
        raise ModelNotFound(f"no installed model is called {model_id!r} (see `archivist models list`)")
    if folder.resolve().parent != models_dir.resolve():
        raise ModelNotFound(f"{model_id!r} is not a folder directly in {models_dir}")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def unfinished_downloads(models_dir: Path) -> list[dict[str, Any]]:
    """Downloads that stopped before installing: id, verified files, bytes on disk."""
    root = Path(models_dir) / PARTIAL
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        state = _read_state(folder)
        on_disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        found.append({"id": folder.name, "verified_files": len(state.get("verified", [])),
                      "bytes": on_disk, "commit": state.get("commit")})
    return found


class _Counter:
    """Adds the hub client's per-file progress into one total and checks for cancel."""

    def __init__(self, variant_id: str, total: int, done: int,
                 progress: ProgressCallback | None, cancel: threading.Event | None) -> None:
        self.variant_id, self.total, self.done = variant_id, total, done
        self.progress, self.cancel = progress, cancel
        self.file_start = done
        self.filename = ""

    def start(self, remote: RemoteFile) -> None:
        self.file_start = self.done
        self.filename = remote.path.rsplit("/", 1)[-1]
        self.add(0)

    def finish(self, remote: RemoteFile) -> None:
        self.done = self.file_start + remote.size  # exact, whatever the retries counted
        self.add(0)

    def add(self, n: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(f"download of {self.variant_id} cancelled; `install` again to resume")
        self.done += n
        if self.progress is not None:
            self.progress(Progress(self.variant_id, self.filename, self.done, self.total))

    def bar_class(self) -> type:
        from tqdm import tqdm

        counter = self

        class Bar(tqdm):
            """The hub client's progress bar, silenced and turned into callbacks."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                counter.done = counter.file_start + int(kwargs.get("initial") or 0)

            def update(self, n: float | None = 1) -> bool | None:
                counter.add(int(n or 0))
                return None

        return Bar


def _read_state(partial: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((partial / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _write_state(partial: Path, state: dict[str, Any]) -> None:
    tmp = partial / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(tmp, partial / STATE_FILE)


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
