"""`ecolobster bench --ray` on a real three-node Ray cluster started on this machine: a head and two
worker nodes (`ray start`), one of them advertising an accelerator-type resource. A CPU sweep of
a tiny synthetic model runs through it and is compared with the same sweep run locally; then a
worker node is killed while it measures, an OOM and a dying task are recorded, and Ctrl-C
cancels what is left. The cluster is taken down at the end whatever happens.

Ray rewrites 127.0.0.1 to the machine's outward address on Linux, so the nodes use other
loopback addresses (127.0.0.2-4), which it keeps. The nodes are stopped by killing the processes
this test started (and their children) by pid, never with `ray stop`, which would stop every
Ray process on the machine, other sessions' included.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.protocol import ProtocolSettings

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}
QUICK = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0, max_reruns=0)
ACCEL = "TESTGPU"


def _free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class LocalCluster:
    """A head (no CPUs: the driver lives there, tasks go to the workers) and two one-CPU workers."""

    def __init__(self) -> None:
        # Short: Ray's Unix sockets live under it, and their paths are limited to 107 characters.
        self.tmp = Path(tempfile.mkdtemp(prefix="ecl-ray-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.head_ip = "127.0.0.2"
        self.port = _free_port(self.head_ip)
        self.address = f"{self.head_ip}:{self.port}"
        # Workers import this worktree's engine; a dead node is noticed in about a second.
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0",
                        RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
                        RAY_health_check_initial_delay_ms="0")
        self.node_ids: dict[str, str] = {}

    def _start(self, name: str, ip: str, args: list[str]) -> None:
        cmd = [str(RAY), "start", "--block", "--disable-usage-stats", "--node-ip-address", ip,
               "--object-store-memory", str(80 * 2**20), "--dashboard-agent-listen-port", str(_free_port(ip)),
               "--node-manager-port", str(_free_port(ip)), "--object-manager-port", str(_free_port(ip)), *args]
        log = (self.tmp / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.tmp)

    def start(self) -> None:
        self._start("head", self.head_ip, ["--head", "--port", str(self.port), "--num-cpus", "0",
                                           "--include-dashboard=false", "--dashboard-port",
                                           str(_free_port(self.head_ip)), "--temp-dir", str(self.tmp)])
        self._wait(lambda: self._port_open(), 60, "the head's GCS port")
        import ray

        ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
        try:
            # One worker at a time: two raylets registering at once on two loaded cores can miss
            # their start-up deadline.
            for k, (name, ip, extra) in enumerate(
                    [("accel", "127.0.0.3", ["--resources", json.dumps({f"accelerator_type:{ACCEL}": 1})]),
                     ("plain", "127.0.0.4", [])]):
                self._start(name, ip, ["--address", self.address, "--num-cpus", "1", *extra])
                self._wait(lambda k=k: len([n for n in ray.nodes() if n["Alive"]]) == 2 + k, 60,
                           f"worker node {name}")
            for n in ray.nodes():
                ip = n["NodeManagerAddress"]
                name = {"127.0.0.2": "head", "127.0.0.3": "accel", "127.0.0.4": "plain"}[ip]
                self.node_ids[name] = n["NodeID"]
        finally:
            ray.shutdown()

    def _port_open(self) -> bool:
        try:
            socket.create_connection((self.head_ip, self.port), 0.5).close()
            return True
        except OSError:
            return False

    def _wait(self, ok: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > end:
                logs = "\n".join(f"{p.name}: " + p.read_text(errors="replace")[-600:] for p in self.tmp.glob("*.log"))
                raise TimeoutError(f"the test cluster did not come up ({what}) in {timeout:.0f} s:\n{logs}")
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL one node: its `ray start` process and everything under it (raylet, its workers)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in [n for n in self.procs if n != "head"] + ["head"]:
            self.kill(name)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _bench(*extra: str) -> list[str]:
    ov = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]
    return ["bench", "--model", "qwen2.5-0.5b", "--synthetic", *ov, "--precision", "fp32", "--batch-size", "1", "2",
            "3", "4", "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "2", "--warmup", "1", "--pause", "0",
            "--device", "cpu", "--no-carbon", "--format", "json",
            # CV gates wide open: whether a gate passes on two loaded cores is timing, not the row
            "--cv-throughput", "10", "--max-reruns", "0", *extra]


def _comparable(row: Any) -> dict[str, Any]:
    """A row without what differs between two runs of one configuration: ids and times, timing
    figures, and where it ran (the notes keep their words, not their numbers or the node)."""
    d = row.model_dump(mode="json")
    for k in ("id", "source", "throughput_tok_s", "throughput_std", "prefill_ms", "decode_tok_s", "trace_file",
              "measured_on"):
        d.pop(k, None)
    notes = re.sub(r"; Ray node [^;]*", "", d.pop("notes"))
    d["notes"] = re.sub(r"\d+(\.\d+)?", "#", notes)
    return d


def test_plan_lists_the_nodes_each_configuration_can_run_on(cluster, capsys):
    from advisor.cli import main

    assert main(_bench("--ray", cluster.address, "--plan", "--gpu-type", ACCEL)) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["plan"]) == 4 and len(plan["nodes"]) == 3
    for p in plan["plan"]:
        assert p["nodes"] == [cluster.node_ids["accel"]] and p["num_gpus"] == 0 and p["accelerator_type"] == ACCEL
    assert main(_bench("--ray", cluster.address, "--plan", "--format", "rich")) == 0
    text = capsys.readouterr().out
    assert text.count("can run on") == 4 and "NO node" not in text
    # The head has no CPU for tasks: each configuration can go to either worker, one at a time.
    line = next(x for x in text.splitlines() if "bs1-" in x)
    assert "127.0.0.3" in line and "127.0.0.4" in line and "127.0.0.2 node" not in line.split("can run on")[1]
    assert main(_bench("--ray", cluster.address, "--plan", "--gpu-type", "H100")) == 2
    err = capsys.readouterr().err
    assert "--gpu-type H100" in err and ACCEL in err


def test_pinned_sweep_on_the_cluster_gives_the_rows_of_a_local_run_and_resumes(cluster, capsys, tmp_path):
    from advisor.cli import main
    from measurements.store import load_rows

    t0 = time.monotonic()
    out = tmp_path / "ray.jsonl"
    assert main(_bench("--ray", cluster.address, "--gpu-type", ACCEL, "--out", str(out))) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored_rows"] == 4
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["config"]["batch_size"] for x in lines) == [1, 2, 3, 4]
    # Every configuration ran on the node with the accelerator-type resource, and says so.
    assert {x["provenance"]["node_id"] for x in lines} == {cluster.node_ids["accel"]}
    assert all(x["status"] == "ok" and x["provenance"]["node_name"] for x in lines)
    ray_rows = {r.batch_size: r for r in load_rows() if r.id in report["row_ids"]}
    assert all("Ray node" in r.notes and "ecolobster bench --ray" in r.source for r in ray_rows.values())
    assert all(cluster.node_ids["accel"][:8] in r.id for r in ray_rows.values())  # never a local row's id

    local = tmp_path / "local.jsonl"
    assert main(_bench("--out", str(local))) == 0
    local_ids = json.loads(capsys.readouterr().out)["row_ids"]
    local_rows = {r.batch_size: r for r in load_rows() if r.id in local_ids}
    assert sorted(local_rows) == sorted(ray_rows) == [1, 2, 3, 4]
    for b in local_rows:
        on_ray, here = _comparable(ray_rows[b]), _comparable(local_rows[b])
        assert on_ray["notes"].split("; ") == here["notes"].split("; ")
        assert on_ray == here
        assert ray_rows[b].throughput_tok_s > 0 and ray_rows[b].n_runs == 2

    # Run again: everything is in the results file, so nothing goes to the cluster.
    assert main(_bench("--ray", cluster.address, "--gpu-type", ACCEL, "--out", str(out))) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["stored_rows"] == 0 and captured.err.count("already measured") == 4
    assert len(out.read_text().splitlines()) == 4
    print(f"pinned sweep + local + resume: {time.monotonic() - t0:.1f} s")


def test_cluster_flags_reject_bad_input_without_a_cluster(capsys):
    from advisor.cli import main

    assert main(_bench("--plan")) == 2
    assert "--ray" in capsys.readouterr().err
    assert main(_bench("--gpu-type", "A100")) == 2
    assert "--ray" in capsys.readouterr().err
    assert main(_bench("--ray", "--gpu-type", " ")) == 2
    assert "accelerator type" in capsys.readouterr().err
    port = _free_port("127.0.0.2")  # nothing listens there: a clear error at once, not Ray's minute of retries
    t0 = time.monotonic()
    assert main(_bench("--ray", f"127.0.0.2:{port}")) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.2:{port}" in err and "nothing answers" in err and "ray start --head" in err
    assert time.monotonic() - t0 < 10


def test_the_advisor_never_imports_ray():
    code = ("import sys, advisor, advisor.cli, engine.cli; advisor.cli.build_parser(); "
            "print([m for m in ('ray', 'engine.cluster') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert out.strip() == "[]"


def test_finetune_steps_run_on_the_cluster_too(cluster, capsys, tmp_path):
    from advisor.cli import main
    from measurements.store import load_rows

    ov = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]
    out = tmp_path / "ft.jsonl"
    assert main(["bench", "--finetune", "--model", "qwen2.5-0.5b", "--synthetic", *ov, "--method", "lora", "--rank", "4",
                 "--seq-len", "16", "--steps", "2", "--warmup", "1", "--pause", "0", "--device", "cpu", "--no-carbon",
                 "--ray", cluster.address, "--gpu-type", ACCEL, "--out", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [line] = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["status"] == "ok" and line["provenance"]["node_id"] == cluster.node_ids["accel"]
    assert line["trainable_params"] == 2 * 4 * (128 + 96 + 96 + 128 + 192 + 192 + 192)
    [row] = [r for r in load_rows() if r.id in report["row_ids"]]
    assert row.task == "finetune" and row.lora_rank == 4 and row.step_time_s > 0
    assert "ecolobster bench --finetune --ray" in row.source

# --- faults (they change the cluster, so they run last) ------------------------------------------

def _layered(layers: list[int]) -> list[Any]:
    from engine.inference import InferenceConfig

    return [InferenceConfig(model="qwen2.5-0.5b", precision="fp32", batch_size=1, prompt_tokens=8, gen_tokens=4,
                            overrides={**TINY, "layers": n}) for n in layers]


def _fault_loader(marks: str, doomed_node: str, sleep_unless_first: bool = False):
    """A loader that behaves by the configuration's layer count, leaving a mark (layers, node, pid)
    each time a task starts: on the doomed node it waits to be killed; 3 layers: CUDA OOM; 4 layers:
    the worker process dies, every time. Defined in a function so Ray ships it by value."""

    def loader(model: str, precision: str, device: str, **kw: Any) -> Any:
        import os as os_
        import time as time_
        from pathlib import Path as Path_

        import ray as ray_
        import torch

        from engine.models import load_model

        layers = kw["overrides"]["layers"]
        node = ray_.get_runtime_context().get_node_id()
        first = not any(Path_(marks).iterdir())
        Path_(marks, f"{layers}-{node}-{os_.getpid()}").touch()
        if node == doomed_node or (sleep_unless_first and not first):
            time_.sleep(120)  # the test kills this node or cancels this task meanwhile
        if layers == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        if layers == 4:
            os_._exit(1)
        return load_model(model, precision, device, overrides=kw["overrides"])

    return loader


def _marks(d: Path) -> list[tuple[int, str, int]]:
    out = []
    for p in d.iterdir():
        layers, node, pid = p.name.split("-")
        out.append((int(layers), node, int(pid)))
    return out


def test_a_killed_worker_node_has_its_task_retried_and_faults_are_recorded(cluster, tmp_path):
    from engine import cluster as ec
    from engine.inference import Sweep

    t0 = time.monotonic()
    marks = tmp_path / "marks"
    marks.mkdir()
    doomed, survivor = cluster.node_ids["plain"], cluster.node_ids["accel"]
    killed: list[int] = []

    def kill_when_it_measures() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            hit = [m for m in _marks(marks) if m[1] == doomed]
            if hit:
                killed.append(hit[0][0])
                cluster.kill("plain")
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_it_measures, daemon=True)
    killer.start()
    out = tmp_path / "faults.jsonl"
    with ec.connected(cluster.address) as ray:
        outcome = ec.run(ray, Sweep, _layered([1, 2, 3, 4]), QUICK, "cpu", out, tmp_path / "traces",
                         loader=_fault_loader(str(marks), doomed))
    killer.join(timeout=5)
    assert killed, "no task ever started on the node to be killed"
    by_layers = {r.config.overrides["layers"]: r for r in outcome.results}
    assert sorted(by_layers) == [1, 2, 3, 4] and not outcome.cancelled
    # The configuration measuring on the killed node started again on the other one.
    starts = _marks(marks)
    assert {node for layers, node, _ in starts if layers == killed[0]} == {doomed, survivor}
    assert by_layers[1].status == by_layers[2].status == "ok"
    assert {by_layers[1].provenance.node_id, by_layers[2].provenance.node_id} == {survivor}
    assert by_layers[3].status == "oom" and "out of memory" in by_layers[3].error
    # A task whose worker dies on every try: two tries, then an error that says why.
    assert len([m for m in starts if m[0] == 4]) == 2
    assert by_layers[4].status == "error" and "died" in by_layers[4].error and "retry" in by_layers[4].error
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((x["config"]["overrides"]["layers"], x["status"]) for x in lines) == [
        (1, "ok"), (2, "ok"), (3, "oom"), (4, "error")]
    print(f"fault sweep: {time.monotonic() - t0:.1f} s (the killed node was measuring {killed[0]} layers)")


def test_ctrl_c_cancels_the_tasks_left_and_keeps_what_finished(cluster, tmp_path):
    from engine import cluster as ec
    from engine.inference import Sweep

    marks = tmp_path / "marks"
    marks.mkdir()

    def interrupt(kind: str, payload: dict[str, Any]) -> None:
        if kind == "config_done":
            raise KeyboardInterrupt

    out = tmp_path / "cancel.jsonl"
    configs = _layered([1, 2, 5])
    with ec.connected(cluster.address) as ray:
        outcome = ec.run(ray, Sweep, configs, QUICK, "cpu", out, tmp_path / "traces", on_event=interrupt,
                         loader=_fault_loader(str(marks), "none", sleep_unless_first=True))
    [done] = outcome.results
    assert done.status == "ok" and len(outcome.cancelled) == 2
    assert sorted([done.key, *outcome.cancelled]) == sorted(c.key() for c in configs)
    assert [json.loads(x)["key"] for x in out.read_text().splitlines()] == [done.key]
    # The task that had started after it was stopped (its worker process ended), not left running.
    started_later = [pid for layers, _, pid in _marks(marks) if layers != done.config.overrides["layers"]]
    end = time.monotonic() + 20
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
              for p in started_later) and time.monotonic() < end:
        time.sleep(0.2)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in started_later)


def test_bench_keeps_each_node_kind_apart_and_stores_what_finished_before_ctrl_c(monkeypatch, capsys, tmp_path):
    """The driver's side without a cluster: results from an A100 node and an L4 node with different
    drivers become rows that each name their own GPU and driver, and an interrupted sweep still
    stores what finished and exits 130."""
    from advisor.cli import main
    from engine import cluster as ec
    from engine.inference import Sweep
    from engine.provenance import capture
    from measurements.store import load_rows

    [r1, r2] = Sweep(_layered([1, 2]), QUICK, "cpu", tmp_path / "local.jsonl").run()
    nodes = [("NVIDIA A100-SXM4-80GB", "550.54", "a" * 56), ("NVIDIA L4", "535.104", "b" * 56)]
    made = [r.model_copy(update={"provenance": capture("cuda", [g], d, QUICK.describe()).model_copy(
        update={"node_id": n, "node_name": f"n{k}"})}) for k, (r, (g, d, n)) in enumerate(zip([r1, r2], nodes, strict=True))]

    @contextlib.contextmanager
    def connected(address: str):
        yield None

    monkeypatch.setattr(ec, "connected", connected)
    monkeypatch.setattr(ec, "nodes", lambda ray: [])
    monkeypatch.setattr(ec, "run", lambda *a, **k: ec.Outcome(made, cancelled=["syn-left-over"]))
    rc = main(_bench("--ray", "127.0.0.2:1", "--out", str(tmp_path / "r.jsonl")))
    captured = capsys.readouterr()
    assert rc == 130
    report = json.loads(captured.out)
    assert report["stored_rows"] == 2
    rows = sorted((r for r in load_rows() if r.id in report["row_ids"]), key=lambda r: r.gpu)
    assert [(r.gpu, r.driver_version) for r in rows] == [("a100_80gb", "550.54"), ("l4", "535.104")]
    assert "Ray node n0" in rows[0].notes and "Ray node n1" in rows[1].notes
    assert "2 kinds of node" in captured.err and "NVIDIA L4 (driver 535.104): 1" in captured.err
    assert "interrupted: 1 configuration(s) cancelled" in captured.err
