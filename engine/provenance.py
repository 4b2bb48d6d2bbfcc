"""Provenance captured into every measured row: hardware, driver, software versions, protocol."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import logging
import platform
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)


PACKAGES = ("torch", "transformers", "bitsandbytes", "peft", "torchao", "accelerate", "codecarbon",
            "nvidia-ml-py")
_DEV = re.compile(r"(dev|nightly|\+git|\.g[0-9a-f]{7})", re.IGNORECASE)


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str
    gpu_names: list[str] = []
    gpu_count: int = 0
    gpu_key: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    versions: dict[str, str | None] = {}
    python_version: str = platform.python_version()
    nightly_build: bool = False
    nightly_packages: list[str] = []
    host: str = ""
    # Batch-1 decoding with eager generate is paced by the host CPU, so two machines with the same
    # GPU can differ (references/h200_measurements.md): the CPU model is part of the provenance.
    cpu_model: str = ""
    measured_at: dt.datetime
    protocol: str = ""
    # Set when the configuration ran as a task on a Ray cluster: the node that measured it.
    node_id: str | None = None
    node_name: str | None = None

    @property
    def measured_on(self) -> dt.date:
        return self.measured_at.date()

    def version(self, pkg: str) -> str | None:
        return self.versions.get(pkg)


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def is_dev_version(v: str | None) -> bool:
    return bool(v) and bool(_DEV.search(v or ""))


def host_hash() -> str:
    """A short, stable, non-identifying tag of this machine (for unique local row ids)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def gpu_catalog_key(names: Sequence[str]) -> str | None:
    """The GPU catalog key of the first GPU name, trying shorter prefixes of the NVML name
    ("NVIDIA H100 80GB HBM3" -> "H100 80GB" -> h100_sxm)."""
    if not names:
        return None
    try:
        from measurements.catalog import UnknownName, resolve_gpu
    except ImportError:  # pragma: no cover
        return None
    words = names[0].replace("NVIDIA", "").split()
    for n in range(len(words), 0, -1):
        try:
            return resolve_gpu(" ".join(words[:n])).key
        except UnknownName:
            continue
        except Exception:  # a catalog that fails to load: provenance keeps the raw name
            log.warning("the GPU catalog did not load; the row keeps the raw GPU name", exc_info=True)
            return None
    return None


def cpu_model() -> str:
    """The host CPU's model name (Linux /proc/cpuinfo, else what platform reports)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def capture(device: str, gpu_names: Sequence[str] = (), driver: str | None = None,
            protocol: str = "") -> Provenance:
    versions = {p: package_version(p) for p in PACKAGES}
    torch = sys.modules.get("torch")
    cuda = None
    if torch is not None:
        versions["torch"] = getattr(torch, "__version__", versions["torch"])
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
    nightly = sorted(p for p, v in versions.items() if is_dev_version(v))
    return Provenance(
        device=device, gpu_names=list(gpu_names), gpu_count=len(gpu_names),
        gpu_key=gpu_catalog_key(gpu_names) if gpu_names else None,
        driver_version=driver, cuda_version=cuda, versions=versions,
        nightly_build=bool(nightly), nightly_packages=nightly, host=host_hash(), cpu_model=cpu_model(),
        measured_at=dt.datetime.now(dt.UTC).replace(microsecond=0), protocol=protocol,
    )


def row_fields(p: Provenance) -> dict[str, Any]:
    """The MeasurementRow fields that provenance fills."""
    return {
        "torch_version": p.version("torch"), "transformers_version": p.version("transformers"),
        "bitsandbytes_version": p.version("bitsandbytes"), "torchao_version": p.version("torchao"),
        "peft_version": p.version("peft"), "cuda_version": p.cuda_version,
        "driver_version": p.driver_version, "nightly_build": p.nightly_build,
        "measured_on": p.measured_on,
    }


def describe(p: Provenance) -> str:
    """One sentence for a row's notes: what the versions columns cannot hold."""
    parts = [f"GPUs: {', '.join(p.gpu_names) or 'none'}", f"python {p.python_version}"]
    if p.cpu_model:
        parts.insert(1, f"CPU: {p.cpu_model}")
    if p.node_id:
        parts.append(f"Ray node {p.node_name or '?'} ({p.node_id[:12]})")
    for k in ("accelerate", "codecarbon", "nvidia-ml-py"):
        if p.versions.get(k):
            parts.append(f"{k} {p.versions[k]}")
    if p.nightly_packages:
        parts.append("dev/nightly builds: " + ", ".join(p.nightly_packages))
    return "; ".join(parts)
