"""Load a model for measuring: real weights by hub id or local path, or a synthetic model built
from the architecture catalog with random weights (DESIGN.md principle 5: throughput, power and
memory depend on shapes, not on the values of the weights).

Quantised real models go through ``from_pretrained`` with a ``BitsAndBytesConfig``. A synthetic
quantised model is built in memory on the GPU (``quant_build="memory"``, the default): the 16-bit
model is built on the device and each ``nn.Linear`` but the output head is swapped for the
bitsandbytes layer transformers' own integration puts there (``Linear4bit`` NF4, or
``Linear8bitLt`` with the precision's outlier threshold), quantised as it is swapped, so no
checkpoint is written (saving and reloading a 7B took 24 s). ``quant_build="checkpoint"`` keeps the
old path: a 16-bit checkpoint in a scratch directory (once per architecture) reloaded quantised.

Precisions: fp32, fp16, bf16; nf4 (optionally double-quantised); int8_mixed (LLM.int8() with
outlier threshold 6.0, bitsandbytes' default) and int8_pure (threshold 0.0, seed 001's ablation);
fp8 through torchao when it is installed (weight-only or dynamic activation + weight, eager or
``torch.compile``).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from measurements.schema import PRECISIONS, ModelArch

if TYPE_CHECKING:  # pragma: no cover
    import torch

QUANTISED = ("nf4", "int8_mixed", "int8_pure")
INT8_THRESHOLDS = {"int8_mixed": 6.0, "int8_pure": 0.0}
Fp8Mode = Literal["weight_only", "dynamic"]
# Shape fields a test or a user may override (e.g. a tiny model for a CPU run).
OVERRIDABLE = ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab")


class ModelLoadError(RuntimeError):
    """The model could not be built or loaded; the message says what to change."""


@dataclass
class LoadedModel:
    model: Any
    model_id: str
    precision: str
    weights: Literal["real", "synthetic"]
    params_b: float
    load_s: float
    device: str
    arch_key: str | None = None
    notes: list[str] = field(default_factory=list)
    quant: dict[str, Any] = field(default_factory=dict)


def check_precision(precision: str) -> str:
    p = precision.strip().lower()
    if p == "int8":
        raise ModelLoadError("'int8' is ambiguous: use int8_mixed (threshold 6.0) or int8_pure (threshold 0.0)")
    built = [x for x in PRECISIONS if x != "mxfp4"]  # mxfp4 rows come from vLLM; this engine cannot build it
    if p not in built:
        raise ModelLoadError(f"unknown precision '{precision}'; accepted: {', '.join(built)}")
    return p


def parse_overrides(items: list[str] | None) -> dict[str, int]:
    """``["layers=2", "hidden=64"]`` -> {"layers": 2, "hidden": 64}, with clear errors."""
    out: dict[str, int] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in OVERRIDABLE:
            raise ModelLoadError(f"bad architecture override '{item}': use KEY=INT with KEY one of "
                                 f"{', '.join(OVERRIDABLE)}")
        try:
            out[key] = int(val)
        except ValueError:
            raise ModelLoadError(f"override '{item}': '{val}' is not an integer") from None
        if out[key] < 1:
            raise ModelLoadError(f"override '{item}': must be >= 1")
    return out


def apply_overrides(arch: ModelArch, overrides: dict[str, int] | None) -> ModelArch:
    if not overrides:
        return arch
    data = arch.model_dump()
    data.update(overrides)
    if "hidden" in overrides or "heads" in overrides:
        data.setdefault("head_dim", data["hidden"] // data["heads"])
        if "head_dim" not in overrides:
            data["head_dim"] = data["hidden"] // data["heads"]
    try:
        return ModelArch.model_validate(data)
    except Exception as err:
        raise ModelLoadError(f"the overridden architecture is not valid: {err}") from None


def arch_config(arch: ModelArch) -> Any:
    """A transformers config of exactly the catalog's shapes, for ``from_config``."""
    from transformers import AutoConfig

    kwargs: dict[str, Any] = dict(
        vocab_size=arch.vocab, hidden_size=arch.hidden, intermediate_size=arch.intermediate,
        num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads, head_dim=arch.head_dim,
        tie_word_embeddings=arch.tied_embeddings, max_position_embeddings=arch.context_length,
        # No special tokens: nothing can end a synthetic generation early, and no default id
        # (e.g. Phi-3's 32000) falls outside an overridden vocabulary.
        bos_token_id=None, eos_token_id=None, pad_token_id=None, use_cache=True,
    )
    if arch.num_experts:
        kwargs["num_local_experts"] = arch.num_experts
        kwargs["num_experts_per_tok"] = arch.experts_per_token or 2
    try:
        return AutoConfig.for_model(arch.model_type, **kwargs)
    except (KeyError, ValueError) as err:
        raise ModelLoadError(f"transformers has no config class for model_type '{arch.model_type}' "
                             f"({err}); upgrade transformers or pick another architecture") from None


