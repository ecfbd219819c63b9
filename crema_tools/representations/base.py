"""What a representation is: one object that holds everything particular to one config.

In the spirit of video2dataset's subsamplers, each representation is a small declarative unit.
Its facts (name, modality, which split family it takes, its tensor layout, its tar members) are
fields; the rest are hooks that the build, the loader, the device transform, `inspect`, the cards
and predict call without knowing which representation they hold:

- build: `steps(options)` (the extraction steps it needs), `check_build_options(options)` (its
  build options' values), `render(features)` (its tar members), `sample_fields(features)` (its own
  per-sample fields), `unusable(features)` and `flags(features)` (quality checks),
  `report_params(options)` (how it was made);
- load: `options_type` (its load options, checked by `check_options`) and `decode(...)` (a
  sample's members to the item `crema_tools.load` yields);
- device: `assemble(batch, device)` (a compact batch to the model's [0, 1] input);
- `preview(media)` (the picture `inspect` draws), `card_tasks` and `stores` (card facts).

The per-clip features the steps produce are a `Features` mapping keyed by what each step outputs.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from ..errors import CremaToolsError, LoadError
from ..media.decode import MediaError

HEIGHT = 224
SQUARE_WIDTH = 224
WIDE_WIDTH = 448  # face (or frame) and spectrogram side by side
MODALITIES = ("audio", "vision", "multimodal")
SPLIT_FAMILIES = ("2d", "3d")
"""The protocols' two split families: the paper split its 2D and 3D experiments differently."""


class VariantError(CremaToolsError, ValueError):
    """An unknown representation name, or an option that does not apply to one."""


class Features(dict):
    """What the steps extracted from one clip, keyed by what each step outputs (video2dataset's
    streams): `features["mel_db"]`, `features.get("middle_frame")`. `errors` maps a step to why it
    failed; `derived` caches what several representations make alike (the 2D face image), made once;
    `files` names a video or WAV outside the corpus layout (predict)."""

    def __init__(self, clip_id: str, files: dict[str, Path] | None = None):
        super().__init__()
        self.clip_id = clip_id
        self.errors: dict[str, str] = {}
        self.derived: dict[str, Any] = {}
        self.files: dict[str, Path] = dict(files or {})

    def derive(self, name: str, make: Callable[[], Any]) -> Any:
        """`make()` once per clip, shared by every representation that asks for `name`."""
        if name not in self.derived:
            self.derived[name] = make()
        return self.derived[name]


class Step(NamedTuple):
    """One extraction step: reads media for one clip into `Features`, or raises MediaError."""

    name: str
    run: Callable[[Path, Features], None]
    outputs: tuple[str, ...] = ()
    after_faces: bool = False  # needs the faces the build finds between its two passes


def build_option(default, flag: str, applies_to: str):
    """A build option of one representation: its command-line `flag`, and the variant it applies to."""
    return field(default=default, metadata={"flag": flag, "applies_to": applies_to})


@dataclass(frozen=True)
class BuildOptions:
    """The build options that change what a representation extracts."""

    face_crop: bool = False  # 3D: crop every frame to the face tracked over the clip
    batch_faces: bool = False  # MTCNN runs on a GPU: faces are found between two passes, in the main process
    ogm_ge_fps: int = build_option(1, "--ogm-ge-fps", "ogm-ge")  # frames kept per second of video (OGM-GE's --fps)

    def given(self) -> dict[str, tuple[Any, str]]:
        """The representations' own options set away from their defaults: flag -> (value, the variant it applies to)."""
        return {f.metadata["flag"]: (getattr(self, f.name), f.metadata["applies_to"])
                for f in fields(self) if "flag" in f.metadata and getattr(self, f.name) != f.default}


class NonFiniteArray(ValueError):
    """An array about to be stored holds NaN or inf: the build skips the clip with this reason."""

    def __init__(self):
        super().__init__("a stored array holds NaN or infinite values; nothing of this clip is stored")


