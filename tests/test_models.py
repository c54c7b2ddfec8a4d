"""The model registry: shapes, the 7-layer CNN's structure, local pretrained weights."""
import warnings

import pytest
import torch
import torch.nn as nn

from act.errors import ActError
from act.models import MODELS, create_model


def test_the_registry_holds_the_models_of_the_spec():
    assert {"sevencnn", "resnet32", "tinycnn"} <= set(MODELS)


@pytest.mark.parametrize("name", [*sorted(MODELS), "timm:resnet18"])
@pytest.mark.parametrize("channels,size,classes", [(3, 32, 100), (1, 8, 10)])
def test_every_model_fits_the_data_shape(name, channels, size, classes):
    model = create_model(name, classes, channels, size).eval()
    assert model(torch.randn(2, channels, size, size)).shape == (2, classes)


def test_sevencnn_is_the_spec_architecture():
    model = create_model("sevencnn", 100)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (3, 64, (3, 3)), (64, 64, (3, 3)), (64, 128, (3, 3)), (128, 128, (3, 3)), (128, 196, (3, 3)), (196, 16, (3, 3))]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 6 and all(bn.momentum == 0.1 for bn in bns)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(256, 512), (512, 100)]
    assert any(isinstance(m, nn.BatchNorm1d) and m.num_features == 512 for m in model.modules())


def test_sevencnn_flattens_16_features_for_8_pixel_grey_digits():
    model = create_model("sevencnn", 10, in_channels=1, image_size=8)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first_linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert first_conv.in_channels == 1 and first_linear.in_features == 16


def test_sevencnn_head_is_he_initialised():
    torch.manual_seed(0)
    weight = [m for m in create_model("sevencnn", 100).modules() if isinstance(m, nn.Linear)][0].weight
    assert weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)


def test_resnet32_has_32_weighted_layers():
    model = create_model("resnet32", 10)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 32


def test_timm_backbone_loads_local_weights_with_a_new_head(tmp_path):
    donor = create_model("timm:resnet18", 1000)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": donor.state_dict()}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every backbone weight fits: nothing to report
        model = create_model("timm:resnet18", 7, pretrained=str(path))
    backbone = {k: v for k, v in donor.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in backbone.items())
    assert model.fc.weight.shape == (7, 512)
    assert model.fc.weight.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.15)  # He-normal
    assert not model.fc.bias.any()


def test_timm_stem_of_another_channel_count_is_adapted(tmp_path):
    donor = create_model("timm:resnet18", 10)
    path = tmp_path / "r18.pt"
    torch.save(donor.state_dict(), path)
    model = create_model("timm:resnet18", 10, in_channels=1, pretrained=str(path))
    torch.testing.assert_close(model.conv1.weight, donor.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.layer4[1].bn1.weight, donor.layer4[1].bn1.weight)


def test_torchvisions_resnet50_state_dict_loads_into_timm_resnet50(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    donor = torchvision.models.resnet50()  # the architecture of IMAGENET1K_V1, random weights: nothing downloaded
    state = {k: v for k, v in donor.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    model = create_model("timm:resnet50", 200, pretrained=str(path))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert model.fc.weight.shape == (200, 2048)


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("layer4.1.conv2.weight"), r"missing from the file: 1 weights \(layer4.1.conv2.weight\)"),
    (lambda s: s.update({"layer5.0.conv1.weight": torch.ones(1)}), r"not in the model: 1 weights \(layer5.0.conv1.weight\)"),
    (lambda s: s.update({"layer4.1.bn2.weight": torch.ones(3)}), r"of another shape: 1 weights \(layer4.1.bn2.weight \(3,\) vs \(512,\)\)"),
])
def test_every_backbone_weight_that_does_not_fit_is_an_error_naming_it(tmp_path, change, message):
    state = create_model("timm:resnet18", 10).state_dict()
    change(state)
    path = tmp_path / "r18.pt"
    torch.save(state, path)
    with pytest.raises(ActError, match=message) as info:
        create_model("timm:resnet18", 10, pretrained=str(path))
    assert str(path) in str(info.value)


def test_a_weights_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "seven.pt"
    torch.save(create_model("sevencnn", 10).state_dict(), path)
    with pytest.raises(ActError, match=r"does not fit ResNet .*missing from the file: 100 weights \(conv1.weight, .* and 88 more\)"):
        create_model("timm:resnet18", 10, pretrained=str(path))


def test_an_unreadable_weights_file_is_named(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ActError, match="junk.pth cannot be read as weights"):
        create_model("timm:resnet18", 10, pretrained=str(path))


def test_own_models_load_a_strict_local_state_dict(tmp_path):
    donor = create_model("tinycnn", 10)
    path = tmp_path / "tiny.pt"
    torch.save(donor.state_dict(), path)
    model = create_model("tinycnn", 10, pretrained=str(path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), donor.state_dict().values()))
    with pytest.raises(ActError, match="does not fit the model: size mismatch for fc.weight"):
        create_model("tinycnn", 5, pretrained=str(path))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ActError, match="no such file"):
        create_model("timm:resnet18", 10, pretrained=str(tmp_path / "nope.pth"))


def test_unknown_model_lists_the_choices():
    with pytest.raises(ActError, match="sevencnn") as info:
        create_model("vgg", 10)
    assert "timm:<name>" in str(info.value)
