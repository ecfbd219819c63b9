"""The package's front door: the documented API, the version, `python -m crema_tools`."""

from helpers import run_cli, run_python

import crema_tools


def test_build_stays_callable_after_load_imports_the_loader(corpus, tmp_path):
    """`crema_tools.build` is the function even once the loader (and the builder package) are imported."""
    crema_tools.build(corpus, tmp_path, ["2d-audio"], progress=False, clip_ids=["1001_DFA_ANG_XX", "1002_DFA_SAD_XX"])
    dataset = crema_tools.load(tmp_path, "2d-audio", "train")
    assert callable(crema_tools.build) and callable(crema_tools.load) and callable(crema_tools.collate)
    reports = crema_tools.build(corpus, tmp_path, ["2d-audio"], progress=False,
                                clip_ids=["1001_DFA_ANG_XX", "1002_DFA_SAD_XX"])
    assert reports["2d-audio"]["samples"] == 2 and len(dataset) + len(crema_tools.load(tmp_path, "2d-audio", "test")) == 2


def test_loading_does_not_import_the_builder():
    code = "import sys, crema_tools.loading; print(any(m.startswith('crema_tools.builder') for m in sys.modules))"
    r = run_python("-c", code)
    assert r.returncode == 0 and r.stdout.strip() == "False"


def test_the_model_zoo_imports_torchvision_and_transformers_only_to_build_a_model():
    """`python -m model_zoo.train --help` and every tool start in the time torch takes, not seconds more."""
    code = ("import sys, model_zoo.train, model_zoo.evaluate; heavy = ('torchvision', 'transformers'); "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy})); "
            "model_zoo.create_model('resnet18', variant='2d-audio'); "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))")
    r = run_python("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["[]", "['torchvision']"]


def test_version_and_python_dash_m():
    from importlib.metadata import version

    r = run_cli("--version", module="crema_tools")
    assert r.returncode == 0 and r.stdout.strip() == f"crema-tools {crema_tools.__version__}"
    assert version("crema-tools") == crema_tools.__version__  # one source for the version


def test_every_error_the_cli_catches_shares_one_base():
    from crema_tools.builder.pipeline import BuildError
    from crema_tools.corpus import ClipIdError, SplitError
    from crema_tools.errors import CremaToolsError, LoadError
    from crema_tools.media.decode import MediaError
    from crema_tools.ops.fetch import FetchError
    from crema_tools.ops.verify import RawFolderError
    from crema_tools.variants import VariantError
    from model_zoo.config import ModelZooError

    for error in (BuildError, ClipIdError, SplitError, LoadError, FetchError, MediaError, VariantError,
                  RawFolderError, ModelZooError):
        assert issubclass(error, CremaToolsError), error
