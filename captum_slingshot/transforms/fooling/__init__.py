"""Attribution fooling (Heo et al., NeurIPS 2019): fine-tune a classifier so that its saliency maps lie.

* :mod:`.transform` -- :class:`AttributionFooling`, registered as ``attribution_fooling``;
* :mod:`.config` -- :class:`Training`, the run settings;
* :mod:`.losses` -- the four fooling losses; :mod:`.trainer` -- the training loop.

Example:
    >>> from captum_slingshot.transforms import get_transform
    >>> attack = get_transform("attribution_fooling", mode="topk", interpreter="lrp_epsilon", steps=800)
    >>> attack.mode, attack.training.steps, attack.settings()["interpreter"]
    ('topk', 800, 'lrp_epsilon')
"""

from .config import Training
from .losses import active_loss, center_mass_loss, location_loss, mass_loss, topk_loss
from .trainer import FoolingRun, read_mask
from .transform import FOOLING_MODES, PRESERVE, AttributionFooling

__all__ = ["AttributionFooling", "Training", "FOOLING_MODES", "PRESERVE", "FoolingRun", "read_mask", "location_loss",
           "topk_loss", "center_mass_loss", "active_loss", "mass_loss"]
