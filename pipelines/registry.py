"""The pipeline registry: `pipeline.name` -> the Pipeline class, and the views each offers.

Each pipeline module registers its class with `@register`; the class says its name and the
named view variants it offers beside the public views (`variants`: pipeline.views -> what it
is). Config choices (pipeline.name, pipeline.views), the refusal of a variant given to
another pipeline, and `build_pipeline` read them here; adding a pipeline is its module with
`@register` plus one import in pipelines/__init__.py (tests/test_registry.py registers a toy one).
"""
from __future__ import annotations

from act.errors import ActError

PUBLIC = "public"  # the public code's views, offered by every pipeline (pipelines/views.py)

PIPELINES: dict[str, type] = {}


def register(cls: type) -> type:
    """Add a Pipeline class under `cls.name`; its name and variants become config choices."""
    PIPELINES[cls.name] = cls
    return cls


def pipeline_names() -> tuple[str, ...]:
    return tuple(PIPELINES)


def view_names() -> tuple[str, ...]:
    """pipeline.views's choices: public, then every registered pipeline's variants."""
    return (PUBLIC, *(v for cls in PIPELINES.values() for v in cls.variants))


def check_views(views: str, pipeline: type) -> None:
    """Refuse a variant the Pipeline class `pipeline` does not offer: a setting is never silently ignored."""
    if views == PUBLIC or views in pipeline.variants:
        return
    owners = [name for name, cls in PIPELINES.items() if views in cls.variants]
    if not owners:
        raise ActError(f"pipeline.views={views!r} is not allowed; choose one of: {', '.join(view_names())}")
    raise ActError(f"pipeline.views={views} is a view of the {owners[0]} pipeline, but this run uses "
                   f"pipeline.name={pipeline.name}; set pipeline.name={owners[0]} or pipeline.views={PUBLIC}")
