"""The Gradient Slingshot, composed of small parts (one module each).

* :mod:`.transform` -- :class:`GradientSlingshot`, the registered transform (settings only);
* :mod:`.config` and :mod:`.losses` -- the settings as frozen dataclasses and loss objects;
* :mod:`.flat` -- the same settings as flat named options (command line, YAML, release 0.1 names);
* :mod:`.aim`, :mod:`.sampling`, :mod:`.preservation` -- where it aims, where it samples, what it keeps;
* :mod:`.trainer` -- :class:`SlingshotRun`, the training loop and all run state;
* :mod:`.checkpoint` -- versioned, atomic checkpoints and the resume check.
"""

from .aim import reachable_aim
from .config import ActivationCap, Aim, FVPaths, LayerMSE, LogitsCE, Optimizer, Preservation, Run, Sampling, Trajectories
from .losses import Bowl, FieldDirection, FieldMSE, InputSpace, ManipulationLoss
from .trainer import SlingshotRun
from .transform import GradientSlingshot, SlingshotResult

__all__ = [
    "GradientSlingshot", "SlingshotResult", "SlingshotRun", "reachable_aim",
    "Aim", "Sampling", "Trajectories", "Preservation", "LayerMSE", "LogitsCE", "FVPaths", "ActivationCap", "Optimizer", "Run",
    "ManipulationLoss", "FieldMSE", "FieldDirection", "Bowl", "InputSpace",
]
