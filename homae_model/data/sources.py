"""Open a data folder of any supported layout: synthetic, DexYCB or HO3Dv2 (auto-detected).

Detection rules (first match wins):

- synthetic: `DIR/meta.json` and `DIR/ann/` (homae-synth output), or `DIR/<split>/meta.json`;
- DexYCB: `DIR/calibration/` and at least one `DIR/2020*-subject-*` folder;
- HO3D v2: `DIR/train.txt` or `DIR/evaluation.txt` beside `DIR/train/` or `DIR/evaluation/`.

The object library comes from `DIR/models/<name>/textured_simple.obj` (YCB layout) when that
folder exists or `ycb_dir` is given, else the procedural stand-ins (same names, metric sizes).
`dataset_fingerprint` hashes the annotation files of the samples used, for reports.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homae_model.hand.constants import FINGERTIP_CONVENTION_BY_LAYOUT
from homae_model.objects.library import ObjectLibrary

LAYOUTS: tuple[str, ...] = ("synthetic", "dexycb", "ho3d")
"""Supported data folder layouts."""
DEFAULT_SPLITS: dict[str, str] = {"synthetic": "train", "dexycb": "test", "ho3d": "evaluation"}
"""Split used by evaluation when none is given."""


@dataclass
class OpenedSource:
    """A data source with what training and evaluation need around it.

    Attributes:
        kind: one of LAYOUTS.
        root: the data folder.
        split: the split read (None: the whole folder, synthetic sets without splits).
        source: object with `__len__`, `__getitem__(i) -> RawSample` (HO3D evaluation split:
            `HO3DEvalSample`) and usually `load(i, image=False)`.
        objects: the object library the samples' `obj_name`s refer to.
        has_labels: False for HO3D's evaluation split (no hand pose labels).
        global_files: files describing the whole set (meta.json, split lists, calibration).
        notes: remarks for reports (e.g. procedural objects used for a real dataset).
    """

    kind: str
    root: Path
    split: str | None
    source: Any
    objects: ObjectLibrary
    has_labels: bool = True
    global_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fingertips(self) -> str:
        """Fingertip convention of this layout's labels (`hand.constants.FINGERTIP_CONVENTIONS`)."""
        return FINGERTIP_CONVENTION_BY_LAYOUT[self.kind]

    def frame_id(self, index: int) -> str:
        """A readable id of sample `index`: HO3D's "<sequence>/<frame>", else its label file."""
        names = getattr(self.source, "names", None)
        if self.kind == "ho3d" and names is not None:
            return str(names[index])
        files = self.annotation_files(index)
        if files:
            path = files[0]
            return str(path.relative_to(self.root) if path.is_relative_to(self.root) else path)
        return f"#{index}"

    def annotation_files(self, index: int) -> list[Path]:
        """Annotation (label) files of sample `index` (images excluded)."""
        src = self.source
        if self.kind == "dexycb":
            return [Path(src.paths(index)[1])]
        if self.kind == "ho3d":
            return [Path(src.paths(index)[1])]
        paths = getattr(src, "paths", None)
        if callable(paths):
            return [Path(paths(index)[-1])]
        return []


def _synthetic_folder(root: Path, split: str | None) -> Path:
    if split is not None and (root / split / "meta.json").is_file():
        return root / split
    return root


