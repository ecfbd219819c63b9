from dataclasses import replace

import model_zoo


def test_card_says_what_to_feed_and_where_weights_came_from(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-multimodal")
    model.save_pretrained(tmp_path / "simple3d")
    card = (tmp_path / "simple3d" / "README.md").read_text()
    assert "license: apache-2.0" in card and "pipeline_tag: video-classification" in card
    assert "(135, 3, 224, 448)" in card and "random initialisation" in card and "frames=135" in card
    assert f"{model.num_parameters():,} parameters" in card
    assert type(model_zoo.load_model(tmp_path / "simple3d")) is type(model)


def test_card_carries_a_non_commercial_licence(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-vision")
    model.pretrained_cfg = replace(model.pretrained_cfg, weights="MCG-NJU/videomae-base-finetuned-kinetics",
                                   license="CC BY-NC 4.0")
    model.save_pretrained(tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "license: cc-by-nc-4.0" in card and "**CC BY-NC 4.0**" in card
