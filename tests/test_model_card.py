import json
from dataclasses import replace

import pytest
from huggingface_hub import ModelCard

import model_zoo
from model_zoo.card import MetricsError, model_index, read_metrics, render_model_card


def test_card_says_what_to_feed_and_where_weights_came_from(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-multimodal")
    model.save_pretrained(tmp_path / "simple3d")
    card = (tmp_path / "simple3d" / "README.md").read_text()
    assert "license: apache-2.0" in card and "pipeline_tag: video-classification" in card
    assert "(135, 3, 224, 448)" in card and "random initialisation" in card and "pad_to=135" in card
    assert f"{model.num_parameters():,} parameters" in card
    assert type(model_zoo.load_model(tmp_path / "simple3d")) is type(model)


def test_card_carries_a_non_commercial_licence(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-vision")
    model.pretrained_cfg = replace(model.pretrained_cfg, weights="MCG-NJU/videomae-base-finetuned-kinetics",
                                   license="CC BY-NC 4.0")
    model.save_pretrained(tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "**CC BY-NC 4.0**" in card

METRICS = {"model": "simple3d", "variant": "3d-vision", "protocol": "speaker", "seed": 0, "seeds": [0, 1, 2],
           "source": "crema-d", "dataset": {"path_or_repo": "org/crema-d", "revision": "0123abc"}, "recipe": "simple3d-3d-vision",
           "splits": {"validation": {"samples": 1480, "accuracy": 0.61, "uar": 0.6, "macro_f1": 0.59},
                      "test": {"samples": 1490, "accuracy": 0.58, "uar": 0.57, "macro_f1": 0.56}},
           "summary": {"test": {"accuracy": {"mean": 0.575, "std": 0.011}, "uar": {"mean": 0.565, "std": 0.012},
                                "macro_f1": {"mean": 0.555, "std": 0.013}}}}


def test_model_index_holds_load_dataset_arguments_and_metrics_only(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-vision")
    model.pretrained_cfg = replace(model.pretrained_cfg, weights="hf:MCG-NJU/videomae-base-finetuned-kinetics",
                                   license="CC-BY-NC-4.0")
    card = render_model_card(model, METRICS, repo_id="org/simple3d-speaker")
    card.save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.datasets == ["org/crema-d"] and data.base_model == "MCG-NJU/videomae-base-finetuned-kinetics"
    assert data.license == "cc-by-nc-4.0" and data.library_name == "crema-tools"
    results = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    # the speaker protocol has a validation split: both splits are the dataset's
    assert set(results) == {(s, m) for s in ("validation", "test") for m in ("accuracy", "recall", "f1")}
    test = results[("test", "accuracy")]  # several seeds: the mean; seeds and std are no metric arguments
    assert test.metric_value == pytest.approx(0.575) and test.metric_args is None
    assert test.metric_name == "Accuracy (test, mean of 3 training seeds)"
    assert (test.dataset_type, test.dataset_config, test.dataset_revision) == ("org/crema-d", "3d-vision", "0123abc")
    assert all(r.dataset_args is None for r in data.eval_results)  # protocol and seeds are no load_dataset arguments
    assert results[("validation", "recall")].metric_value == pytest.approx(0.6)  # no summary: the run's value
    assert results[("test", "f1")].metric_args == {"average": "macro"}
    # what left the metadata is in the text
    assert "57.5% ± 1.1" in card.text and "Training seeds: 0, 1, 2" in card.text and "Protocol `speaker`" in card.text
    index = model_index(METRICS, "org/crema-d")
    assert index[0]["name"] == "simple3d-3d-vision"
    assert {r["dataset"]["split"] for r in index[0]["results"]} == {"validation", "test"}


@pytest.fixture(scope="module")
def paper_dataset(corpus, tmp_path_factory):
    """2d-audio built with the paper's protocol: train and test, no validation split."""
    from crema_tools.builder.pipeline import build

    out = tmp_path_factory.mktemp("paper") / "crema-d"
    build(corpus, out, ["2d-audio"], progress=False)
    return out


PAPER_RUN = {"model": "resnet18", "variant": "2d-audio", "protocol": "paper", "seed": 0, "training_seed": 0,
             "source": "synthetic", "dataset": {"path_or_repo": "org/crema-d-sample", "revision": None},
             "training": {"validation": "held-out 10% of train (seed 0, by clip id)"},
             "splits": {"validation": {"samples": 2, "accuracy": 0.5, "uar": 0.5, "macro_f1": 0.4},
                        "test": {"samples": 6, "accuracy": 0.3333, "uar": 0.25, "macro_f1": 0.2}}}


def test_every_model_index_result_opens_with_load_dataset_as_the_card_names_it(paper_dataset, tmp_path):
    from datasets import load_dataset

    card = render_model_card(model_zoo.create_model("resnet18", variant="2d-audio"), PAPER_RUN)
    card.save(tmp_path / "README.md")
    results = ModelCard.load(tmp_path / "README.md").data.eval_results
    folder = {"org/crema-d-sample": str(paper_dataset)}  # the local build stands in for the Hub repository
    for r in results:
        ds = load_dataset(folder[r.dataset_type], r.dataset_config, split=r.dataset_split,
                          revision=r.dataset_revision, cache_dir=str(tmp_path / "cache"), **(r.dataset_args or {}))
        assert len(ds) == PAPER_RUN["splits"][r.dataset_split]["samples"]
    assert {r.dataset_split for r in results} == {"test"}  # the paper's validation is a hold-out of train
    with pytest.raises(ValueError, match='Unknown split "validation"'):  # what the card named before
        load_dataset(str(paper_dataset), "2d-audio", split="validation", cache_dir=str(tmp_path / "cache"))
    # the hold-out's numbers stay in the text, said to be a part of train
    assert "| validation ¹ | 2" in card.text and "¹ Not a split of the dataset: held-out 10% of train" in card.text


def test_a_run_that_does_not_say_what_it_validated_on_is_judged_by_its_protocol():
    from model_zoo.run_metrics import RunMetrics

    def run(protocol, **training):
        return RunMetrics({**PAPER_RUN, "protocol": protocol, "training": training})

    assert not run("paper").is_dataset_split("validation") and run("paper").is_dataset_split("test")
    assert run("speaker").is_dataset_split("validation")
    assert not run("split-file").is_dataset_split("validation")  # its splits are the file's: not claimed
    assert run("split-file", validation="validation").is_dataset_split("validation")
    assert not run("speaker", validation="held-out 10% of train (seed 3, by clip id)").is_dataset_split("validation")


def test_the_usage_snippet_of_the_card_runs(paper_dataset, tmp_path):
    """The Hub shows no snippet for crema-tools' checkpoints: the card's own must work as written."""
    model = model_zoo.create_model("resnet18", variant="2d-audio")
    model.save_pretrained(tmp_path / "model")
    card = render_model_card(model, PAPER_RUN, repo_id="org/resnet18-2d-audio")
    snippet = card.text.split("## Use", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace('"org/resnet18-2d-audio"', repr(str(tmp_path / "model")))
    snippet = snippet.replace('"org/crema-d-sample"', repr(str(paper_dataset)))
    scope = {}
    exec(compile(snippet, "model card", "exec"), scope)
    probabilities = scope["probabilities"]
    assert probabilities.shape == (1, 6) and float(probabilities.detach().sum()) == pytest.approx(1.0, abs=1e-5)


def test_card_without_a_hub_dataset_keeps_numbers_in_the_text_only(tmp_path):
    metrics = {**METRICS, "dataset": {"path_or_repo": str(tmp_path), "revision": None}, "summary": None, "seeds": None}
    card = render_model_card(model_zoo.create_model("simple3d", variant="3d-vision"), metrics)
    assert "model-index" not in card.data.to_dict() and card.data.datasets is None
    assert "| test       | 1490  | 58.0%" in card.text and "Protocol `speaker`" in card.text
    assert "decisions about people" in card.text and "ODbL" in card.text


def test_read_metrics_names_the_key_at_fault(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**METRICS, "splits": {"test": {"samples": 3, "accuracy": "high"}}}))
    with pytest.raises(MetricsError, match=r"metrics.json: splits.test.accuracy should be a number"):
        read_metrics(path)
    path.write_text(json.dumps({**METRICS, "seeds": "0,1"}))
    with pytest.raises(MetricsError, match="seeds should be a list"):
        read_metrics(path)


def test_config_names_the_library_so_transformers_refuses_it(tmp_path):
    from transformers import AutoConfig

    model = model_zoo.create_model("simple3d", variant="3d-audio")
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["library_name"] == config["model_type"] == "crema-tools"
    with pytest.raises(ValueError, match="model type `crema-tools`"):
        AutoConfig.from_pretrained(tmp_path)  # not read as a timm checkpoint (a random ResNet50)
    loaded = model_zoo.ZooModel.from_pretrained(tmp_path)  # the base class picks the saved model's class
    assert type(loaded) is model_zoo.Simple3D and loaded.pretrained_cfg == model.pretrained_cfg
    assert type(model_zoo.from_pretrained(tmp_path)) is model_zoo.Simple3D
    with pytest.raises(ValueError, match="holds a Simple3D, not a VisionTransformer"):
        model_zoo.VisionTransformer.from_pretrained(tmp_path)


def test_a_seed_run_of_several_reports_their_mean_and_std(tmp_path):
    from model_zoo.push import push_run, with_summary

    parent = tmp_path / "runs"
    for seed in (0, 1):
        model_zoo.create_model("simple3d", variant="3d-vision").save_pretrained(parent / f"seed-{seed}")
    rows = [{"model": "simple3d", "variant": "3d-vision", "protocol": "speaker", "source": "crema-d", "split": "test",
             "runs": 2, "seeds": [0, 1], "accuracy": {"mean": 0.57, "std": 0.02, "n": 2},
             "uar": {"mean": 0.56, "std": 0.03, "n": 2}, "macro_f1": {"mean": 0.55, "std": 0.04, "n": 2}}]
    (parent / "summary.json").write_text(json.dumps({"runs": [], "rows": rows}))
    with pytest.raises(ValueError, match="holds several runs.*seed-0"):
        push_run(parent, "org/simple3d")  # which weights to publish is the user's choice
    one = {**METRICS, "summary": None, "seeds": None, "training_seed": 1}
    merged = with_summary(one, parent / "summary.json")
    assert merged["summary"]["test"]["uar"] == {"mean": 0.56, "std": 0.03} and merged["seeds"] == [0, 1]
    card = render_model_card(model_zoo.create_model("simple3d", variant="3d-vision"), merged)
    test = {r.metric_type: r for r in card.data.eval_results if r.dataset_split == "test"}
    assert test["recall"].metric_value == pytest.approx(0.56) and test["recall"].metric_args == {"average": "macro"}
    assert test["recall"].metric_name == "UAR (test, mean of 2 training seeds)"
    assert "56.0% ± 3.0" in card.text and "These weights: training seed 1" in card.text
