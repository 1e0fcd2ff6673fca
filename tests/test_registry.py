"""`kcnn.create_model` refuses what the builder cannot take: an option it does not have, and a
model whose classifier head could never fit in memory."""

import pytest

import kcnn


def test_an_unknown_option_is_named_with_the_builders_options():
    with pytest.raises(ValueError) as caught:
        kcnn.create_model("tiny_cnn", bogus=1, classes=3)
    message = str(caught.value)
    assert "'bogus'" in message and "tiny_cnn" in message
    for option in ("include_top", "input_shape", "classes", "classifier_activation"):
        assert option in message
    assert "\n" not in message


def test_a_misspelt_option_gets_the_closest_one_suggested():
    with pytest.raises(ValueError, match=r"'widht' \(did you mean width\b"):
        kcnn.create_model("resnet18", widht=0.5)


def test_unknown_options_are_refused_through_model_kwargs_and_backbone_options():
    from kcnn.training import build_model
    from kcnn.transfer import build

    with pytest.raises(ValueError, match="'dropuot'"):
        build_model("tiny_cnn", model_kwargs={"dropuot": 0.5})
    with pytest.raises(ValueError, match="'alpha'"):
        build(
            "tiny_resnet",
            3,
            "frozen",
            weights=None,
            input_shape=(32, 32, 3),
            backbone_options={"alpha": 0.5},
        )
    with pytest.raises(
        ValueError,
        match=r"backbone 'MobileNetV2' has no option 'alhpa' \(did "
        r"you mean alpha\?\); its options are: .*alpha",
    ):
        build(
            "MobileNetV2",
            3,
            "frozen",
            weights=None,
            input_shape=(32, 32, 3),
            backbone_options={"alhpa": 0.5},
        )


def test_a_head_too_big_for_any_memory_is_refused_with_its_parameter_count():
    with pytest.raises(ValueError) as caught:
        kcnn.create_model("tiny_cnn", classes=10**9)
    message = str(caught.value)
    assert message.startswith("classes=1,000,000,000 is too many")
    assert "'logits' would have 785,000,000,000 parameters" in message


def test_hidden_layers_are_held_to_the_memory_of_the_machine(monkeypatch):
    from kcnn.models import common

    monkeypatch.setattr(common, "physical_memory", lambda: 2**20)
    assert kcnn.create_model("mlp").count_params() == 101_770
    with pytest.raises(ValueError, match=r"hidden_units=1,000 .* 'fc1' would have 785,000 "):
        kcnn.create_model("mlp", hidden_units=1000)
    with pytest.raises(ValueError, match=r"fc_units=1,000 .* 'fc1' would have 785,000 "):
        kcnn.create_model("configurable_cnn", filters=(16,), fc_units=1000, input_shape=(14, 14, 1))


# (model, options, the facts of the model built with them that the registry's defaults miss);
# include_top=False, a small input and thin layers keep the builds fast.
SMALL = dict(include_top=False, input_shape=(32, 32, 3))
OPTION_FACTS = [
    ("vgg16", dict(SMALL, batch_norm=True), dict(gradcam_layer="stage5_relu3")),
    ("resnet18", dict(SMALL, width=0.25, preact=True), dict(gradcam_layer="stage4_post_relu")),
    ("resnet18", dict(SMALL, width=0.25, stem="cifar"), dict(min_input_size=8)),
    ("lenet5", dict(include_top=False), dict(min_input_size=16)),
    pytest.param(
        "inception_v3",
        dict(SMALL, width=0.125, stem="cifar"),
        dict(min_input_size=7),
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("name", "options", "facts"), OPTION_FACTS)
def test_model_facts_are_those_of_the_model_built_with_the_options(name, options, facts):
    info = kcnn.model_facts(name, **options)
    for fact, value in facts.items():
        assert getattr(info, fact) == value != getattr(kcnn.model_info(name), fact)
    # The smallest size is the builder's: it builds there and refuses one pixel less.
    size, channels = info.min_input_size, info.input_shape[2]
    model = kcnn.create_model(name, **{**options, "input_shape": (size, size, channels)})
    assert model.get_layer(info.gradcam_layer).output.shape[1] >= 1
    with pytest.raises(ValueError, match="too small"):
        kcnn.create_model(name, **{**options, "input_shape": (size - 1, size - 1, channels)})


@pytest.mark.slow
@pytest.mark.parametrize("name", kcnn.list_models())
def test_the_registrys_facts_are_those_of_the_model_built_with_the_defaults(name):
    info = kcnn.model_info(name)
    built = kcnn.model_facts(name)
    assert (info.input_shape, info.min_input_size, info.gradcam_layer) == (
        built.input_shape,
        built.min_input_size,
        built.gradcam_layer,
    )
