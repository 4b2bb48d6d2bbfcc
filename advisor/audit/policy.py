"""The auditor's policy: limits and thresholds that are product choices, not measured figures.

Measured figures (energy deltas, crossovers) come from the measurements dataset through
advisor.audit.evidence. What is here decides *when a pattern counts as a trap* where the dataset
has nothing to say (how many checkpoints is "very often"), and the guards that keep a scan safe.
Each value can be overridden in `[tool.ecolobster]` of pyproject.toml (key in brackets).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from advisor.answer import Mood


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Files larger than this are skipped with a diagnostic (a generated or data file, not code).
    max_file_mb: float = Field(default=5.0, gt=0)  # [max-file-mb]
    # Notebooks carry outputs (images): their limit is on the raw file, the code is far smaller.
    max_notebook_mb: float = Field(default=50.0, gt=0)  # [max-notebook-mb]
    # The time one file may take (reading, parsing, every rule); a file over it is reported as
    # skipped, so no single input can hang a scan (CI, the MCP server).
    time_budget_s: float = Field(default=2.0, gt=0, le=3600)  # [time-budget-s]
    # ECO201: a run that writes more checkpoints than this saves "very often".
    max_checkpoints_per_run: int = Field(default=20, ge=1)  # [max-checkpoints-per-run]
    # ECO201 when the run length is unknown: saving every fewer steps than this is flagged, at
    # low confidence (the run length decides, and we cannot see it).
    min_save_interval_steps: int = Field(default=50, ge=1)  # [min-save-interval-steps]
    # ECO206: runs of at most this many optimizer steps are smoke tests, not long jobs.
    short_run_steps: int = Field(default=100, ge=1)  # [short-run-steps]
    # ECO203: 16-bit LoRA "fits" when the 16-bit weights take at most this share of GPU memory
    # (the rest holds activations, adapter gradients and optimizer state).
    lora16_weight_share: float = Field(default=0.5, gt=0, le=1)  # [lora16-weight-share]
    # Findings labelled "best practice" (no dataset evidence) never go above this mood: the
    # mood scale is a measure of waste, and without a measurement we only say "worth fixing".
    best_practice_mood: Mood = "yellow"


BYTES_FP16 = 2  # bytes per parameter of a 16-bit weight: the definition of the format
