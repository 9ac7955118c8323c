"""Node end-to-end latency vs the Predictor alone, in a fresh process (its peak RSS = the node's).

Run by `benchmarks.run` as ``python -m benchmarks.node_bench CHECKPOINT_DIR IMAGE.npy K.npy
ROI_JSON REPEATS THREADS``; prints one JSON line. The node is started in-process with the test
harness pattern (tests/ros/nodeutil.py: roi backend, reliable QoS, loopback); each frame is
published, and the time until its HandObjectResult arrives is recorded. The Predictor alone is
timed on the same image with the same (roi, roi) pair, interleaved with the node frames.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: per address space, so not inherited from
    the parent the way getrusage's ru_maxrss is across fork + exec), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    """Entry point (arguments as in the module docstring)."""
    ckpt, image_path, k_path, roi_json, repeats, threads = sys.argv[1:7]
    torch.set_num_threads(int(threads))
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from homae_model.inference import Predictor
    from tests.ros.nodeutil import camera_info, stamp_of, start_harness

    image = np.load(image_path)
    K = np.load(k_path)
    roi = json.loads(roi_json)
    predictor = Predictor.from_checkpoint(ckpt, "cpu")
    h = start_harness(Path(ckpt), {"detector.roi": [float(v) for v in roi]})
    try:
        if not h.wait_connected(30.0):
            print(json.dumps({"error": "node did not connect within 30 s"}))
            return
        height, width = image.shape[:2]
        f = float(K[0, 0])
        node_ms, pred_ms = [], []
        n = int(repeats)
        for i in range(n + 1):
            t0 = time.perf_counter()
            predictor.predict(image, K, [(roi, roi)])
            dt_pred = 1e3 * (time.perf_counter() - t0)
            before = len(h.results)
            stamp = 1.0 + i
            info = camera_info(width, height, stamp_of(stamp), f)
            t0 = time.monotonic()
            h.publish(image, stamp, info)
            if not h.wait_for(lambda b=before: len(h.results) > b, 120.0):
                print(json.dumps({"error": f"no result for frame {i} within 120 s"}))
                return
            dt_node = 1e3 * (h.received_at[before] - t0)
            if i > 0:  # the first frame is the warm-up
                node_ms.append(dt_node)
                pred_ms.append(dt_pred)
        rss_mb = peak_rss_mb()
        print(
            json.dumps(
                {
                    "node_ms": node_ms,
                    "predictor_ms": pred_ms,
                    "node_median_ms": statistics.median(node_ms),
                    "predictor_median_ms": statistics.median(pred_ms),
                    "peak_rss_mb": rss_mb,
                    "hands_in_last_result": len(h.results[-1].hands),
                }
            )
        )
    finally:
        h.close()


if __name__ == "__main__":
    main()
