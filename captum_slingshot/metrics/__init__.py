"""How auditors check: image similarity and preservation metrics (one module per metric).

* :mod:`.similarity` -- LPIPS, SSIM, MSE, Pearson correlation between images;
* :mod:`.fooling` -- how far an attribution map was moved (Heo et al.'s location, top-k,
  centre-of-mass and active fooling scores, their thresholds and the fooling success rate);
* :mod:`.accuracy`, :mod:`.auroc`, :mod:`.topk` -- the paper's preservation metrics (accuracy, the
  unit's AUROC for its class, the overlap of its top-k natural inputs), on top of
  :mod:`.activations` (the unit's activation on every input of a dataset);
* :mod:`.rank` -- how far a unit's ranking of natural images moved (Kendall's tau before/after,
  top-k overlap, class shares of the top-k: Nanfack et al.'s measures).

Units are given as in Captum's neuron methods (see :mod:`captum_slingshot.fv.units`): a
``layer`` (module of the model or dotted name) and a ``neuron_selector``. ``data`` may be a tensor
of inputs, an ``(inputs, labels)`` tuple, a ``TensorDataset``, a map-style dataset of ``(x, y)``
items or of ``x``, or a ``DataLoader``; inputs are fed as they are (normalize them the way the
model expects) on the model's device, in chunks of ``max_examples_per_batch``, in eval mode under
``torch.no_grad()`` (training flags restored, hooks removed, also on errors).
"""

from .accuracy import accuracy
from .activations import unit_activations
from .fooling import (
    MODES,
    active_swap_score,
    center_mass_distance,
    fooling_success_rate,
    fooling_threshold,
    is_fooled,
    location_score,
    rank_correlation,
    rank_correlation_matrix,
    topk_overlap,
)
from .auroc import auroc, unit_auroc
from .rank import RankingChange, class_shares, kendall_tau, ranking_change
from .similarity import lpips_distance, lpips_model, mse, pearson_matrix, ssim
from .topk import TopK, jaccard, top_k_activating

__all__ = [
    "lpips_distance", "lpips_model", "mse", "pearson_matrix", "ssim",
    "TopK", "accuracy", "auroc", "jaccard", "top_k_activating", "unit_activations", "unit_auroc",
    "MODES", "active_swap_score", "center_mass_distance", "fooling_success_rate", "fooling_threshold", "is_fooled",
    "location_score", "rank_correlation", "rank_correlation_matrix", "topk_overlap",
    "RankingChange", "class_shares", "kendall_tau", "ranking_change",
]