def npy(array: np.ndarray) -> bytes:
    """An array as a `.npy` member; the last guard that nothing stored holds NaN or inf."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise NonFiniteArray()
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def non_finite(features: Features, arrays: dict[str, str]) -> str | None:
    """Why a clip cannot be stored: a NaN or inf in one of `arrays` (stream -> what it is called)."""
    for stream, label in arrays.items():
        a = features.get(stream)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not np.isfinite(a).all():
            return f"{label} holds NaN or infinite values; nothing of this clip is stored"
    return None


LABEL_FIELDS = ("label", "clip_id", "actor_id", "emotion", "sentence", "intensity", "variant")
"""The identifying fields every item of the paper's representations carries (all collate into batches);
`variant` tells the device side which representation assembles a batch."""


def with_labels(item: dict, meta: dict) -> dict:
    return {**item, **{k: meta[k] for k in LABEL_FIELDS}}


def option(default, applies_to: str, why: str = ""):
    """A load option; `applies_to` and `why` make the error when it is given to another representation."""
    return field(default=default, metadata={"applies_to": applies_to, "why": why})


@dataclass(frozen=True)
class NoOptions:
    """A representation without load options of its own."""


@dataclass(frozen=True, kw_only=True)
class Representation:
    """One config: its facts as fields, its behaviour as the hooks below (see the module docstring)."""

    name: str
    modality: str  # "audio", "vision" or "multimodal"
    split_family: str  # "2d" or "3d": which of a protocol's splits it takes
    layout: str  # what a loaded sample is: "image" (C, H, W), "clip" (T, C, H, W), or the representation's own
    description: str
    shape: str  # the tensor shape `crema_tools.load` yields, as documented
    members: dict = field(default_factory=dict)  # tar member -> Hugging Face feature dtype
    metadata_fields: dict = field(default_factory=dict)  # per-sample fields besides the common ones
    needs: tuple[str, ...] = ()  # the extraction steps whose success it needs
    params: dict = field(default_factory=dict)  # how it is made, recorded in build.json, the report and the card
    paper: bool = True  # one of the reference paper's six (what the model zoo's encoders take)
    uses_face: bool = False  # the middle frame's MTCNN face decides its bytes
    stores: frozenset = frozenset()  # what the card explains about its members: "video", "mel"
    options_type: type = NoOptions

    # ------------------------------------------------------------------ facts

    @property
    def family(self) -> str:
        """The split family (kept under its older name)."""
        return self.split_family

    @property
    def dims(self) -> int:
        return 3 if self.layout == "clip" else 2

    @property
    def has_audio(self) -> bool:
        return self.modality in ("audio", "multimodal")

    @property
    def has_vision(self) -> bool:
        return self.modality in ("vision", "multimodal")

    @property
    def width(self) -> int:
        """Canonical width for CNNs; multimodal inputs put two 224-wide images side by side."""
        return WIDE_WIDTH if self.modality == "multimodal" else SQUARE_WIDTH

    @property
    def card_tasks(self) -> tuple[set[str], set[str]]:
        """Hub task categories and task ids."""
        categories, ids = set(), set()
        if self.has_audio:
            categories.add("audio-classification")
            ids.add("audio-emotion-recognition")
        if self.has_vision:
            categories.add("video-classification" if self.layout == "clip" else "image-classification")
            if self.layout != "clip":
                ids.add("multi-class-image-classification")
        return categories, ids

    # ------------------------------------------------------------------ build

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        """The bound extraction steps that give `needs` (with helpers such as a first pass for faces)."""
        raise NotImplementedError

    def finds_faces(self, options: BuildOptions) -> bool:
        """Whether MTCNN decides its bytes (so the device MTCNN runs on is part of its provenance)."""
        return self.uses_face

    def check_build_options(self, options: BuildOptions) -> None:
        """Refuse build option values it cannot build with, with a one-line BuildError."""

    def report_params(self, options: BuildOptions) -> dict:
        """`params` as this build made them."""
        return json.loads(json.dumps(self.params))

    def render(self, features: Features) -> dict[str, bytes]:
        """The sample's tar members besides `json` and `cls`."""
        raise NotImplementedError

    def sample_fields(self, features: Features) -> dict:
        """Its own fields of the sample's `json` (`metadata_fields`)."""
        return {}

    def unusable(self, features: Features) -> str | None:
        """Why the clip's features cannot be stored (checked before rendering), else None."""
        return None

    def flags(self, features: Features) -> list[dict]:
        """Kept-but-suspicious notes for report.json's `flagged`."""
        return []

    def face_not_found(self, features: Features) -> bool:
        return self.uses_face and not features["face"].found

    def fill_in(self, features: Features) -> list[str]:
        """Predict on one video: make up for what is missing where the model can do without it, saying
        so in the notes returned; raise MediaError with the reason where it cannot (faces found first)."""
        failed = [features.errors[s] for s in self.needs if s in features.errors]
        if failed:
            raise MediaError(failed[0])
        return []

    # ------------------------------------------------------------------ load

    def check_options(self, options) -> None:
        """Refuse option values that do not apply, with a one-line LoadError."""

    def decode(self, members: dict[str, bytes], meta: dict, options, split: str):
        """One sample's members (and parsed `json`) as the item `crema_tools.load` yields."""
        return with_labels(self.decode_inputs(members, meta, options, split), meta)

    def decode_inputs(self, members: dict[str, bytes], meta: dict, options, split: str) -> dict:
        """The item's tensors, without its labels (what predict feeds a model)."""
        raise NotImplementedError

    def assemble(self, batch: dict, device=None):
        """A collated compact batch to the model's input in [0, 1] on `device` (the device side)."""
        return batch["inputs"].to(device, non_blocking=True) if device is not None else batch["inputs"]

    def refuse_options(self, given: dict[str, Any], known: dict[str, Any]) -> None:
        """Options of other representations given to this one: one line saying where they apply."""
        if not given:
            return
        first = known.get(next(iter(given)))
        if first is None:
            raise LoadError(f"{self.name}: unknown option {next(iter(given))!r}; "
                            f"{self.name} takes {', '.join(f.name for f in fields(self.options_type)) or 'none'}")
        applies_to, why = first.metadata["applies_to"], first.metadata["why"]
        raise LoadError(f"{self.name}: {' and '.join(given)} apply to {applies_to} only" + (f" {why}" if why else ""))

    # ------------------------------------------------------------------ inspect

    def preview(self, members: dict[str, bytes]):
        """The PIL image `inspect` draws for one sample (its members besides json and cls)."""
        from ..media.pictures import placeholder

        return placeholder("no preview: " + ", ".join(sorted(members)))
