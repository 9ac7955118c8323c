"""Which torch device a run uses: the one place that reads "auto" and checks CUDA exists."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(requested: str | torch.device, what: str = "parameter 'device'") -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda[:N]' must be available.

    Args:
        requested: "auto", "cpu", "cuda", "cuda:N" (or a torch.device).
        what: how the caller names the setting in errors ("parameter 'device'", "--device").

    Returns:
        The device as a torch device string ("cpu", "cuda", "cuda:1", ...).

    Raises:
        RuntimeError: CUDA was asked for but is not available (names `what`).
    """
    name = str(requested)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"{what} = '{name}' but CUDA is not available on this machine (use cpu or auto)"
        )
    return name
