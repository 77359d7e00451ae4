"""How auditors check: defense checks shaped like ``captum.metrics`` and a layer audit.

Every check is a function ``check(model, layer, neuron_selector, *, param, data=None, ...,
max_examples_per_batch=None, seed=0, return_details=False)`` returning one score per unit
(``(U,)`` for a list of selectors, 0-d for one), registered by name with what it needs
(:class:`CheckSpec`: score direction, natural data, shared renders, cost):

* :func:`strategy_divergence` -- the FVs disagree across AM strategies, or another strategy
  climbs higher than the reference;
* :func:`natural_gap` -- the FV is far from the unit's top-k natural images;
* :func:`slingshot_field` -- one attracting point explains the unit's gradient field;
* :func:`activation_excess` -- the FV's activation lies far above the natural range;
* :func:`processing_similarity` -- the network processes the FV unlike the unit's top natural
  images, layer by layer (Geirhos et al.'s sanity check).

:func:`audit_layer` runs them on every unit of a layer, with one :class:`RenderCache` shared by
the checks that score FVs, and flags outliers by robust z-scores.

:mod:`.attribution` holds the checks for fooled *attributions* (one score per input:
:func:`interpreter_disagreement`, :func:`input_dependence`, :func:`fixed_pattern`) and
:func:`audit_attributions`, a model-level audit against a trusted reference model.

Example:
    >>> from captum_slingshot.checks import CHECKS
    >>> {name: spec.higher_is_more_suspicious for name, spec in CHECKS.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'activation_excess': True, 'natural_gap': True, 'processing_similarity': True, 'slingshot_field': True,
     'strategy_divergence': True}
"""

from .attribution import (
    ATTRIBUTION_CHECKS, attribution_scores, audit_attributions, available_attribution_checks, fixed_pattern,
    input_dependence, interpreter_disagreement,
)
from .audit import COMBINE_RULES, DEFAULT_CHECKS, audit_layer, route_settings
from .base import CHECKS, CheckSpec, available_checks, get_check, register_check, unregister_check
from .divergence import DEFAULT_STRATEGIES, dissimilarity_matrix, resolve_strategy, strategy_divergence
from .excess import activation_excess
from .field import DEFAULT_RADII, fit_attractor, slingshot_field
from .natural import natural_gap
from .processing import processing_similarity
from .renders import RenderCache
from .report import AuditReport, parse_cell, read_table, robust_z

__all__ = [
    "CHECKS", "CheckSpec", "available_checks", "get_check", "register_check", "unregister_check",
    "strategy_divergence", "DEFAULT_STRATEGIES", "dissimilarity_matrix", "resolve_strategy",
    "natural_gap", "activation_excess", "processing_similarity",
    "slingshot_field", "fit_attractor", "DEFAULT_RADII",
    "audit_layer", "DEFAULT_CHECKS", "COMBINE_RULES", "route_settings", "RenderCache",
    "AuditReport", "read_table", "robust_z", "parse_cell",
    "ATTRIBUTION_CHECKS", "available_attribution_checks", "interpreter_disagreement", "input_dependence",
    "fixed_pattern", "audit_attributions", "attribution_scores",
]
