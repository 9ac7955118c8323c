"""Typed configuration of HOMAE: one set of defaults (the paper), YAML files only override.

`HomaeConfig` has the sections `model`, `loss`, `train`, `data` and `mano`. Every field's default
is the paper's (or HOISDF's, where the paper follows it); `config/model/*.yaml` override a subset,
and a file may name a ``base:`` file it overrides (``small_nomask.yaml`` is ``small.yaml`` with
masking off). Dotted ``KEY=VALUE`` overrides (``model.masking.enabled=false``) come last. Keys
kept equal by hand before (`DERIVED`: ``data.image_size`` follows ``model.encoder.img_size``, ...)
are stated once and derived. Unknown keys, wrong types and out-of-range values raise
``ValueError`` naming the file and key path (e.g. ``model.masking.fill``) and listing the valid
keys or choices. The resolved config is saved next to every checkpoint (`homae_model.checkpoint`).

- `homae_model.config.schema`: the dataclasses (types, defaults, ranges) and their checks;
- `homae_model.config.loading`: OmegaConf composition (files, bases, overrides, derived keys).
"""

from homae_model.config.loading import (
    BASE_KEY,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    save_config,
)
from homae_model.config.schema import (
    _DATA_BOUNDS,
    DEFAULT_MANO_PATH,
    DERIVED,
    PACKAGE_DIR,
    AnchorConfig,
    AuxConfig,
    DataConfig,
    DecoderConfig,
    Derived,
    EncoderConfig,
    FusionConfig,
    HandHeadConfig,
    HomaeConfig,
    InferenceConfig,
    LossConfig,
    MANOConfig,
    MaskingConfig,
    ModelConfig,
    ObjectHeadConfig,
    PointNetConfig,
    PointsConfig,
    SdfHeadConfig,
    TrainConfig,
)

__all__ = [
    "BASE_KEY",
    "DEFAULT_MANO_PATH",
    "DERIVED",
    "PACKAGE_DIR",
    "_DATA_BOUNDS",
    "AnchorConfig",
    "AuxConfig",
    "DataConfig",
    "DecoderConfig",
    "Derived",
    "EncoderConfig",
    "FusionConfig",
    "HandHeadConfig",
    "HomaeConfig",
    "InferenceConfig",
    "LossConfig",
    "MANOConfig",
    "MaskingConfig",
    "ModelConfig",
    "ObjectHeadConfig",
    "PointNetConfig",
    "PointsConfig",
    "SdfHeadConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_overrides",
    "save_config",
]
