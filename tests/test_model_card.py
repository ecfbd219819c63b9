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


def test_model_index_carries_the_metrics_with_protocol_and_seeds(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-vision")
    model.pretrained_cfg = replace(model.pretrained_cfg, weights="hf:MCG-NJU/videomae-base-finetuned-kinetics",
                                   license="CC-BY-NC-4.0")
    render_model_card(model, METRICS, repo_id="org/simple3d-speaker").save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.datasets == ["org/crema-d"] and data.base_model == "MCG-NJU/videomae-base-finetuned-kinetics"
    assert data.license == "cc-by-nc-4.0" and data.library_name == "crema-tools"
    results = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    assert set(results) == {(s, m) for s in ("validation", "test") for m in ("accuracy", "recall", "f1")}
    test = results[("test", "accuracy")]  # several seeds: the mean, the std beside it
    assert test.metric_value == pytest.approx(0.575) and test.metric_args == {"seeds": [0, 1, 2], "std": 0.011}
    assert (test.dataset_type, test.dataset_config, test.dataset_revision) == ("org/crema-d", "3d-vision", "0123abc")
    assert test.dataset_args == {"protocol": "speaker", "split_seed": 0, "source": "crema-d"}
    assert results[("validation", "recall")].metric_value == pytest.approx(0.6)  # no summary: the run's value
    assert results[("test", "f1")].metric_args["average"] == "macro"
    index = model_index(METRICS, "org/crema-d")
    assert index[0]["name"] == "simple3d-3d-vision"
    assert {r["dataset"]["split"] for r in index[0]["results"]} == {"validation", "test"}


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
    assert test["recall"].metric_value == pytest.approx(0.56) and test["recall"].metric_args["std"] == pytest.approx(0.03)
    assert "56.0% ± 3.0" in card.text and "These weights: training seed 1" in card.text
