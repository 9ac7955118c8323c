"""Markdown rendering of benchmarks/results.json (the table README's performance section uses)."""

from __future__ import annotations

from typing import Any

STAGE_ORDER = (
    ("image_conversion", "image conversion (homae_ros.messages.conversions)"),
    ("detector", "detector (ssdlite, random weights, full image)"),
    ("crop", "crop"),
    ("encoder", "encoder (DINOv2 ViT-S/14 + projection)"),
    ("decoder_fusion", "decoder + multi-scale fusion (finest level on the boxes' window)"),
    ("anchor_head", "anchor head"),
    ("point_sampling", "point sampling (coarse-to-fine, both branches)"),
    ("sdf_heads", "SDF heads at the 600 + 200 points (Predictor reuses the search's values)"),
    ("pointnet_fusion", "PointNet + fusion"),
    ("transformers_heads", "transformers + heads"),
    ("mano", "MANO"),
    ("message_building", "message building (homae_ros.messages.build)"),
    ("markers", "markers (homae_ros.messages.markers)"),
)


def _ms(entry: Any) -> str:
    if isinstance(entry, dict) and "median_ms" in entry:
        return f"{entry['median_ms']:.1f} ({entry['min_ms']:.1f}-{entry['max_ms']:.1f})"
    if isinstance(entry, dict) and "unavailable" in entry:
        return f"n/a: {entry['unavailable'][:60]}"
    return "n/a"


def markdown(res: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    m = res["machine"]
    lines = [
        "# HOMAE benchmark results",
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']}, "
        f"{m['torch_threads']} thread(s), device {m['device']}"
        + (f" ({m['gpu']})" if "gpu" in m else "")
        + f"; 1-min load average at start {m['load_average_1m_at_start']:.1f}; {m['time_utc']}.",
        f"Setup: {res['setup']['config']}; {res['setup']['weights']}; "
        f"{res['setup']['image']}; median (min-max) of {res['setup']['repeats']} runs after "
        "1 warm-up.",
        "",
        "## Stages (batch 1, ms)",
        "",
        "| stage | median (min-max) ms |",
        "|---|---|",
    ]
    st = res["stages_ms"]
    for key, label in STAGE_ORDER:
        if key in st:
            lines.append(f"| {label} | {_ms(st[key])} |")
    side = res.get("side_by_side_ms", {})
    for key, label in (
        ("predictor", "whole Predictor (1 pair)"),
        ("predictor_onnxruntime", "whole Predictor, onnxruntime (1 pair)"),
        ("predictor_onnxruntime_int8", "whole Predictor, onnxruntime int8 option (1 pair)"),
        ("batch4", "Predictor, 4 pairs"),
    ):
        if key in side:
            lines.append(f"| {label} | {_ms(side[key])} |")
    lines += ["", "## Ratios", "", "| ratio | value | goal | met |", "|---|---|---|---|"]
    for key, r in res["ratios"].items():
        goal = r.get("goal", "")
        met = r.get("met", "")
        extra = f" (missed: {r['missed_by']})" if "missed_by" in r else ""
        val = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(f"| {key} | {val} | {goal} | {met}{extra} |")
    s = res["sampling"]
    lines += ["", "## Point sampling: dense 64^3 vs coarse-to-fine", ""]
    lines.append("| branch | dense evals | c2f evals | evals ratio | point overlap |")
    lines.append("|---|---|---|---|---|")
    for br in ("hand", "obj"):
        b = s[br]
        lines.append(
            f"| {br} | {b['dense_evals']} | {b['coarse_to_fine_evals']} | "
            f"{b['evals_ratio']:.3f} | {b['point_overlap']:.3f} |"
        )
    pdiff = s["pose_difference"]
    lines += [
        "",
        f"Time: dense {_ms(s['dense'])} ms, coarse-to-fine {_ms(s['coarse_to_fine'])} ms. "
        f"Pose difference (c2f vs dense points): hand joints {pdiff['hand_joints_mean_mm']:.3f} "
        f"mm, object translation {pdiff['obj_trans_mm']:.3f} mm, rotation "
        f"{pdiff['obj_rot_deg']:.3f} deg.",
        "",
        *_onnx_lines(res.get("onnxruntime")),
        "## Memory and training",
        "",
    ]
    mem = res["memory"]
    lines.append(f"- node process peak RSS: {mem.get('node_process_peak_rss_mb')} MB")
    lines.append(f"- benchmark process peak RSS: {mem['bench_process_peak_rss_mb']:.0f} MB")
    lines.append(f"- GPU peak memory: {mem['gpu_peak_allocated_mb']}")
    for name, t in res.get("training", {}).items():
        if isinstance(t, dict):
            lines.append(
                f"- training {name} (batch {t['batch_size']}, CPU): {t['samples_per_s']} "
                f"samples/s ({t['step']['median_ms']:.0f} ms/step)"
            )
        else:
            lines.append(f"- training {name}: {t}")
    lines.append("")
    return "\n".join(lines)


def _onnx_lines(info: Any) -> list[str]:
    """The ONNX export / onnxruntime section (empty when the run has none)."""
    if not isinstance(info, dict):
        return []
    eq = info["equivalence"]
    return [
        "## ONNX export and onnxruntime",
        "",
        f"Export (opset {info['opset']}) {info['export_seconds']} s, sessions "
        f"{info['session_seconds']} s; graphs {info['graph_mb']} MB; {info['provider']}, "
        f"{info['threads']} thread(s). onnxruntime vs torch on the scene ({eq['pairs']} pairs): "
        f"hand joints {eq['hand_joints_max_mm']:.4f} mm (max), object translation "
        f"{eq['obj_trans_mm']:.4f} mm, rotation {eq['obj_rot_deg']:.4f} deg, anchor "
        f"{eq['anchor_mm']:.4f} mm; same SDF evaluations: {eq['same_sdf_evaluations']} "
        "(goals: 0.5 mm, 0.5 mm, 0.1 deg).",
        "",
        *_int8_lines(info.get("int8")),
    ]


def _int8_lines(q: Any) -> list[str]:
    """The int8 option's line (empty when the run has none)."""
    if not isinstance(q, dict):
        return []
    eq = q["equivalence"]
    return [
        f"int8 option ({q['quantization']}; graphs {q['quantized_graphs']}; quantized in "
        f"{q['quantize_seconds']} s; {q['graph_mb']} MB), NOT equivalent: vs torch hand joints "
        f"{eq['hand_joints_max_mm']:.3f} mm (max), object translation {eq['obj_trans_mm']:.3f} "
        f"mm, rotation {eq['obj_rot_deg']:.3f} deg, anchor {eq['anchor_mm']:.3f} mm; same SDF "
        f"evaluations: {eq['same_sdf_evaluations']}.",
        "",
    ]
