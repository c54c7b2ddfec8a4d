"""Any timm model as `timm:<name>`, with backbone weights from a local file and a fresh He-initialised head."""
from __future__ import annotations

import torch.nn as nn

from act.errors import ActError
from act.models.weights import read_state_dict, shorten


def create_timm(name: str, num_classes: int, in_channels: int, pretrained: str | None) -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise ActError(f"model.name=timm:{name} needs timm: pip install timm") from exc
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)
    except RuntimeError as exc:  # timm's "Unknown model (...)"
        raise ActError(f"model.name=timm:{name}: {exc}") from exc
    if pretrained:
        load_backbone(model, pretrained)
    init_head(model)
    return model


def classifier_names(model: nn.Module) -> tuple[str, ...]:
    """The module names of the classifier(s): one for most models, two for distilled ones."""
    names = model.default_cfg.get("classifier", "fc")
    return (names,) if isinstance(names, str) else tuple(names)


def init_head(model: nn.Module) -> None:
    """He-normal weights and zero bias on the head (ACT_SPEC.md "Models"), whatever timm's own default."""
    for name in classifier_names(model):
        head = model.get_submodule(name)
        if isinstance(head, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(head.weight)
            if head.bias is not None:
                nn.init.zeros_(head.bias)


def load_backbone(model: nn.Module, path: str) -> None:
    """Load every backbone weight of a local state dict; the file's classifier is left out (new head).

    timm's files and torchvision's fit alike where the names agree (ResNets: conv1, bn1,
    layer1..4, fc; torchvision's IMAGENET1K_V1 ResNet-50 is what the paper used). A stem
    trained on another channel count is adapted as timm adapts its own pretrained stems
    (summed to grey, or tiled). Any other backbone weight missing from the file, any weight
    the model lacks and any weight of another shape is an ActError naming them: a partly
    pre-trained run would change the experiment. A BN step counter missing from the file is
    fine: it carries no weights and many published files leave it out.
    """
    from timm.models import adapt_input_conv

    heads = tuple(f"{name}." for name in classifier_names(model))
    stem = f"{model.default_cfg.get('first_conv')}.weight"
    own = model.state_dict()
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(heads)}
    if stem in state and stem in own and state[stem].ndim == 4 and state[stem].shape[1] != own[stem].shape[1]:
        state[stem] = adapt_input_conv(own[stem].shape[1], state[stem])
    missing = [k for k in own if k not in state and not k.startswith(heads) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    reshaped = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
                if k in own and v.shape != own[k].shape]
    problems = [f"{what}: {named(keys)}" for what, keys in (("missing from the file", missing),
                                                           ("not in the model", unexpected),
                                                           ("of another shape", reshaped)) if keys]
    if problems:
        raise ActError(f"model.pretrained={path} does not fit {type(model).__name__} (timm:"
                       f"{model.default_cfg.get('architecture', '?')}); " + "; ".join(problems))
    model.load_state_dict(state, strict=False)


def named(keys: list[str], limit: int = 12) -> str:
    """The keys, the first `limit` by name and the rest counted."""
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} weights ({shorten(', '.join(keys[:limit]), 600)}{more})"
