"""Peer attacks on feature visualization (METHOD.md §6), each a registered transform with the slingshot's run comforts.

* :mod:`.nanfack` -- :class:`ActivationMaxAttack` (``activation_max_attack``): Nanfack et al.'s
  push-down, push-up and fairwashing of a unit's top natural images and FV;
* :mod:`.proxpulse` -- :class:`ProxPulse` (``proxpulse``): a pulse next to a target image;
* :mod:`.losses` -- their losses; :mod:`.trainer` -- the shared loop (copy, progress bar, NaN
  guard, atomic checkpoints with exact resume); :mod:`.config` -- :class:`Training`;
  :mod:`.base` -- :class:`PeerAttack`, their settings handling.

Example:
    >>> from captum_slingshot.transforms import available_transforms
    >>> {"activation_max_attack", "proxpulse"} <= set(available_transforms())
    True
"""

from .base import PeerAttack
from .config import Ranking, Training
from .losses import keep_loss, pulse_loss, pulse_point, push_down_loss, push_up_loss
from .nanfack import AM_MODES, ActivationMaxAttack, RankingObjective
from .proxpulse import ProxPulse, PulseObjective
from .trainer import PRESERVE, PeerRun

__all__ = ["ActivationMaxAttack", "ProxPulse", "PeerAttack", "Training", "Ranking", "PeerRun", "RankingObjective",
           "PulseObjective", "AM_MODES", "PRESERVE", "push_down_loss", "push_up_loss", "keep_loss", "pulse_point",
           "pulse_loss"]