def torch_dtype(name: str) -> torch.dtype:
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name not in table:
        raise ModelLoadError(f"'{name}' is not a 16/32-bit float precision ({', '.join(table)})")
    return table[name]


def bnb_config(precision: str, compute: str = "fp16", double_quant: bool = False) -> Any:
    """The BitsAndBytesConfig of a quantised precision."""
    from transformers import BitsAndBytesConfig

    if precision == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=double_quant,
                                  bnb_4bit_compute_dtype=torch_dtype(compute))
    if precision in INT8_THRESHOLDS:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=INT8_THRESHOLDS[precision])
    raise ModelLoadError(f"'{precision}' is not a bitsandbytes precision ({', '.join(QUANTISED)})")


def count_params(model: Any) -> float:
    """Parameters in billions; a 4-bit packed weight counts its logical elements."""
    total = 0
    for p in model.parameters():
        n = p.numel()
        # bitsandbytes Params4bit stores two 4-bit values per uint8 element.
        if getattr(p, "quant_state", None) is not None or type(p).__name__ == "Params4bit":
            n *= 2
        total += n
    return total / 1e9


def scratch_dir() -> Path:
    """Where synthetic checkpoints are cached: a folder of this user's own, mode 0700, under
    $ECOLOBSTER_SCRATCH or the system temp dir.

    The temp dir is shared: a folder there that another user made (or a symlink planted in its
    place) could hand us a checkpoint we did not build, so it is used only when it is a real
    directory owned by us; one of ours that others can write is made private again."""
    import stat

    base = Path(os.environ.get("ECOLOBSTER_SCRATCH") or tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else None
    d = base / (f"ecolobster-synthetic-{uid}" if uid is not None else "ecolobster-synthetic")
    try:
        base.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(d):  # (a symlink in its place is caught below, not followed)
            d.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(d)
    except OSError as err:
        raise ModelLoadError(f"cannot make the synthetic-checkpoint folder {d} ({err.strerror or err}); set "
                             "ECOLOBSTER_SCRATCH to a folder you can write") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ModelLoadError(f"refusing the synthetic-checkpoint folder {d}: it is not a directory (a symlink or "
                             "a file someone put there); remove it or set ECOLOBSTER_SCRATCH to a private folder")
    if uid is not None and st.st_uid != uid:
        raise ModelLoadError(f"refusing the synthetic-checkpoint folder {d}: it belongs to uid {st.st_uid}, not you "
                             f"(uid {uid}), so its checkpoints could be anyone's; set ECOLOBSTER_SCRATCH to a "
                             "private folder")
    if st.st_mode & 0o077:
        os.chmod(d, 0o700)
    return d


def _device_map(device: str) -> Any:
    if device.startswith("cuda"):
        idx = int(device.split(":", 1)[1]) if ":" in device else 0
        return {"": idx}
    return {"": device}


def _arch_hash(arch: ModelArch, dtype: str) -> str:
    blob = json.dumps({k: getattr(arch, k) for k in
                       ("model_type", "layers", "hidden", "heads", "kv_heads", "head_dim",
                        "intermediate", "vocab", "tied_embeddings", "context_length", "num_experts")}
                      | {"dtype": dtype}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def build_synthetic(arch: ModelArch, dtype: str, device: str, seed: int = 0) -> Any:
    """Random-weight model of ``arch`` in a float dtype, built directly on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = arch_config(arch)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype(dtype))
    return model


def synthetic_checkpoint(arch: ModelArch, device: str, dtype: str = "bf16") -> Path:
    """A saved random-weight checkpoint of ``arch`` (built once, then reused from scratch_dir)."""
    path = scratch_dir() / f"{arch.key}-{_arch_hash(arch, dtype)}"
    if (path / "config.json").exists() and any(path.glob("*.safetensors")):
        return path
    model = build_synthetic(arch, dtype, device)
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():  # left by a killed save
        import shutil

        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tmp.rename(path)  # atomic: a killed save never leaves a half checkpoint under the real name
    del model
    free_memory()
    return path


def replace_linears(model: Any, make: Any, skip: Any = ()) -> list[str]:
    """Swap every plain ``nn.Linear`` of ``model`` (but the modules in ``skip``) for
    ``make(name, linear)``, one at a time, so a quantising ``make`` frees each 16-bit weight before
    the next is built. Returns the swapped names."""
    from torch import nn

    skip_ids = {id(m) for m in skip}
    swapped: list[str] = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is nn.Linear and id(child) not in skip_ids:
                full = f"{parent_name}.{child_name}" if parent_name else child_name
                setattr(parent, child_name, make(full, child))
                swapped.append(full)
    return swapped


def bnb_linear_factory(precision: str, compute_dtype: str, double_quant: bool, device: str) -> Any:
    """A ``make`` for replace_linears: the bitsandbytes layer of ``precision``, quantised on ``device``
    from the 16-bit weight already there (as ``from_pretrained`` + BitsAndBytesConfig builds it:
    NF4 blocksize 64, uint8 storage, statistics compressed with double quantisation; int8 without
    fp16 weights, threshold 6.0 or 0.0)."""
    import bitsandbytes as bnb
    import torch
    from torch import nn

    compute = torch_dtype(compute_dtype)

    def make(name: str, lin: Any) -> Any:
        bias = lin.bias is not None
        w = lin.weight.data
        new: Any  # a bitsandbytes layer of either kind
        if precision == "nf4":
            new = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=bias, compute_dtype=compute,
                                    compress_statistics=double_quant, quant_type="nf4", device="meta")
            new.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=double_quant,
                                           quant_type="nf4", module=new).to(device)
        elif precision in INT8_THRESHOLDS:
            new = bnb.nn.Linear8bitLt(lin.in_features, lin.out_features, bias=bias, has_fp16_weights=False,
                                      threshold=INT8_THRESHOLDS[precision], device="meta")
            # Int8Params.to() quantises only from CPU memory; the weight is on the GPU already.
            new.weight = bnb.nn.Int8Params(w.to(torch.float16), requires_grad=False,
                                           has_fp16_weights=False)._quantize(device)
        else:
            raise ModelLoadError(f"'{precision}' is not a bitsandbytes precision ({', '.join(QUANTISED)})")
        if bias:
            new.bias = nn.Parameter(lin.bias.data.to(compute), requires_grad=False)
        return new

    return make


def quantise_in_memory(model: Any, precision: str, compute_dtype: str, double_quant: bool, device: str,
                       make: Any = None) -> list[str]:
    """Quantise a 16-bit model in place on ``device``; the output head stays 16-bit, as
    transformers keeps it. ``make`` defaults to the bitsandbytes layers (a test passes a fake)."""
    make = make or bnb_linear_factory(precision, compute_dtype, double_quant, device)
    head = model.get_output_embeddings()
    swapped = replace_linears(model, make, skip=[head] if head is not None else [])
    # What peft's prepare_model_for_kbit_training and transformers read to know a model is quantised.
    flag = "is_loaded_in_4bit" if precision == "nf4" else "is_loaded_in_8bit"
    with contextlib.suppress(AttributeError):  # a read-only property in some transformers versions
        setattr(model, flag, True)
    free_memory()
    return swapped


def free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def _apply_fp8(model: Any, mode: Fp8Mode, compile_model: bool) -> tuple[Any, list[str]]:
    try:
        import torchao
        from torchao.quantization import quantize_
    except ImportError:
        raise ModelLoadError("fp8 needs torchao (pip install torchao); it is not installed") from None
    import torchao.quantization as q

    if mode == "weight_only":
        cfg = q.Float8WeightOnlyConfig()
    else:
        cfg = q.Float8DynamicActivationFloat8WeightConfig()
    quantize_(model, cfg)
    notes = [f"fp8 via torchao {torchao.__version__} {type(cfg).__name__}"]
    if compile_model:
        import torch

        model.forward = torch.compile(model.forward)
        notes.append("torch.compile on forward")
    else:
        notes.append("eager")
    return model, notes


def load_model(model_ref: str, precision: str, device: str = "cuda", *, synthetic: bool = True,
               arch: ModelArch | None = None, overrides: dict[str, int] | None = None,
               compute_dtype: str = "fp16", double_quant: bool = False, fp8_mode: Fp8Mode = "dynamic",
               compile_model: bool = False, trust_remote_code: bool = False,
               base_dtype: str | None = None, quant_build: Literal["memory", "checkpoint"] = "memory"
               ) -> LoadedModel:
    """Build or load a model ready to run.

    ``synthetic=True`` builds ``arch`` (resolved from ``model_ref`` through the catalog when not
    given) with random weights; ``synthetic=False`` loads ``model_ref`` as a hub id or a local
    path. ``compute_dtype`` is the dtype of non-quantised parts of quantised models and of fp8's
    activations; ``base_dtype`` overrides the dtype a float model is built in (defaults to the
    precision itself).
    """
    import torch

    precision = check_precision(precision)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("CUDA is not available: no NVIDIA GPU or no CUDA build of torch; use --device cpu")
    if precision in QUANTISED and not device.startswith("cuda"):
        raise ModelLoadError(f"{precision} needs a CUDA GPU (bitsandbytes); on CPU use fp32, fp16 or bf16")
    notes: list[str] = []
    t0 = time.perf_counter()
    arch_key = None
    if synthetic:
        if arch is None:
            from measurements.catalog import resolve_model

            arch = resolve_model(model_ref)
        arch = apply_overrides(arch, overrides)
        arch_key = arch.key
        model_id = arch.hub_id
        if overrides:
            notes.append("architecture overridden: " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())))
        source: Any = None
    else:
        model_id = model_ref
        source = model_ref
    quant: dict[str, Any] = {}
    if precision in QUANTISED:
        qcfg = bnb_config(precision, compute_dtype, double_quant)
        quant = {"precision": precision, "compute_dtype": compute_dtype}
        if precision == "nf4":
            quant["double_quant"] = double_quant
        else:
            quant["llm_int8_threshold"] = INT8_THRESHOLDS[precision]
        if synthetic and quant_build == "memory":
            assert arch is not None
            # The same 16-bit weights the checkpoint path would save (same seed and dtype).
            model = build_synthetic(arch, "bf16" if compute_dtype == "bf16" else "fp16", device)
            swapped = quantise_in_memory(model, precision, compute_dtype, double_quant, device)
            notes.append(f"synthetic model quantised in memory on the device: {len(swapped)} nn.Linear layers "
                         f"swapped for bitsandbytes {'Linear4bit' if precision == 'nf4' else 'Linear8bitLt'} "
                         "(output head kept 16-bit), no checkpoint written")
        else:
            if synthetic:
                assert arch is not None
                source = synthetic_checkpoint(arch, device, "bf16" if compute_dtype == "bf16" else "fp16")
                notes.append("synthetic checkpoint saved and reloaded through from_pretrained + BitsAndBytesConfig")
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                source, quantization_config=qcfg, device_map=_device_map(device),
                dtype=torch_dtype(compute_dtype), trust_remote_code=trust_remote_code)
    else:
        # torchao's float8 paths expect a bf16 model underneath.
        float_dtype = base_dtype or ("bf16" if precision == "fp8" else precision)
        if synthetic:
            assert arch is not None
            model = build_synthetic(arch, float_dtype, device)
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch_dtype(float_dtype), device_map=_device_map(device),
                trust_remote_code=trust_remote_code)
        if precision == "fp8":
            model, fp8_notes = _apply_fp8(model, fp8_mode, compile_model)
            notes += fp8_notes
            quant = {"precision": "fp8", "mode": fp8_mode, "compiled": compile_model, "base_dtype": float_dtype}
        elif compile_model:
            model.forward = torch.compile(model.forward)
            notes.append("torch.compile on forward")
    model.eval()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    attn = getattr(model.config, "_attn_implementation", None)
    if attn:
        notes.append(f"attention={attn}")
    return LoadedModel(model=model, model_id=model_id, precision=precision,
                       weights="synthetic" if synthetic else "real", params_b=count_params(model),
                       load_s=time.perf_counter() - t0, device=device, arch_key=arch_key,
                       notes=notes, quant=quant)
