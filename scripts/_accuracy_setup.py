"""The d = 8 spectrum and step sizes shared by ``accuracy_train.py`` and ``accuracy_float32.py``.

No JAX import here: ``accuracy_float32.py`` imports it in float32 and float64
subprocesses, while ``accuracy_train.py`` turns float64 on at import.
"""

import numpy as np

LAM = np.array([1.0, 0.8, 0.9, 0.6, 0.7, 0.5, 0.45, 0.4])
RHO = np.array([0.5, 0.8, 0.45, 0.9, 0.6, 0.95, 0.7, 0.85])
VAR = LAM / RHO
EPS = 1e-2
# step sizes: GD lags the flow by about eta * rate / 2 (relative)
ETA = {"jepa": {1: 0.01, 2: 0.02, 3: 0.05, 4: 0.1}, "mae": {1: 0.005, 2: 0.005, 3: 0.005, 4: 0.005}}
# minibatch noise grows like sqrt(eta / batch): smaller rates than the population runs
ETA_MB = {
    "jepa": {1: 0.01, 2: 0.02, 3: 0.03, 4: 0.05},
    "mae": {1: 0.005, 2: 0.005, 3: 0.005, 4: 0.005},
}
