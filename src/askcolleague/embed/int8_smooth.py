"""The "smooth" int8 recipe: transformer fusion, SmoothQuant scaling, int8 dynamic quantisation (ONNX).

    build(fp32_path, out_path, model_folder)   # fp32_path: OnnxEmbedder's exported model.onnx

Steps (measured with onnxruntime 1.32 / onnx 1.23 on all-MiniLM-L6-v2; bench/RESULTS.md section 3):

1. ``onnxruntime.transformers`` optimizer (model_type "bert", heads and width from the model's
   config.json): EmbedLayerNormalization, one Attention and two SkipLayerNormalization per layer,
   BiasGelu. The remaining MatMuls keep their exported names. Inputs and output are unchanged.
2. Calibration: the per-input-channel max |X| at every Attention (QKV projection), FFN up- and FFN
   down-projection input, over the built-in texts below (not taken from any corpus) in padded
   batches of 32, exactly as at inference.
3. SmoothQuant (Xiao et al. 2023): s_j = max(xmax_j, median(xmax))^a / max|W_j|^(1-a), a = 0.8 for
   down-projections and 0.7 for the rest; weight row j is multiplied by s_j and a ``Mul(X, 1/s)``
   is inserted on that consumer's input only (the residual path is untouched, so the fp32 graph is
   exactly equivalent). The median floor matters: without it, channels that are quiet in the
   calibration texts are amplified and become outliers on other texts (min cosine fell to 0.96).
4. ``quantize_dynamic``: int8 weights per channel, activations per batch, of every MatMul and the
   fused Attention ops (QAttention / DynamicQuantizeMatMul), except layer 0's FFN down-projection,
   which carries the largest activation outliers and stays fp32.

Against torch fp32 on 410 demo-corpus texts: min cosine 0.9966, mean 0.9986; about 2.5x torch and
1.6x the "safe" recipe (attention int8, FFN fp32) on 2 cores. Any change here must change RECIPE.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError

ALPHA_DOWN, ALPHA_OTHER = 0.8, 0.7
XMAX_FLOOR_PERCENTILE = 50
# MatMuls left in fp32 (regexes on node names of the fused graph)
KEEP_FP32: tuple[str, ...] = (r"^/model/encoder/layer\.0/output/dense/MatMul$",)
DOWN = re.compile(r"layer\.\d+/output/dense/MatMul$")
UP = re.compile(r"intermediate/dense/MatMul$")

CALIB = [
    "How do I request a new laptop and who approves the purchase?",
    "The on-call engineer acknowledges the page within fifteen minutes and opens an incident channel.",
    "Expense reports must be submitted within thirty days, with receipts attached for anything over 25 euros.",
    "Our deployment pipeline runs the unit tests, builds the container image and rolls it out to staging first.",
    "Please remember that the office is closed on Friday for the public holiday.",
    "If the VPN disconnects repeatedly, restart the client and check that your certificate has not expired.",
    "The quarterly planning meeting moved to Thursday at 10:00 in the large conference room.",
    "New hires get their accounts on day one; the buddy programme pairs them with a colleague for a month.",
    "Customer data is classified as confidential and must never be copied to personal devices.",
    "Decision: we will migrate the billing service to PostgreSQL 16 before the end of Q3.",
    "Travel above 2,000 EUR needs approval from the department head and finance.",
    "Re: database backup failed last night - the disk on db-02 was full, we rotated the logs and reran it.",
    "Parental leave is sixteen weeks at full pay, and can be split into two blocks within the first year.",
    "The API returns HTTP 429 when a client exceeds 100 requests per minute; retry with exponential backoff.",
    "Thanks everyone for the great turnout at the summer party!",
    "To reset your password, open the self-service portal, choose 'Forgot password' and follow the e-mail link.",
    "Security patches are applied every second Tuesday; servers reboot between 02:00 and 04:00 UTC.",
    "The design review found three issues: missing rate limits, unclear ownership of the cache, and no rollback plan.",
    "Invoices are paid on net-30 terms; vendors must be registered in the procurement system first.",
    "Who is the contact for questions about the pension scheme?",
    "Remote work is allowed up to three days a week, subject to agreement with your manager.",
    "Runbook - Steps: 1. Check the dashboard for error spikes. 2. Drain the node. 3. Restart the service. 4. Verify health checks.",
    "The forum thread discusses whether we should adopt trunk-based development for the mobile app.",
    "Laptop encryption is mandatory; IT will verify BitLocker or FileVault status during onboarding.",
    "Meeting notes: the team agreed to freeze features two weeks before the release and focus on bug fixes.",
    "Performance reviews happen twice a year, in March and September, with a self-assessment beforehand.",
    "The Kubernetes cluster autoscaler adds nodes when pending pods cannot be scheduled for more than a minute.",
    "Budget owners receive a monthly report of spending against plan for each cost centre.",
    "Hi Anna, could you share the slides from yesterday's customer workshop? Best, Tom",
    "Incident postmortem: the outage lasted 47 minutes and was caused by an expired TLS certificate on the load balancer.",
    "Sick leave must be reported to your manager before 9 am on the first day of absence.",
    "The style guide prefers short sentences, active voice and no jargon in customer-facing text.",
]


def calibration_texts() -> list[str]:
    n = len(CALIB)
    return CALIB + [" ".join(CALIB[(i + k) % n] for k in range(8)) for i in range(0, n, 2)]


RECIPE = "askcolleague-int8-smooth-1 a0.8/0.7 median-floor keep-L0-down " + "|".join(KEEP_FP32)


def _feeds(texts: list[str], tokenizer_json: Path, max_tokens: int, bs: int = 32):
    from tokenizers import Tokenizer  # (lazy: loaded only when used, so start-up stays fast)

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(max_tokens)
    pad = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=0 if pad is None else pad, pad_token="[PAD]")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for s in range(0, len(order), bs):
        enc = tok.encode_batch([texts[i] for i in order[s:s + bs]])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        yield {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
               "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}


def fuse(src: Path, dst: Path, config: dict) -> None:
    from onnxruntime.transformers.optimizer import (  # (lazy: loaded only when used, so start-up stays fast)
        optimize_model,
    )

    layers = int(config.get("num_hidden_layers", 0))
    m = optimize_model(str(src), model_type="bert", num_heads=int(config.get("num_attention_heads", 0)),
                       hidden_size=int(config.get("hidden_size", 0)), opt_level=1, use_gpu=False)
    counts = m.get_fused_operator_statistics()
    if not layers or counts.get("Attention", 0) != layers or counts.get("SkipLayerNormalization", 0) != 2 * layers:
        raise ConfigError(f"{src}: the int8 'smooth' recipe needs a BERT-style encoder whose layers all fuse "
                          f"(got {counts.get('Attention', 0)} of {layers} attention blocks); use "
                          "ASKCOLLEAGUE_RUNTIME=onnx or torch for this model")
    m.save_model_to_file(str(dst))


def _targets(model) -> list[str]:
    return [n.name for n in model.graph.node
            if n.op_type == "Attention" or (n.op_type == "MatMul" and (DOWN.search(n.name) or UP.search(n.name)))]


def activation_max(path: Path, names: list[str], texts: list[str], tokenizer_json: Path,
                   max_tokens: int) -> dict[str, np.ndarray]:
    import onnx  # (lazy: loaded only when used, so start-up stays fast)
    import onnxruntime as ort  # (lazy: loaded only when used, so start-up stays fast)
    from onnx import helper  # (lazy: loaded only when used, so start-up stays fast)

    m = onnx.load(str(path))
    by = {n.name: n for n in m.graph.node}
    tensors = sorted({by[k].input[0] for k in names})
    for t in tensors:
        m.graph.output.append(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in sess.get_inputs()}
    mx: dict[str, np.ndarray] = {}
    for feed in _feeds(texts, tokenizer_json, max_tokens):
        for t, r in zip(tensors, sess.run(tensors, {k: v for k, v in feed.items() if k in inputs})):
            v = np.abs(r).reshape(-1, r.shape[-1]).max(0)
            mx[t] = np.maximum(mx[t], v) if t in mx else v
    return {k: mx[by[k].input[0]] for k in names}


def smooth(src: Path, dst: Path, stats: dict[str, np.ndarray]) -> None:
    import onnx  # (lazy: loaded only when used, so start-up stays fast)
    from onnx import helper, numpy_helper  # (lazy: loaded only when used, so start-up stays fast)

    m = onnx.load(str(src))
    inits = {i.name: i for i in m.graph.initializer}
    nodes = []
    for n in m.graph.node:
        if n.name in stats:
            a = ALPHA_DOWN if DOWN.search(n.name) else ALPHA_OTHER
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)  # [K, N] (Attention: [K, 3K])
            xmax = np.maximum(stats[n.name], 1e-5)
            xmax = np.maximum(xmax, np.percentile(xmax, XMAX_FLOOR_PERCENTILE))
            wmax = np.maximum(np.abs(w).max(1), 1e-5)
            s = np.clip(xmax ** a / wmax ** (1 - a), 1e-3, 1e3).astype(np.float32)
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1]))
            key = n.name.replace("/", "_")
            m.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), key + "_smooth_inv"))
            x2 = f"{n.input[0]}_smoothed_{key}"
            nodes.append(helper.make_node("Mul", [n.input[0], key + "_smooth_inv"], [x2], name=n.name + "_SmoothMul"))
            n.input[0] = x2
        nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.save(m, str(dst))


def quantize(src: Path, dst: Path, keep_fp32: tuple[str, ...] = KEEP_FP32) -> None:
    import onnx  # (lazy: loaded only when used, so start-up stays fast)
    from onnxruntime.quantization import (  # (lazy: loaded only when used, so start-up stays fast)
        QuantType, quantize_dynamic,
    )

    g = onnx.load(str(src), load_external_data=False).graph
    keep = [n.name for n in g.node if n.op_type in ("MatMul", "Attention") and any(re.search(p, n.name) for p in keep_fp32)]
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                             op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=keep,
                             # the fused com.microsoft ops defeat shape inference; without this
                             # quantize_dynamic raises "Unable to find data type for weight_name=..."
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def build(fp32_path: Path, out_path: Path, model_folder: Path, max_tokens: int = 256,
          keep_fp32: tuple[str, ...] = KEEP_FP32) -> Path:
    """Write the recipe's model for `fp32_path` to `out_path` (atomically: a temp file is renamed)."""

    import onnx  # (lazy: loaded only when used, so start-up stays fast)

    fp32_path, out_path, folder = Path(fp32_path), Path(out_path), Path(model_folder)
    config = json.loads((folder / "config.json").read_text())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as td:
        fused, smoothed, q = Path(td) / "fused.onnx", Path(td) / "smoothed.onnx", Path(td) / "q.onnx"
        fuse(fp32_path, fused, config)
        names = _targets(onnx.load(str(fused), load_external_data=False))
        stats = activation_max(fused, names, calibration_texts(), folder / "tokenizer.json", max_tokens)
        smooth(fused, smoothed, stats)
        quantize(smoothed, q, keep_fp32)
        with open(q, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(q, out_path)
    return out_path

