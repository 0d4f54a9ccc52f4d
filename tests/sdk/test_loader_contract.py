"""What the guide and the hook reference promise loaders, checked against the host.

``UnreadableDocument`` is a loader's answer about one file ("skipped, with the reason
shown"), not a fault of the plugin: a loader called under the host's guard must not be
switched off for the session because one file was unreadable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist import Document, UnreadableDocument, hookimpl
from archivist.context import PluginContext
from archivist.plugins import PluginHost


class PickyLoader:
    name = "picky"
    extensions = (".picky",)

    def load(self, path: Path) -> Document:
        raise UnreadableDocument("this file is not picky enough")


class PickyPlugin:
    @hookimpl
    def register_loaders(self, register):
        register(PickyLoader())


def test_an_unreadable_file_does_not_disable_the_loader_plugin(tmp_path: Path) -> None:
    host = PluginHost(PluginContext(home=tmp_path), load_entry_points=False)
    host.add("picky", PickyPlugin())
    [loader] = host.loaders()
    with pytest.raises(UnreadableDocument, match="not picky enough"):
        host.run(loader, "load", tmp_path / "a.picky")
    assert host.enabled("picky")
    assert host.errors == []
