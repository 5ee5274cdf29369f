"""Airflow plugin: the one-line note of each finished ``sfx_run`` DAG run
(:mod:`operators.listeners.run_notes`)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from operators.listeners import run_notes


class SfxRunNotesPlugin(AirflowPlugin):
    """Registers the listener that writes the DAG-run notes (it runs in the scheduler)."""

    name = "sfxflow_run_notes"
    listeners = [run_notes]
