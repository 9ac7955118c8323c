"""Hand regression head (paper eq. 15; HOISDF's transformer layout).

The fused hand point features become tokens (linear projection plus an embedding of the point
position q and gamma(q)); a transformer encoder mixes them; a transformer decoder with 18 learned
queries reads them: 16 rotation queries (one 6D rotation each: global orientation then the 15
MANO joints), 1 shape query (10 betas) and 1 translation query (hand-root offset from the
anchor, metres, camera frame). Shared output layers decode every decoder layer, so the loss can
supervise each of them (deep supervision).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from homae_model.config import HandHeadConfig
from homae_model.geometry.rotations import matrix_to_rot6d

NUM_ROT_QUERIES = 16
NUM_SHAPE = 10
HEAD_INIT_STD = 0.01
"""Std of the output layers' initial weights: starts near identity rotations / mean shape."""


@dataclass
class HandLayerOutput:
    """One decoder layer's hand estimate.

    Attributes:
        rot6d: (B,16,6) 6D rotations, global orientation first, MANO joint order.
        shape: (B,10) MANO betas.
        root_offset: (B,3) hand root minus anchor, metres, camera frame.
    """

    rot6d: torch.Tensor
    shape: torch.Tensor
    root_offset: torch.Tensor


def encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """Run a pre-norm `nn.TransformerEncoderLayer` (batch first, no mask) on (B,N,D) tokens.

    In eval mode the attention goes through `F.scaled_dot_product_attention` (fused kernels;
    PyTorch's own inference fast path uses unfused batched matmuls on the CPU); the maths is the
    layer's own, with its weights. In training mode (or post-norm) it is simply `layer(x)`.
    """
    if layer.training or not layer.norm_first:
        return layer(x)
    attn = layer.self_attn
    b, n, d = x.shape
    heads = attn.num_heads
    # the products on (B*N, D) rows: one matrix product with its bias (torch's addmm; an
    # exported graph's Gemm instead of MatMul + a separate bias Add)
    y = layer.norm1(x).reshape(b * n, d)
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    x = x + attn.out_proj(o.transpose(1, 2).reshape(b * n, d)).view(b, n, d)
    h = layer.linear1(layer.norm2(x).reshape(b * n, d))
    if torch.is_grad_enabled() or torch.jit.is_tracing() or layer.activation_relu_or_gelu != 1:
        return x + layer.linear2(layer.activation(h)).view(b, n, d)
    # no graph to record (inference): ReLU and the residual sum in place on fresh tensors
    return x.add_(layer.linear2(torch.relu_(h)).view(b, n, d))


