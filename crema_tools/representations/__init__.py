"""The representations, one module each, and their registry: the one place that lists them.

A new representation is one module (a `Representation` with its steps, rendering, decoding and
preview) plus one line in `REPRESENTATIONS` below; the build, the loader, the device transform,
`inspect`, the cards and predict find it here.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from . import clip3d, fbank, hicmae_av, image2d, ogm_ge, waveform
from .base import BuildOptions, Features, Representation, Step, VariantError
from .options import LoadOptions

REPRESENTATIONS: dict[str, Representation] = {
    r.name: r
    for r in (
        *image2d.REPRESENTATIONS,  # 2d-audio, 2d-vision, 2d-multimodal
        *clip3d.REPRESENTATIONS,  # 3d-audio, 3d-vision, 3d-multimodal
        ogm_ge.OGM_GE,
        fbank.FBANK,  # Kaldi fbank at 16 kHz: HiCMAE, MAE-DFER, AVF-MAE++, MMPareto
        waveform.WAVEFORM_16K,  # the 16 kHz waveform: speech SSL encoders (EmoBox)
        hicmae_av.HICMAE_AV,  # aligned face clips and the fbank: HiCMAE's (video, audio, label)
    )
}
PAPER_2D = tuple(name for name, r in REPRESENTATIONS.items() if r.paper and r.layout == "image")
PAPER_3D = tuple(name for name, r in REPRESENTATIONS.items() if r.paper and r.layout == "clip")
"""The reference paper's representations of each layout: the inputs the model zoo's encoders take."""

__all__ = ["BuildOptions", "Features", "LoadOptions", "PAPER_2D", "PAPER_3D", "REPRESENTATIONS", "Representation", "Step",
           "VariantError", "get_representation", "get_representations", "load_options"]


def get_representation(name: str) -> Representation:
    """The representation called `name`; the error lists the valid names."""
    try:
        return REPRESENTATIONS[name]
    except (KeyError, TypeError):
        raise VariantError(f"unknown variant {name!r}: choose from {', '.join(REPRESENTATIONS)}") from None


def get_representations(names) -> list[Representation]:
    """Several representations, in the order given, each once; at least one."""
    if not names:
        raise VariantError(f"no variant given: choose from {', '.join(REPRESENTATIONS)}")
    return [get_representation(n) for n in dict.fromkeys(names)]


def load_options(rep: Representation, given=None):
    """`rep`'s load options from keyword arguments (or an options object), checked by `rep`.

    An option of another representation is refused with where it applies, unless it is left at
    its default (so code that passes every option explicitly keeps working).
    """
    if isinstance(given, rep.options_type):
        rep.check_options(given)
        return given
    if is_dataclass(given):
        given = {f.name: getattr(given, f.name) for f in fields(given)}
    given = dict(given or {})
    own = {f.name for f in fields(rep.options_type)}
    known = {f.name: f for r in REPRESENTATIONS.values() for f in fields(r.options_type)}
    foreign = {k: v for k, v in given.items() if k not in own and (k not in known or v != known[k].default)}
    rep.refuse_options(foreign, known)
    options = rep.options_type(**{k: v for k, v in given.items() if k in own})
    rep.check_options(options)
    return options
