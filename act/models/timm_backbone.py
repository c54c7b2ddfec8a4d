"""Any timm model as `timm:<name>`, with backbone weights from a local file and a fresh He-initialised head."""
from __future__ import annotations

import warnings

import torch.nn as nn

from act.errors import ActError
from act.models import read_state_dict, shorten


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
    """Load every backbone weight whose name and shape fit; the classifier is always left out (new head).

    A stem trained on another channel count is adapted as timm adapts its own pretrained stems
    (summed to grey, or tiled). Weights that do not fit are skipped with a warning naming them,
    so a partly pre-trained run is never silent; a file of which nothing fits is refused.
    """
    from timm.models import adapt_input_conv

    heads = tuple(f"{name}." for name in classifier_names(model))
    stem = f"{model.default_cfg.get('first_conv')}.weight"
    own = model.state_dict()
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(heads)}
    if stem in state and stem in own and state[stem].ndim == 4 and state[stem].shape[1] != own[stem].shape[1]:
        state[stem] = adapt_input_conv(own[stem].shape[1], state[stem])
    fitting = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    if not fitting:
        raise ActError(f"model.pretrained={path}: none of its weights fit {type(model).__name__}; "
                       f"is it a checkpoint of this architecture?")
    model.load_state_dict(fitting, strict=False)
    # BN step counters are absent from many published checkpoints and carry no weights.
    missing = [k for k in own if k not in state and not k.startswith(heads) and not k.endswith("num_batches_tracked")]
    reshaped = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
                if k in own and k not in fitting]
    unexpected = [k for k in state if k not in own]
    problems = [f"{len(keys)} {what} (first: {shorten(keys[0], 120)})"
                for what, keys in (("backbone weights missing from the file", missing),
                                   ("weights of another shape, skipped", reshaped),
                                   ("weights the model does not have, ignored", unexpected)) if keys]
    if problems:
        warnings.warn(f"model.pretrained={path}: loaded {len(fitting)} weights; " + "; ".join(problems),
                      stacklevel=3)
