"""Tensor-parallel inference (`ecolobster bench --tp N`): transformers' own tensor parallelism
(``from_pretrained(..., tp_plan="auto")``) in N processes started by ``torch.distributed.run``.

The bench command does not load a model itself: it writes a job file (the configurations still to
measure and the protocol) and starts ``python -m torch.distributed.run --standalone
--nproc_per_node N -m engine.parallel JOB``. Every rank runs the same sweep in lockstep, since each
generate step is a collective:

- the measuring windows synchronise CUDA and then meet at a barrier on every rank, so a window
  opens when all ranks are ready and closes when the last one has finished;
- rank 0 alone reads energy: NVML's counter on each of the N GPUs the ranks use, summed, with the
  power trace of every GPU (the trace CSV has one line per GPU per sample); the other ranks time
  the same windows without energy;
- rank 0 writes the results file; the others write theirs beside it (``.rank<k>``, discarded).

A synthetic model reaches ``from_pretrained`` as a random-weight checkpoint that rank 0 saves once
(engine.models.synthetic_checkpoint; built on the CPU when it does not fit one GPU), while the
other ranks wait at a barrier. On CPU the ranks use the gloo backend (what CI runs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.power import EnergyMonitor, cuda_sync
from engine.protocol import ProtocolSettings


class TPJob(BaseModel):
    """What the launcher hands to the ranks."""

    model_config = ConfigDict(extra="forbid")

    configs: list[dict[str, Any]]
    settings: ProtocolSettings
    device: str  # "cuda" or "cpu"
    tp: int
    out: str
    trace_dir: str | None = None
    sample_interval_s: float = 0.1


class FollowerMonitor(EnergyMonitor):
    """A rank other than 0: the same windows (and barriers) as rank 0, no energy reading."""

    @property
    def energy_available(self) -> bool:
        return True  # so it takes the idle-baseline window rank 0 takes, and meets its barriers


def _barrier_sync(device: str) -> Any:
    import torch.distributed as dist

    def sync() -> None:
        cuda_sync()
        if device.startswith("cuda"):
            import torch

            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()

    return sync


def _agree_with_rank0(device: str) -> Any:
    """Every rank acts on rank 0's verdict (gate re-runs, window repeats), else their collectives
    would part ways."""
    import torch.distributed as dist

    def agree(mine: bool) -> bool:
        box = [mine]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    return agree


def init_distributed(device: str) -> tuple[int, int, int]:
    """(rank, local_rank, world_size) with the process group up, as transformers would start it."""
    import torch
    import torch.distributed as dist

    rank, local, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        else:
            dist.init_process_group("gloo")
    return rank, local, world


def tp_loader(tp: int, rank: int, barrier: Any) -> Any:
    """A Sweep loader that loads every model tensor-parallel over the ``tp`` ranks."""

    def load(model_ref: str, precision: str, device: str, *, synthetic: bool = True,
             overrides: dict[str, int] | None = None, trust_remote_code: bool = False, **_: Any) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        from engine.models import (
            LoadedModel,
            ModelLoadError,
            apply_overrides,
            check_precision,
            count_params,
            synthetic_checkpoint,
            torch_dtype,
        )

        precision = check_precision(precision)
        if precision not in ("fp32", "fp16", "bf16"):
            raise ModelLoadError(f"tensor parallelism measures fp32, fp16 or bf16 here, not {precision}")
        t0 = time.perf_counter()
        notes: list[str] = []
        arch_key = None
        if synthetic:
            from measurements.catalog import resolve_model

            arch = apply_overrides(resolve_model(model_ref), overrides)
            arch_key, model_id = arch.key, arch.hub_id
            build_on = device
            if device.startswith("cuda"):
                free = torch.cuda.get_device_properties(0).total_memory
                build_on = "cuda" if arch.params_b * 1e9 * 2.2 < 0.8 * free else "cpu"
            if rank == 0:  # one rank writes the checkpoint, the others wait for it
                synthetic_checkpoint(arch, build_on, precision if precision != "fp32" else "bf16")
            barrier()
            source: Any = synthetic_checkpoint(arch, build_on, precision if precision != "fp32" else "bf16")
            notes.append("synthetic checkpoint saved once and loaded sharded through from_pretrained")
            if overrides:
                notes.append("architecture overridden: " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())))
        else:
            source = model_id = model_ref
        model = AutoModelForCausalLM.from_pretrained(source, tp_plan="auto", dtype=torch_dtype(precision),
                                                     trust_remote_code=trust_remote_code)
        model.eval()
        # DTensor parameters count their global size, so count_params is the whole model's.
        size = getattr(model, "tp_size", None) or getattr(model, "_tp_size", None)
        if size is not None and int(size) != tp:
            raise ModelLoadError(f"transformers sharded the model over {size} ranks, not {tp}")
        return LoadedModel(model=model, model_id=model_id, precision=precision,
                           weights="synthetic" if synthetic else "real", params_b=count_params(model),
                           load_s=time.perf_counter() - t0, device=device, arch_key=arch_key, notes=notes)

    return load


def worker(job_path: str) -> int:
    """One rank of a tensor-parallel sweep (the body of ``python -m engine.parallel JOB``)."""
    import torch.distributed as dist

    from engine.inference import InferenceConfig, Sweep
    from engine.power import NvmlUnavailable, _visible_nvml_indices
    from engine.provenance import capture

    job = TPJob.model_validate_json(Path(job_path).read_text(encoding="utf-8"))
    rank, local, world = init_distributed(job.device)
    if world != job.tp:
        raise SystemExit(f"started with {world} ranks for tensor parallel size {job.tp}")
    device = f"cuda:{local}" if job.device.startswith("cuda") else "cpu"
    sync = _barrier_sync(job.device)
    names: list[str] = []
    driver = None
    monitor: EnergyMonitor = FollowerMonitor(None, None, sync=sync)
    if rank == 0:
        monitor = EnergyMonitor(None, None, sync=sync)
        if job.device.startswith("cuda"):
            try:
                import pynvml

                from engine.power import NvmlReader, PowerSampler

                pynvml.nvmlInit()
                count = pynvml.nvmlDeviceGetCount()
                uuids = [str(pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
                reader = NvmlReader(_visible_nvml_indices(count, uuids)[:job.tp])  # the GPUs the ranks use
                monitor = EnergyMonitor(reader, PowerSampler(reader, job.sample_interval_s).start(), sync=sync,
                                        min_counter_window_s=job.settings.min_counter_window_s, align_counter=True)
                names, driver = reader.names(), reader.driver_version()
            except (ImportError, NvmlUnavailable) as err:
                print(f"warning: {err}. Measuring throughput only.", file=sys.stderr)
    prov = capture(job.device, names, driver, job.settings.describe()) if rank == 0 else None
    out = Path(job.out) if rank == 0 else Path(f"{job.out}.rank{rank}")
    configs = [InferenceConfig.model_validate(c) for c in job.configs]
    barrier = sync
    try:
        sweep = Sweep(configs, job.settings, device, out, job.trace_dir if rank == 0 else None, monitor=monitor,
                      loader=tp_loader(job.tp, rank, barrier), provenance=prov)
        sweep.agree = _agree_with_rank0(job.device)
        sweep.run()
    finally:
        monitor.close()
        dist.barrier()
        dist.destroy_process_group()
        if rank != 0:
            out.unlink(missing_ok=True)
    return 0


def launch_command(job_path: Path, tp: int, port: int | None = None) -> list[str]:
    """The torch.distributed.run command line that runs ``worker`` on ``tp`` ranks."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(tp)]
    cmd += ["--standalone"] if port is None else ["--master_addr", "127.0.0.1", "--master_port", str(port)]
    return [*cmd, "-m", "engine.parallel", str(job_path)]


def write_job(job: TPJob, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job.model_dump(mode="json")), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
