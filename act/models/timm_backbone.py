"""Any timm model as `timm:<name>`, with backbone weights from a local file and a fresh He-initialised head."""
from __future__ import annotations

import torch.nn as nn

from act.errors import ActError
from act.models import read_state_dict


def create_timm(name: str, num_classes: int, in_channels: int, pretrained: str | None) -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise ActError(f"model.name=timm:{name} needs timm: pip install timm") from exc
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)
    except RuntimeError as exc:
        raise ActError(f"model.name=timm:{name}: {exc}") from exc
    head = model.get_classifier()
    if pretrained:
        load_backbone(model, pretrained)
    if isinstance(head, nn.Linear):
        nn.init.kaiming_normal_(head.weight)
        nn.init.zeros_(head.bias)
    return model


def load_backbone(model: nn.Module, path: str) -> None:
    """Load every weight whose name and shape fit; the classifier is always left out (new head)."""
    classifier = model.default_cfg.get("classifier", "fc")
    own = model.state_dict()
    state = {k: v for k, v in read_state_dict(path).items()
             if not k.startswith(f"{classifier}.") and k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state and not k.startswith(f"{classifier}.")]
    if not state:
        raise ActError(f"model.pretrained={path}: none of its weights fit {type(model).__name__}")
    if missing:
        raise ActError(f"model.pretrained={path}: {len(missing)} backbone weights are missing or of another "
                       f"shape, the first {missing[0]}")
    model.load_state_dict(state, strict=False)
