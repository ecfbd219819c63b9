"""The media code under PyAV 18 and 19 alike.

PyAV 19 (Python 3.12 and later) gives rationals (`time_base`, `average_rate`, `guessed_rate`) as
`av.AVRational`, never None (unset is a falsy `AVRational(0, 1)`), and its streams refuse use once
their file is closed. These tests hand the readers streams that behave so on whichever PyAV is
installed, and run the real `av.AVRational` where there is one.
"""

from contextlib import contextmanager
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest
from helpers import run_python

from crema_tools.media import decode
from crema_tools.media.decode import frame_rate, rational


class Rational:
    """What PyAV 19's `av.AVRational` offers the code: numerator, denominator, falsy at zero."""

    def __init__(self, numerator: int, denominator: int):
        self.numerator, self.denominator = numerator, denominator

    def __bool__(self) -> bool:
        return self.numerator != 0


KINDS = [Fraction, Rational] + ([av.AVRational] if hasattr(av, "AVRational") else [])
"""The forms a rational takes: PyAV 18's Fraction, PyAV 19's AVRational (and a stand-in for it)."""


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_rational_reads_every_form_and_unset_is_none(kind):
    assert rational(kind(1, 24)) == Fraction(1, 24) and type(rational(kind(1, 24))) is Fraction
    assert rational(kind(30000, 1001)) == Fraction(30000, 1001)
    assert rational(kind(0, 1)) is None  # PyAV 19's unset
    assert rational(None) is None  # PyAV 18's unset
    assert rational(Rational(0, 0)) is None and rational("1/24") is None
    assert frame_rate(SimpleNamespace(average_rate=kind(25, 1))) == 25.0
    assert frame_rate(SimpleNamespace(average_rate=kind(0, 1))) == frame_rate(SimpleNamespace(average_rate=None)) == 30.0


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_container_seconds_from_the_stream_when_the_container_states_none(kind):
    container = SimpleNamespace(duration=None)
    assert decode._container_seconds(container, SimpleNamespace(duration=2500, time_base=kind(1, 1000))) == 2.5
    assert decode._container_seconds(container, SimpleNamespace(duration=2500, time_base=kind(0, 1))) == 0.0
    assert decode._container_seconds(SimpleNamespace(duration=1_500_000), None) == 1.5


class Av19Stream:
    """A real stream as PyAV 19 hands it out: rationals as `kind` (those named in `unset` unset, as
    0/1), and every attribute refused once its file is closed."""

    def __init__(self, stream, kind, unset=()):
        self._stream, self._kind, self._unset, self.closed = stream, kind, unset, False

    def __getattr__(self, name):
        if self.closed:
            raise AssertionError("Container is not open")
        value = getattr(self._stream, name)
        if name in ("time_base", "average_rate", "guessed_rate"):
            return self._kind(0, 1) if name in self._unset or value is None else self._kind(value.numerator, value.denominator)
        return value


class Container:
    """The real container, handed the real stream where the reader passes the stand-in back to PyAV."""

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def seek(self, offset, *, stream=None, **kw):
        return self._container.seek(offset, stream=getattr(stream, "_stream", stream), **kw)


@pytest.fixture()
def as_av19(monkeypatch):
    """Make the readers see PyAV 19 streams: `as_av19(kind, unset)`."""
    real = decode._media_stream

    def install(kind, unset=()):
        @contextmanager
        def media_stream(path, label, what):
            with real(path, label, what) as (container, stream, duration):
                proxy = Av19Stream(stream, kind, unset)
                try:
                    yield Container(container), proxy, duration
                finally:
                    proxy.closed = True

        monkeypatch.setattr(decode, "_media_stream", media_stream)

    return install


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("unset", [(), ("time_base", "average_rate")], ids=["stated", "unset"])
def test_readers_give_the_same_frames_and_audio_with_pyav19_streams(corpus, as_av19, kind, unset):
    flv = corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    image, duration = decode.read_middle_frame(flv, "clip")
    frames, times, _ = decode.read_all_frames(flv, "clip")
    audio = decode.read_flv_audio(flv, "clip")
    as_av19(kind, unset)
    image19, duration19 = decode.read_middle_frame(flv, "clip")  # unset time base: seeks in the container's
    frames19, times19, _ = decode.read_all_frames(flv, "clip")  # the frame rate read before the file closes
    audio19 = decode.read_flv_audio(flv, "clip")
    assert duration19 == duration and np.array_equal(image19, image)
    assert times19 == times and all(np.array_equal(a, b) for a, b in zip(frames19, frames, strict=True))
    assert audio19.rate == audio.rate and np.array_equal(audio19.samples, audio.samples)


def test_a_stream_refused_after_close_is_refused_by_the_stand_in(corpus, as_av19):
    """The stand-in refuses what PyAV 19 refuses, so the test above would catch a stream read too late."""
    as_av19(Rational)
    with decode._media_stream(corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv", "clip", "video") as (_, stream, _):
        assert frame_rate(stream) == 30.0
    with pytest.raises(AssertionError, match="Container is not open"):
        frame_rate(stream)


def test_frames_convert_in_a_forked_worker_after_the_parent_converted(corpus):
    """PyAV 19 converted frames on a pool of threads that a forked child (the build's workers, DataLoader
    workers) inherits without its threads: the child's first conversion waited forever. One thread each."""
    flv = corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    code = (
        "import multiprocessing\n"
        "from pathlib import Path\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from crema_tools.media import decode\n"
        f"flv = Path({str(flv)!r})\n"
        "first, _ = decode.read_middle_frame(flv, 'clip')\n"
        "with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('fork')) as pool:\n"
        "    again, _ = pool.submit(decode.read_middle_frame, flv, 'clip').result(timeout=60)\n"
        "    frames = pool.submit(decode.read_all_frames, flv, 'clip').result(timeout=60)[0]\n"
        "assert (first == again).all() and len(frames) > 30\n"
    )
    done = run_python("-c", code, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
