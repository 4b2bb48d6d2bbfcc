"""A bench sweep dispatched over a Ray cluster: one Ray task per configuration.

Each task asks Ray for the GPUs its configuration needs (whole GPUs, so no other task shares
them; none for ``--device cpu``) and, with a GPU type, for Ray's ``accelerator_type:<T>``
resource, which Ray puts on every node whose GPUs are of that type. On its node the task runs
the same sweep code as a local run (one configuration: its own load, idle baseline, protocol
and power trace) with that node's own provenance, and returns the result line and the trace;
the driver writes both where a local run writes them, so a re-run resumes across the cluster.

Ray is imported only inside these functions: the ``cluster`` extra is optional, and nothing
else in the project imports this module at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.results import append_jsonl, done_keys

# A node whose task dies (node lost, worker killed) gets one more try, on whichever node Ray
# picks; an exception raised by the measurement itself is recorded, not retried.
MAX_RETRIES = 1
# One CPU per task keeps a node from running more configurations at once than it has cores
# for; GPU tasks are further limited by the node's GPUs.
CPUS_PER_TASK = 1
ACCEL_PREFIX = "accelerator_type:"
_HOW = ("Pass the head's address (HOST:6379 from `ray start --head`, or ray://HOST:10001 for a KubeRay "
        "head's client port), or 'auto' with RAY_ADDRESS set")

Event = Callable[[str, dict[str, Any]], None]


class ClusterError(RuntimeError):
    """The cluster cannot be reached or cannot run the sweep as asked (a usage problem)."""


class NodeInfo(BaseModel):
    """One alive Ray node, as the scheduler sees it."""

    model_config = ConfigDict(extra="forbid")

    node_id: str
    address: str
    hostname: str = ""
    cpus: float = 0.0
    gpus: float = 0.0
    accelerator_types: list[str] = []
    resources: dict[str, float] = {}

    def label(self) -> str:
        kind = f"{self.gpus:g}x {'/'.join(self.accelerator_types)} GPU" if self.gpus else "no GPU"
        if not self.gpus and self.accelerator_types:
            kind = f"no GPU, accelerator type {'/'.join(self.accelerator_types)}"
        name = self.hostname or self.address
        return f"{name} {self.address} node {self.node_id[:12]} ({kind}, {self.cpus:g} CPU)"


@dataclass(frozen=True)
class Request:
    """What one configuration's task asks the Ray scheduler for."""

    num_gpus: int
    num_cpus: int = CPUS_PER_TASK
    accelerator_type: str | None = None

    def describe(self) -> str:
        parts = [f"{self.num_gpus} GPU", f"{self.num_cpus} CPU"]
        if self.accelerator_type:
            parts.append(f"{ACCEL_PREFIX}{self.accelerator_type}")
        return ", ".join(parts)

    def fits(self, node: NodeInfo) -> bool:
        if node.cpus < self.num_cpus or node.gpus < self.num_gpus:
            return False
        return not self.accelerator_type or node.resources.get(ACCEL_PREFIX + self.accelerator_type, 0) > 0

    def at_once(self, node: NodeInfo) -> int:
        """How many tasks of this shape the node runs side by side."""
        n = int(node.cpus // self.num_cpus) if self.num_cpus else 1_000_000
        if self.num_gpus:
            n = min(n, int(node.gpus // self.num_gpus))
        return n if self.fits(node) else 0


def gpus_needed(cfg: Any, device: str) -> int:
    """GPUs a configuration runs on: none on CPU; otherwise its own count where the configuration
    has one (a tensor-parallel configuration), else one."""
    if device == "cpu":
        return 0
    return max(1, int(getattr(cfg, "gpu_count", None) or 1))


def request_for(cfg: Any, device: str, gpu_type: str | None) -> Request:
    return Request(num_gpus=gpus_needed(cfg, device), accelerator_type=gpu_type or None)


# --- the cluster -------------------------------------------------------------------------------

def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs the cluster extra (Ray is not installed): "
                           "pip install \"ecolobster[cluster]\"") from None
    return ray


@contextlib.contextmanager
def connected(address: str) -> Iterator[Any]:
    """This process connected to an existing cluster (never a new one) for the block; a connection
    that was already open (a caller's own) is left open."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    connect(ray, address)
    try:
        yield ray
    finally:
        ray.shutdown()


def _unreachable(address: str) -> str | None:
    """Why HOST:PORT takes no connection, or None; Ray itself would retry for over a minute."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return None  # 'auto' and the like: Ray resolves them itself, and fails fast
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        return f"nothing answers at {host}:{port} ({err.strerror or err})"
    return None


def connect(ray: Any, address: str) -> None:
    why = _unreachable(address)
    if why:
        raise ClusterError(f"could not connect to the Ray cluster at {address!r}: {why}. {_HOW}")
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except Exception as err:  # Ray raises ConnectionError, RuntimeError or ValueError here
        raise ClusterError(
            f"could not connect to the Ray cluster at {address!r}: {type(err).__name__}: "
            f"{(str(err).splitlines() or [''])[0].rstrip('.')}. {_HOW}") from None


def nodes(ray: Any) -> list[NodeInfo]:
    out = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = {k: float(v) for k, v in (n.get("Resources") or {}).items()}
        out.append(NodeInfo(
            node_id=n["NodeID"], address=n.get("NodeManagerAddress", ""),
            hostname=n.get("NodeManagerHostname", ""), cpus=res.get("CPU", 0.0), gpus=res.get("GPU", 0.0),
            accelerator_types=sorted(k[len(ACCEL_PREFIX):] for k in res if k.startswith(ACCEL_PREFIX)),
            resources=res))
    return out


# --- the plan ----------------------------------------------------------------------------------

@dataclass
class PlanLine:
    key: str
    request: Request
    nodes: list[NodeInfo] = field(default_factory=list)
    skipped: bool = False  # already in the results file

    def text(self) -> str:
        if self.skipped:
            return f"{self.key}: already measured in the results file, skipped"
        if not self.nodes:
            return f"{self.key}: needs {self.request.describe()}: NO node of the cluster offers that"
        where = "; ".join(f"{n.label()} x{self.request.at_once(n)}" for n in self.nodes)
        return f"{self.key}: needs {self.request.describe()}; can run on {where}"


def make_plan(configs: Sequence[Any], device: str, gpu_type: str | None, cluster: Sequence[NodeInfo],
              out_path: str | Path) -> list[PlanLine]:
    """Which nodes can take each configuration (Ray picks among them when the task starts)."""
    done = done_keys(out_path)
    lines = []
    for c in configs:
        req = request_for(c, device, gpu_type)
        lines.append(PlanLine(c.key(), req, [n for n in cluster if req.fits(n)], c.key() in done))
    return lines


def check_gpu_type(gpu_type: str | None, cluster: Sequence[NodeInfo]) -> None:
    if not gpu_type:
        return
    known = sorted({t for n in cluster for t in n.accelerator_types})
    if gpu_type not in known:
        raise ClusterError(f"--gpu-type {gpu_type}: no node of the cluster has that accelerator type; "
                           f"the cluster's types: {', '.join(known) or 'none (no node reports a GPU type)'}")


# --- on a node ---------------------------------------------------------------------------------

def measure_on_node(sweep_cls: Any, cfg: Any, settings: Any, device: str, sweep_kwargs: dict[str, Any],
                    loader: Any = None) -> dict[str, Any]:
    """One configuration, measured on the node Ray put this task on, as a local sweep does."""
    import ray

    from engine.power import EnergyMonitor, NvmlUnavailable, open_nvml
    from engine.provenance import capture

    monitor = EnergyMonitor.time_only()
    names: list[str] = []
    driver = None
    notes: list[str] = []
    if device == "cuda":
        try:  # Ray set CUDA_VISIBLE_DEVICES to this task's GPUs: NVML reads only those
            monitor, names, driver = open_nvml(settings.sample_interval_s, settings.min_counter_window_s)
        except NvmlUnavailable as err:
            notes.append(f"NVML unavailable on this node ({err}): throughput only")
    prov = capture(device, names, driver, settings.describe()).model_copy(
        update={"node_id": ray.get_runtime_context().get_node_id(), "node_name": socket.gethostname()})
    with tempfile.TemporaryDirectory(prefix="ecolobster-ray-") as tmp:
        traces = Path(tmp) / "traces"
        try:
            sweep = sweep_cls([cfg], settings, device, Path(tmp) / "r.jsonl", traces, monitor=monitor,
                              loader=loader, provenance=prov, **sweep_kwargs)
            [res] = sweep.run()
        finally:
            monitor.close()
        if notes:
            res = res.model_copy(update={"notes": [*res.notes, *notes]})
        trace = None
        if res.trace_file and (traces / res.trace_file).exists():
            trace = (traces / res.trace_file).read_text(encoding="utf-8")
    return {"result": res.model_dump(mode="json"), "trace": trace}


# --- the driver --------------------------------------------------------------------------------

@dataclass
class Outcome:
    results: list[Any]
    cancelled: list[str] = field(default_factory=list)  # keys left unmeasured by Ctrl-C


def _failed(sweep_cls: Any, cfg: Any, settings: Any, device: str, reason: str) -> Any:
    return sweep_cls.result_cls(key=cfg.key(), status="error", config=cfg, device=device, error=reason,
                                started_at=dt.datetime.now(dt.UTC).replace(microsecond=0), settings=settings)


def _reason(ray: Any, err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, ray.exceptions.RayTaskError):
        return f"raised on its node: {text}"
    return (f"its task died on the cluster and the retry ({MAX_RETRIES}) failed too: "
            f"{type(err).__name__}: {text}")


def run(ray: Any, sweep_cls: Any, configs: Sequence[Any], settings: Any, device: str, out_path: str | Path,
        trace_dir: str | Path, gpu_type: str | None = None, sweep_kwargs: dict[str, Any] | None = None,
        on_event: Event | None = None, loader: Any = None, cluster: Sequence[NodeInfo] | None = None) -> Outcome:
    """Submit every configuration not yet in the results file, write each result line and trace as
    it comes back (in finishing order), and on Ctrl-C cancel what has not finished."""
    out_path, trace_dir = Path(out_path), Path(trace_dir)
    emit = on_event or (lambda kind, payload: None)
    cluster = nodes(ray) if cluster is None else cluster
    done = done_keys(out_path)
    for c in configs:
        if c.key() in done:
            emit("skip", {"key": c.key()})
    todo = [c for c in configs if c.key() not in done]
    remote = ray.remote(measure_on_node)
    results: list[Any] = []

    def save(res: Any, trace: str | None = None) -> None:
        if trace is not None and res.trace_file:
            trace_dir.mkdir(parents=True, exist_ok=True)
            (trace_dir / res.trace_file).write_text(trace, encoding="utf-8")
        append_jsonl(out_path, res.model_dump(mode="json"))
        results.append(res)
        emit("config_done", {"result": res})

    refs: dict[Any, Any] = {}
    pending: list[Any] = []
    try:
        for c in todo:
            req = request_for(c, device, gpu_type)
            if not any(req.fits(n) for n in cluster):  # Ray would wait for such a node for ever
                save(_failed(sweep_cls, c, settings, device, f"no node of the cluster offers {req.describe()}"))
                continue
            # SPREAD: configurations start on as many nodes as can take them, not packed on one.
            opts: dict[str, Any] = {"num_gpus": req.num_gpus, "num_cpus": req.num_cpus,
                                    "max_retries": MAX_RETRIES, "retry_exceptions": False,
                                    "scheduling_strategy": "SPREAD"}
            if req.accelerator_type:
                opts["accelerator_type"] = req.accelerator_type
            ref = remote.options(**opts).remote(sweep_cls, c, settings, device, sweep_kwargs or {}, loader)
            refs[ref] = c
            pending.append(ref)
            emit("submitted", {"config": c, "request": req})
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                cfg = refs[ref]
                try:
                    payload = ray.get(ref)
                except ray.exceptions.RayError as err:
                    save(_failed(sweep_cls, cfg, settings, device, _reason(ray, err)))
                    continue
                save(sweep_cls.result_cls.model_validate(payload["result"]), payload.get("trace"))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        measured = {r.key for r in results}
        return Outcome(results, [c.key() for c in todo if c.key() not in measured])
    return Outcome(results)


def node_kinds(results: Sequence[Any]) -> dict[tuple[str, str], list[str]]:
    """(GPU names, driver) -> the configuration keys measured on nodes of that kind."""
    kinds: dict[tuple[str, str], list[str]] = {}
    for r in results:
        p = r.provenance
        if p is None:
            continue
        kinds.setdefault((", ".join(p.gpu_names) or p.device, p.driver_version or "no driver"), []).append(r.key)
    return kinds
