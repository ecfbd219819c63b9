"""The 3D frames' resize and encode: swscale on the YUV planes, exact and repeatable."""

import hashlib

import numpy as np
import pytest
from helpers import run_python

from crema_tools.media import decode as media
from crema_tools.media import video3d


@pytest.fixture(scope="module")
def frames(corpus) -> list[np.ndarray]:
    planes, _, _ = media.read_all_frames(corpus / "VideoFlash/1001_DFA_ANG_XX.flv", "clip", pixel_format="yuv420p")
    return planes[:12]


def pil_resize(planes: np.ndarray, size: int) -> np.ndarray:
    """What the build did before swscale: each plane resized with PIL's bilinear filter."""
    from PIL import Image

    y, u, v = video3d.split_planes(planes)
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(p)).resize((n, n), Image.BILINEAR, reducing_gap=2.0))
           for p, n in ((y, size), (u, size // 2), (v, size // 2))]
    return np.concatenate([p.ravel() for p in out]).reshape(size * 3 // 2, size)


def digest(arrays) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


FULL = (0, 0, 480, 360)


def test_resize_shape_and_closeness_to_pil(frames):
    for planes in frames:
        out = video3d.crop_resize_yuv420(planes, FULL)
        assert out.shape == (336, 224) and out.dtype == np.uint8
        # the same bilinear filter, scaled to the reduction as PIL's is: at most 1 grey level apart
        assert np.abs(out.astype(int) - pil_resize(planes, 224).astype(int)).max() <= 1


def test_resize_repeats_exactly_in_process_and_in_a_fresh_one(frames, tmp_path):
    first = [video3d.crop_resize_yuv420(p, FULL) for p in frames]
    video3d.crop_resize_yuv420(frames[0], (10, 20, 200, 210), size=64)  # the scaler reconfigured in between
    assert digest(video3d.crop_resize_yuv420(p, FULL) for p in frames) == digest(first)
    np.save(tmp_path / "frames.npy", np.stack(frames))
    code = ("import hashlib, numpy as np; from crema_tools.media import video3d; "
            f"f = np.load({str(tmp_path / 'frames.npy')!r}); "
            "print(hashlib.sha256(b''.join(video3d.crop_resize_yuv420(p, (0, 0, 480, 360)).tobytes() for p in f)).hexdigest())")
    fresh = run_python("-c", code, check=True).stdout.strip()
    assert fresh == digest(first)


def test_face_crop_is_the_box_then_the_resize(frames):
    planes = frames[3]
    box = (101, 33, 301, 235)  # made even: x 100..300, y 32..234 (chroma 50..150, 16..117)
    y, u, v = video3d.split_planes(planes)
    cropped = np.concatenate([y[32:234, 100:300].ravel(), u[16:117, 50:150].ravel(), v[16:117, 50:150].ravel()])
    expected = video3d.crop_resize_yuv420(cropped.reshape(303, 200), (0, 0, 200, 202))
    assert np.array_equal(video3d.crop_resize_yuv420(planes, box), expected)


def test_crop_takes_the_box_region():
    planes = np.full((540, 480), 50, np.uint8)
    y, u, v = video3d.split_planes(planes)
    y[40:240, 100:300], u[20:120, 50:150], v[20:120, 50:150] = 200, 90, 160  # a square at x 100..300, y 40..240
    out = video3d.crop_resize_yuv420(planes, (100, 40, 300, 240))
    oy, ou, ov = video3d.split_planes(out)
    assert (oy == 200).all() and (ou == 90).all() and (ov == 160).all()


def test_yuv420_frame_round_trip(frames):
    y, u, v = video3d.split_planes(frames[0])
    views = (y[10:110, 20:220], u[5:55, 10:110], v[5:55, 10:110])  # not contiguous
    frame = video3d.yuv420_frame(*views)
    assert (frame.width, frame.height) == (200, 100)
    back = frame.to_ndarray(format="yuv420p")
    assert np.array_equal(back, np.concatenate([p.ravel() for p in views]).reshape(150, 200))


def test_encode_repeats_and_takes_frames_or_arrays(frames):
    resized = [video3d.crop_resize_frame(p, FULL) for p in frames]
    arrays = [f.to_ndarray(format="yuv420p") for f in resized]
    blob = video3d.encode_frames(resized)
    assert video3d.encode_frames(arrays) == blob == video3d.encode_frames([video3d.crop_resize_frame(p, FULL) for p in frames])
    decoded = video3d.decode_yuv(blob)
    assert decoded.shape == (len(frames), 336, 224)
    mse = np.mean((decoded.astype(float) - np.stack(arrays).astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 40  # crf 18: close to the frames it was given
