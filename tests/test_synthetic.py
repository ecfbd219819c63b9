import wave

import av
import numpy as np

from crema_tools.corpus import EMOTIONS, official_clip_ids
from crema_tools.media.decode import read_middle_frame
from crema_tools.media.faces import detect_faces
from crema_tools.synthetic import AUDIO_GROUP, VISION_GROUP, generate_corpus, sample_clip_ids


def test_sample_uses_real_clip_ids_and_every_emotion():
    ids = sample_clip_ids()
    assert len(ids) == 144 and set(ids) <= set(official_clip_ids())
    assert {i.split("_")[2] for i in ids} == set(EMOTIONS)


def test_files_have_the_official_formats(corpus):
    flv = corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    with av.open(str(flv)) as c:
        assert c.format.name == "flv"
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, v.height, float(v.average_rate)) == ("flv", 480, 360, 30.0)
        assert a.codec_context.name.startswith("mp3") and a.rate == 22050
    with wave.open(str(corpus / "AudioWAV" / "1001_DFA_ANG_XX.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 1.5 < w.getnframes() / 16000 < 3.5


def test_mtcnn_finds_the_face(corpus):
    frames = [read_middle_frame(corpus / "VideoFlash" / f"{cid}.flv", cid)[0]
              for cid in ("1001_DFA_ANG_XX", "1002_IEO_SAD_HI", "1002_DFA_NEU_XX")]
    assert all(f.found and f.probability > 0.95 for f in detect_faces(frames))


def test_generation_is_byte_identical(tmp_path):
    ids = ["1001_DFA_HAP_XX"]
    generate_corpus(tmp_path / "a", ids, seed=3)
    generate_corpus(tmp_path / "b", ids, seed=3)
    generate_corpus(tmp_path / "c", ids, seed=4)
    for rel in ("VideoFlash/1001_DFA_HAP_XX.flv", "AudioWAV/1001_DFA_HAP_XX.wav"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        assert (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / rel).read_bytes()


def test_modalities_are_complementary():
    """Vision alone tells 3 groups, audio alone 2, and only both together tell all six emotions."""
    assert len(set(VISION_GROUP.values())) == 3 and len(set(AUDIO_GROUP.values())) == 2
    pairs = {(VISION_GROUP[e], AUDIO_GROUP[e]) for e in EMOTIONS}
    assert len(pairs) == 6


def test_pitch_and_tint_are_in_the_media(corpus):
    """The designed cues survive encoding: high-pitch emotions have a higher spectral centroid."""
    def centroid(cid):
        with wave.open(str(corpus / "AudioWAV" / f"{cid}.wav")) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
        spec = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / 16000)
        low = freqs < 1000
        return (spec[low] * freqs[low]).sum() / spec[low].sum()

    assert centroid("1001_DFA_ANG_XX") > 1.4 * centroid("1001_DFA_HAP_XX")
    ang = read_middle_frame(corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv", "")[0].astype(float)
    fea = read_middle_frame(corpus / "VideoFlash" / "1001_DFA_FEA_XX.flv", "")[0].astype(float)
    mid = np.s_[120:220, 180:300]
    assert ang[mid][..., 0].mean() - ang[mid][..., 2].mean() > fea[mid][..., 0].mean() - fea[mid][..., 2].mean() + 20
