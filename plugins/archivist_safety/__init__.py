"""Archivist's built-in safety plugin: screens input, passages and output.

Registered through the ``archivist`` entry point ``safety``, like any third-party
plugin, and importing only what :mod:`archivist` exports publicly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from archivist import PluginContext, SafetyFilter, hookimpl


@hookimpl
def register_safety_filters(register: Callable[[SafetyFilter], None], context: PluginContext) -> None:
    settings: dict[str, Any] = context.settings.get("safety", {}) if context is not None else {}
    if settings.get("enabled", True) is False:
        return
    # Imported here, not at module level: plugin discovery (and `archivist --help`)
    # must not load numpy and the classifier.
    from archivist_safety.filter import ArchivistSafetyFilter
    from archivist_safety.judge import ModelJudge

    screener = ArchivistSafetyFilter.from_settings(settings, home=context.home if context is not None else None)
    if context is not None and screener.policy.judge:
        screener.judge = ModelJudge(context.ask_model, screener.policy.judge_timeout_s)
    # Load the learned layer now, off the caller's thread (building the sentence encoder
    # from the local wheel on a first run), so the first screened sentence does not pay
    # for it and stays inside the host's time limit; until it is ready (or if it cannot
    # be had) the filter screens with its rules alone, and says so in the log.
    threading.Thread(target=screener.warm_up, name="archivist-safety-warm-up", daemon=True).start()
    register(screener)


@hookimpl
def register_commands(cli: Any, context: PluginContext) -> None:
    from archivist_safety.command import build_group

    settings = context.settings.get("safety", {}) if context is not None else {}
    cli.add_command(build_group(settings, context.home if context is not None else None,
                                ask=context.ask_model if context is not None else None))


__all__ = ["register_commands", "register_safety_filters"]
