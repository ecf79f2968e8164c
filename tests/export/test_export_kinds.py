"""`zoo.export.kinds`: which writer a model goes to, and the requests refused before anything is written."""

import pytest
from export_helpers import VOCABULARY, build_tiny

import zoo
from zoo.export.kinds import model_kind


@pytest.fixture(scope="module")
def dual_encoder():
    return zoo.build("cnn_lstm_dual_encoder", vocab_size=len(VOCABULARY), max_length=6, conv_filters=(4,),
                     image_units=8, embed_dim=8, rnn_units=(8,), projection_dim=6)


def test_each_model_kind_is_recognised(dual_encoder):
    captioner = zoo.build("cnn_lstm_captioner", vocab_size=len(VOCABULARY), max_length=6, embed_dim=8,
                          rnn_units=(8,), attention_dim=8, num_heads=2, conv_filters=(4,), image_units=8)
    assert [model_kind(m) for m in (build_tiny(), dual_encoder, captioner)] == ["classifier", "dual_encoder",
                                                                              "captioner"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, r"pass class_prompts=\{class name: \[prompts\]\}"),
        ({"class_prompts": {"one": []}}, r"class_prompts\['one'\] is empty"),
        ({"class_prompts": {"one": "a one"}}, r"class_prompts\['one'\] = 'a one': expected a list of prompt strings"),
        ({"class_prompts": {"one": ["a one"]}, "class_names": ["two"]}, r"class_names=\['two'\] disagrees"),
        ({"class_prompts": [["a one"], ["a two"]]}, "a list of 2 prompt lists: pass class_names"),
        ({"class_prompts": {"one": ["a one"]}, "vocabulary": [*VOCABULARY, "extra"]},
         "17 tokens but the model's token embedding has 16 rows"),
        ({"class_prompts": {"one": ["a one"]}, "format": "litert"}, "format='litert': a dual encoder exports as"),
    ],
    ids=["no-prompts", "empty-class", "string-not-list", "names-disagree", "unnamed-lists", "vocabulary-too-large",
         "litert"],
)
def test_bad_dual_encoder_requests_are_refused_before_writing(dual_encoder, tmp_path, kwargs, message):
    kwargs = {"vocabulary": VOCABULARY, **kwargs}
    with pytest.raises(ValueError, match=message):
        zoo.export_model(dual_encoder, tmp_path / "export", kwargs.pop("format", "tf_saved_model"), **kwargs)
    assert not (tmp_path / "export").exists()


def test_class_prompts_are_refused_for_a_classifier(tmp_path):
    with pytest.raises(ValueError, match="class_prompts is for dual encoders"):
        zoo.export_model(build_tiny(), tmp_path / "export", vocabulary=VOCABULARY, class_prompts={"a": ["a"]})