def _attention(
    attn: nn.MultiheadAttention, q_in: torch.Tensor, kv_in: torch.Tensor
) -> torch.Tensor:
    """`attn(q_in, kv_in, kv_in)` (no mask, no dropout) through `F.scaled_dot_product_attention`.

    Args:
        attn: batch-first multi-head attention whose packed in-projection is used.
        q_in: (B,Nq,D) queries.
        kv_in: (B,Nk,D) keys and values.

    Returns:
        (B,Nq,D) attended values after the output projection.
    """
    b, nq, d = q_in.shape
    nk = kv_in.shape[1]
    heads = attn.num_heads
    w, bias = attn.in_proj_weight, attn.in_proj_bias
    # (B*N, D) rows, as `encoder_layer`
    q = F.linear(q_in.reshape(b * nq, d), w[:d], bias[:d] if bias is not None else None)
    kv = F.linear(kv_in.reshape(b * nk, d), w[d:], bias[d:] if bias is not None else None)
    q = q.view(b, nq, heads, d // heads).transpose(1, 2)
    kv = kv.view(b, nk, 2, heads, d // heads).permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(q, kv[0], kv[1])
    return attn.out_proj(o.transpose(1, 2).reshape(b * nq, d)).view(b, nq, d)


def decoder_layer(
    layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor
) -> torch.Tensor:
    """Run a pre-norm `nn.TransformerDecoderLayer` (batch first, no masks) on (B,N,D) queries.

    In eval mode self- and cross-attention go through `F.scaled_dot_product_attention` (as
    `encoder_layer`; PyTorch's `nn.MultiheadAttention` inference fast path is a fused op that
    neither ONNX nor shape-generic tracing can express); the maths is the layer's own. In
    training mode (or post-norm) it is simply `layer(x, memory)`.
    """
    if layer.training or not layer.norm_first:
        return layer(x, memory)
    y = layer.norm1(x)
    x = x + _attention(layer.self_attn, y, y)
    x = x + _attention(layer.multihead_attn, layer.norm2(x), memory)
    b, n, d = x.shape
    h = layer.activation(layer.linear1(layer.norm3(x).reshape(b * n, d)))
    return x + layer.linear2(h).view(b, n, d)


def _small_linear(d_in: int, d_out: int) -> nn.Linear:
    lin = nn.Linear(d_in, d_out)
    nn.init.normal_(lin.weight, std=HEAD_INIT_STD)
    nn.init.zeros_(lin.bias)
    return lin


class HandHead(nn.Module):
    """(B,N,in_dim) fused hand tokens -> per-decoder-layer `HandLayerOutput`s."""

    def __init__(self, cfg: HandHeadConfig, in_dim: int, pos_dim: int, sdf_scale: float) -> None:
        """Token width `in_dim`, position-embedding input width `pos_dim` (q ++ gamma(q))."""
        super().__init__()
        d = cfg.d_model
        self.token_proj = nn.Linear(in_dim, d)
        self.pos_proj = nn.Linear(pos_dim, d)
        self.encoder = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True
            )
            for _ in range(cfg.enc_layers)
        )
        self.memory_norm = nn.LayerNorm(d)
        self.queries = nn.Parameter(torch.randn(NUM_ROT_QUERIES + 2, d) * 0.02)
        self.decoder = nn.ModuleList(
            nn.TransformerDecoderLayer(
                d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True
            )
            for _ in range(cfg.dec_layers)
        )
        self.out_norm = nn.LayerNorm(d)
        self.rot_out = _small_linear(d, 6)
        # per-joint 6D offset, zero at start: the mean articulation is a bias, which the shared
        # `rot_out` layer could only learn through the 16 nearly equal query embeddings
        self.rot_bias = nn.Parameter(torch.zeros(NUM_ROT_QUERIES, 6))
        self.shape_out = _small_linear(d, NUM_SHAPE)
        self.transl_out = _small_linear(d, 3)
        self.sdf_scale = sdf_scale
        identity = matrix_to_rot6d(torch.eye(3)[None])[0].float()
        self.register_buffer("identity6d", identity, persistent=False)

    def forward(
        self,
        tokens: torch.Tensor,
        pos: torch.Tensor,
        *,
        final_only: bool = False,
        image_token: torch.Tensor | None = None,
    ) -> list[HandLayerOutput]:
        """Regress MANO parameters.

        Args:
            tokens: (B,N,in_dim) fused point features.
            pos: (B,N,pos_dim) point position encoding (q ++ gamma(q)).
            final_only: decode the last decoder layer only (inference: the others' outputs
                serve the deep supervision of training).
            image_token: (B,d_model) global image token (`nn.image_token`), prepended to the
                encoder's input; None: the point tokens alone (the paper's head).

        Returns:
            One `HandLayerOutput` per decoder layer (the last is the final estimate), or only
            the final one with `final_only`.
        """
        x = self.token_proj(tokens) + self.pos_proj(pos)
        if image_token is not None:
            x = torch.cat([image_token[:, None, :].to(x.dtype), x], dim=1)
        for layer in self.encoder:
            x = encoder_layer(layer, x)
        memory = self.memory_norm(x)
        q = self.queries[None].expand(x.shape[0], -1, -1)
        outs = []
        for i, layer in enumerate(self.decoder):
            q = decoder_layer(layer, q, memory)
            if final_only and i < len(self.decoder) - 1:
                continue
            h = self.out_norm(q)
            rot = self.rot_out(h[:, :NUM_ROT_QUERIES]) + self.identity6d + self.rot_bias
            shape = self.shape_out(h[:, NUM_ROT_QUERIES])
            offset = self.transl_out(h[:, NUM_ROT_QUERIES + 1]) / self.sdf_scale
            outs.append(HandLayerOutput(rot6d=rot, shape=shape, root_offset=offset))
        return outs