def detect_layout(root: str | Path) -> str:
    """Which layout a data folder has.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: no known layout (the message lists what each layout needs).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if (root / "meta.json").is_file() or any(root.glob("*/meta.json")):
        return "synthetic"
    if (root / "calibration").is_dir() and any(root.glob("2020*-subject-*")):
        return "dexycb"
    if any((root / f"{s}.txt").is_file() and (root / s).is_dir() for s in ("train", "evaluation")):
        return "ho3d"
    raise ValueError(
        f"{root}: unknown data layout; expected synthetic (meta.json + ann/), DexYCB "
        "(calibration/ + 2020*-subject-*/) or HO3D (train.txt/evaluation.txt + train/ or "
        "evaluation/)"
    )


def _library(root: Path, ycb_dir: str | Path | None, notes: list[str]) -> ObjectLibrary:
    folder = Path(ycb_dir) if ycb_dir is not None else root / "models"
    if folder.is_dir():
        return ObjectLibrary.from_ycb(folder)
    if ycb_dir is not None:
        raise FileNotFoundError(f"YCB models folder not found: {folder}")
    return ObjectLibrary.procedural()


def open_source(
    root: str | Path,
    split: str | None = None,
    *,
    mano_dir: str | Path | None = None,
    ycb_dir: str | Path | None = None,
    hands: str = "right",
    load_masks: bool = True,
) -> OpenedSource:
    """Open a data folder, detecting its layout.

    Args:
        root: the data folder.
        split: split name (synthetic: a sub-folder if present; DexYCB: train/val/test;
            HO3D: train/evaluation). None: DEFAULT_SPLITS (synthetic: the whole folder).
        mano_dir: folder of the (converted) MANO files, needed by DexYCB's PCA poses
            (default: the folder of the bundled hand).
        ycb_dir: YCB models folder (default: root/models when present, else procedural).
        hands: DexYCB hands ("right" or "both").
        load_masks: read the synthetic sets' segmentation PNGs (training does not use them).

    Returns:
        OpenedSource.

    Raises:
        FileNotFoundError: missing folder or files (named).
        ValueError: unknown layout or split.
    """
    root = Path(root)
    kind = detect_layout(root)
    notes: list[str] = []
    if kind == "synthetic":
        from homae_model.data.synthetic import SyntheticSource

        folder = _synthetic_folder(root, split)
        if folder == root and not (root / "meta.json").is_file():
            subs = sorted(p.parent.name for p in root.glob("*/meta.json"))
            raise ValueError(f"{root}: give a split, one of {subs}")
        params = inspect.signature(SyntheticSource).parameters
        if folder == root and split is not None and "split" in params:
            source = SyntheticSource(folder, split=split, load_masks=load_masks)
        else:
            source = SyntheticSource(folder, load_masks=load_masks)
        objects = _library(folder, ycb_dir, notes)
        meta = folder / "meta.json"
        names = _meta_objects(meta)
        missing = sorted(set(names) - set(objects.names))
        if missing:
            raise ValueError(f"{meta}: objects {missing} are not in the object library")
        return OpenedSource(kind, root, split, source, objects, True, [meta], notes)
    if kind == "dexycb":
        from homae_model.data.dexycb import DexYCBSource

        if mano_dir is None:
            from homae_model.config import MANOConfig

            mano_dir = MANOConfig().resolved_path().parent
        objects = _library(root, ycb_dir, notes)
        if not (root / "models").is_dir() and ycb_dir is None:
            notes.append("DexYCB without models/: procedural stand-in objects used")
        split = split or DEFAULT_SPLITS[kind]
        source = DexYCBSource(root, split=split, hands=hands, mano_dir=mano_dir, objects=objects)
        calib = sorted((root / "calibration").rglob("*.yml"))
        return OpenedSource(kind, root, split, source, objects, True, calib, notes)
    from homae_model.data.ho3d import HO3DSource

    split = split or DEFAULT_SPLITS[kind]
    objects = _library(root, ycb_dir, notes)
    if not (root / "models").is_dir() and ycb_dir is None:
        notes.append("HO3D without models/ (or --ycb): procedural stand-in objects used")
    source = HO3DSource(root, split=split)
    return OpenedSource(
        kind, root, split, source, objects, split != "evaluation", [root / f"{split}.txt"], notes
    )


def _meta_objects(meta: Path) -> list[str]:
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta}: unreadable synthetic meta.json ({exc})") from exc
    names = data.get("object_names") or data.get("objects") or []
    return [str(n) for n in names] if isinstance(names, list) else []


def dataset_fingerprint(opened: OpenedSource, indices: list[int]) -> dict[str, Any]:
    """sha256 over the set's global files and the annotation files of the samples used.

    Args:
        opened: the opened source.
        indices: the sample indices evaluated.

    Returns:
        `{"sha256": hex, "files": count, "method": "..."}`.
    """
    digest = hashlib.sha256()
    count = 0
    seen: set[Path] = set()
    files = list(opened.global_files)
    for i in indices:
        files.extend(opened.annotation_files(i))
    for path in files:
        path = Path(path)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        rel = path.relative_to(opened.root) if path.is_relative_to(opened.root) else path
        digest.update(str(rel).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
        count += 1
    return {
        "sha256": digest.hexdigest(),
        "files": count,
        "method": "sha256 over (relative path, content) of the global and per-sample "
        "annotation files, in evaluation order",
    }
