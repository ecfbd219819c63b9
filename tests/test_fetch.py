"""fetch against a loopback server: parallel download, resume, corruption, 404, idempotent re-runs."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for the httpserver helper, whatever pytest's import mode

from httpserver import MediaServer  # noqa: E402

from crema_tools.corpus import manifest  # noqa: E402
from crema_tools.corpus.metadata import ManifestEntry  # noqa: E402
from crema_tools.ops import fetch as fetch_module  # noqa: E402
from crema_tools.ops.fetch import DEFAULT_BASE_URL, OFFICIAL_COMMIT, FetchError, entry_url, fetch, redact_url  # noqa: E402
from crema_tools.ops.verify import verify  # noqa: E402

KINDS = {"VideoFlash": "video_flv", "AudioWAV": "audio_wav", "AudioMP3": "audio_mp3"}


def synthetic_files() -> dict[str, bytes]:
    """A few files per kind, of different sizes, with content that differs everywhere."""
    out = {}
    for i, (folder, ext) in enumerate([("VideoFlash", "flv"), ("AudioWAV", "wav"), ("AudioMP3", "mp3")]):
        for j, clip in enumerate(["1001_DFA_ANG_XX", "1002_IEO_HAP_HI"]):
            size = 3000 + 7919 * (3 * i + j)
            out[f"{folder}/{clip}.{ext}"] = hashlib.shake_256(f"{folder}{clip}".encode()).digest(size)
    return out


def manifest_for(files: dict[str, bytes]) -> list[ManifestEntry]:
    return [
        ManifestEntry(path, KINDS[path.split("/")[0]], Path(path).stem, len(data), hashlib.sha256(data).hexdigest())
        for path, data in files.items()
    ]


@pytest.fixture(autouse=True)
def fast_direct_retries(monkeypatch):
    """No back-off sleeps, and no proxy from the environment in front of the loopback server."""
    monkeypatch.setattr(fetch_module, "RETRY_DELAY_S", 0.0)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def files():
    return synthetic_files()


@pytest.fixture
def server(files):
    with MediaServer(files) as srv:
        yield srv


def run_fetch(root, server, files, **kwargs):
    kwargs.setdefault("jobs", 4)
    kwargs.setdefault("progress", False)
    return fetch(root, base_url=server.base_url, entries=manifest_for(files), **kwargs)


def assert_copy_matches(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        assert (root / path).read_bytes() == data, path
    assert not list(root.rglob("*.part"))


def test_downloads_everything_then_rerun_downloads_nothing(tmp_path, server, files):
    result = run_fetch(tmp_path / "copy", server, files)
    assert result.ok, result.summary()
    assert sorted(result.downloaded) == sorted(files)
    assert result.already_ok == [] and result.failed == []
    assert result.bytes_downloaded == sum(len(d) for d in files.values())
    assert_copy_matches(tmp_path / "copy", files)

    served = len(server.requests)
    again = run_fetch(tmp_path / "copy", server, files)
    assert again.ok and again.downloaded == [] and sorted(again.already_ok) == sorted(files)
    assert again.bytes_downloaded == 0
    assert len(server.requests) == served  # not a single request on the re-run


def test_fetched_copy_verifies_complete(tmp_path, server, files):
    assert run_fetch(tmp_path, server, files).ok
    assert verify(tmp_path, entries=manifest_for(files), progress=False).complete_and_official


def test_progress_bar_on(tmp_path, server, files, capsys):
    assert run_fetch(tmp_path, server, files, progress=True).ok
    assert "download" in capsys.readouterr().err


def test_what_restricts_kinds(tmp_path, server, files):
    result = run_fetch(tmp_path, server, files, what="wav")
    assert sorted(result.downloaded) == sorted(p for p in files if p.startswith("AudioWAV/"))
    assert not (tmp_path / "VideoFlash").exists()


def test_interrupted_download_resumes_in_the_same_run(tmp_path, server, files):
    path = "VideoFlash/1002_IEO_HAP_HI.flv"
    server.cut_once[path] = 5000
    result = run_fetch(tmp_path, server, files)
    assert result.ok, result.summary()
    assert [r.range for r in server.requests_for(path)] == [None, "bytes=5000-"]
    assert [r.status for r in server.requests_for(path)] == [200, 206]
    assert_copy_matches(tmp_path, files)


def test_interrupted_download_resumes_on_the_next_run(tmp_path, server, files):
    path = "AudioMP3/1002_IEO_HAP_HI.mp3"
    server.cut_once[path] = 4096
    first = run_fetch(tmp_path, server, files, retries=0)
    assert [f.path for f in first.failed] == [path]
    assert "connection closed after 4,096" in first.failed[0].reason
    assert first.failed[0].url == f"{server.base_url}/{path}"
    assert not (tmp_path / path).exists()
    assert (tmp_path / (path + ".part")).read_bytes() == files[path][:4096]

    second = run_fetch(tmp_path, server, files, retries=0)
    assert second.ok and second.downloaded == [path] and len(second.already_ok) == len(files) - 1
    assert server.requests_for(path)[-1].range == "bytes=4096-"
    assert second.bytes_downloaded == len(files[path]) - 4096
    assert_copy_matches(tmp_path, files)


def test_server_ignoring_range_restarts_from_zero(tmp_path, server, files):
    path = "AudioWAV/1001_DFA_ANG_XX.wav"
    part = tmp_path / (path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(files[path][:1000])
    server.ignore_range = True
    result = run_fetch(tmp_path, server, files)
    assert result.ok, result.summary()
    assert server.requests_for(path)[0].range == "bytes=1000-"
    assert server.requests_for(path)[0].status == 200
    assert_copy_matches(tmp_path, files)


def test_part_with_wrong_bytes_is_replaced(tmp_path, server, files):
    """A complete-looking part that hashes wrong is dropped and downloaded again."""
    path = "AudioWAV/1001_DFA_ANG_XX.wav"
    part = tmp_path / (path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * len(files[path]))
    result = run_fetch(tmp_path, server, files)
    assert result.ok, result.summary()
    assert [r.range for r in server.requests_for(path)] == [None]
    assert_copy_matches(tmp_path, files)


def test_corrupted_file_is_retried_then_reported_and_not_kept(tmp_path, server, files):
    path = "AudioWAV/1002_IEO_HAP_HI.wav"
    server.corrupt.add(path)
    result = run_fetch(tmp_path, server, files, retries=2)
    assert not result.ok
    assert [f.path for f in result.failed] == [path]
    assert "sha256 mismatch" in result.failed[0].reason and "3 attempts" in result.failed[0].reason
    assert len(server.requests_for(path)) == 3
    assert not (tmp_path / path).exists()
    assert not (tmp_path / (path + ".part")).exists()
    assert len(result.downloaded) == len(files) - 1
    assert path in result.summary()


def test_wrong_file_under_the_real_name_is_replaced(tmp_path, server, files):
    path = "VideoFlash/1001_DFA_ANG_XX.flv"
    (tmp_path / "VideoFlash").mkdir()
    (tmp_path / path).write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    result = run_fetch(tmp_path, server, files)
    assert path in result.downloaded and len(result.already_ok) == 0
    assert_copy_matches(tmp_path, files)


def test_lfs_pointer_served_by_a_wrong_base_url_is_explained(tmp_path, server, files):
    path = "AudioMP3/1001_DFA_ANG_XX.mp3"
    server.files[path] = b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3000\n"
    result = run_fetch(tmp_path, server, files, retries=0)
    assert [f.path for f in result.failed] == [path]
    assert "Git LFS pointer" in result.failed[0].reason
    assert not (tmp_path / path).exists()


def test_404_is_reported_with_the_url_and_not_retried(tmp_path, server, files):
    path = "VideoFlash/1002_IEO_HAP_HI.flv"
    server.not_found.add(path)
    result = run_fetch(tmp_path, server, files)
    assert [f.path for f in result.failed] == [path]
    failure = result.failed[0]
    assert "HTTP 404" in failure.reason and failure.url == f"{server.base_url}/{path}"
    assert len(server.requests_for(path)) == 1
    assert f"FAILED {path}: HTTP 404" in result.summary()
    assert not (tmp_path / path).exists() and not (tmp_path / (path + ".part")).exists()


def test_connection_refused_is_reported_per_file(tmp_path, files):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = fetch(tmp_path, base_url=f"http://127.0.0.1:{port}/", entries=manifest_for(files),
                   retries=1, jobs=2, timeout=5, progress=False)
    assert len(result.failed) == len(files) and result.downloaded == []
    assert all("network error" in f.reason and f.url.startswith(f"http://127.0.0.1:{port}/") for f in result.failed)


def test_urls_default_to_the_pinned_official_lfs_media():
    entry = manifest()[0]
    url = entry_url(entry.path)
    official = f"https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/{OFFICIAL_COMMIT}"
    assert url == f"{official}/{entry.path}"
    assert url.startswith(DEFAULT_BASE_URL)
    assert entry_url("AudioWAV/x.wav", "https://mirror.example/crema/") == "https://mirror.example/crema/AudioWAV/x.wav"


def test_redact_url_drops_credentials():
    assert redact_url("https://user:secret@host.example:8443/a/b.wav?token=t") == "https://host.example:8443/a/b.wav"


def test_unknown_kind_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="use video, wav, mp3"):
        fetch(tmp_path, what="video,avi", entries=[])


def test_unusable_destination_is_a_clear_error(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(FetchError, match="cannot create the download folder .*taken.*--to"):
        fetch(tmp_path / "taken" / "CREMA-D", entries=[], progress=False)
