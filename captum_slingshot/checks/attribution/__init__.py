"""Checks for manipulated attributions (Heo et al.'s fooling), shaped like ``captum.metrics``.

Each takes an ``explanation_func`` and ``inputs`` and returns one score per input:

* :func:`interpreter_disagreement` -- two interpreters' maps of the same input part ways;
* :func:`input_dependence` -- the map follows its own input's content no more than other inputs';
* :func:`fixed_pattern` -- the maps of different inputs look alike;
* :func:`mosaic_focus` -- on an image of two classes, the map of one class leaves that class's half
  (Quantus' Focus; active fooling changes maps on such images only);
* :func:`explanation_drift` -- the map moved away from the one of the model before the fine-tune;
* :func:`class_swap` -- on an image of two classes, a class's map now looks like the original model's map of
  the other class.

The last two need the model before the fine-tune (``original_func=``; the audit's ``original=``).

:func:`audit_attributions` runs them on every interpreter of a model against a trusted reference
model and returns the layer audit's :class:`~captum_slingshot.checks.report.AuditReport`.

Example:
    >>> sorted(available_attribution_checks())
    ['class_swap', 'explanation_drift', 'fixed_pattern', 'input_dependence', 'interpreter_disagreement', 'mosaic_focus']
"""

from .audit import DEFAULT_INTERPRETERS, attribution_scores, audit_attributions
from .base import (
    ATTRIBUTION_CHECKS,
    AttributionCheckSpec,
    available_attribution_checks,
    explanation_maps,
    get_attribution_check,
    register_attribution_check,
    unregister_attribution_check,
)
from .dependence import input_content, input_dependence
from .disagreement import interpreter_disagreement
from .drift import explanation_drift
from .focus import focus_mosaics, mosaic_classes, mosaic_focus, own_half_share
from .pattern import fixed_pattern
from .swap import class_swap

__all__ = ["ATTRIBUTION_CHECKS", "AttributionCheckSpec", "available_attribution_checks", "explanation_maps",
           "get_attribution_check", "register_attribution_check", "unregister_attribution_check",
           "interpreter_disagreement", "input_dependence", "input_content", "fixed_pattern", "mosaic_focus",
           "focus_mosaics", "mosaic_classes", "own_half_share", "explanation_drift", "class_swap",
           "audit_attributions", "attribution_scores", "DEFAULT_INTERPRETERS"]
