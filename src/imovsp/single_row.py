"""One row through a LightGBM booster at the cost of the trees alone.

``Booster.predict`` sets up a predictor, checks its input and converts it on every call: for one
row that is most of the time an online valuation takes. LightGBM's C API has a call made for
this case (``LGBM_BoosterPredictForMatSingleRowFast``): the setup happens once, here in
``__init__``, and each prediction is one call into the library, which runs the same tree code
as ``Booster.predict`` and gives the same numbers (checked in the tests).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Protocol

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _safe_call
from lightgbm.libpath import _LIB

from imovsp.compiled import CompiledBooster

_PREDICT_NORMAL = 0
_FLOAT64 = 1


class OneRow(Protocol):
    def predict(self, row: np.ndarray) -> float: ...


def predictor(booster: lgb.Booster, n_features: int) -> OneRow:
    """The fastest way to run one row through ``booster``: its compiled trees if it has them
    (:mod:`imovsp.compiled`), else LightGBM's single-row call. Both give its numbers."""
    if isinstance(booster, CompiledBooster):
        return booster.trees.row_predictor()
    return SingleRowPredictor(booster, n_features)


class SingleRowPredictor:
    """Predicts one row at a time with ``booster``.

    A single row runs on the calling thread, without OpenMP; and no ``num_threads`` is set,
    because LightGBM would apply it to the whole process (batch predictions included).

    LightGBM keeps one such setup per booster, not per handle: another
    ``...SingleRowFastInit`` on the same booster, with another iteration range or predict type,
    silently changes what every earlier handle computes (seen with LightGBM 4.7: a second one
    for 3 iterations turned 13.5687 into 13.0319; LightGBM issue #4980). Every instance of
    this class sets up the same thing (all iterations, normal output), so several on one
    booster agree.
    """

    def __init__(self, booster: lgb.Booster, n_features: int) -> None:
        self.booster = booster  # kept alive: the handle below points into it
        self.n_features = n_features
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # all iterations (the booster keeps only the best ones)
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(n_features),
                ctypes.c_char_p(b""),
                ctypes.byref(self._config),
            )
        )
        # The row and the output live in buffers of this object, their addresses worked out
        # once: building ctypes pointers took longer than the call into the library.
        self._row = np.zeros(n_features, dtype=np.float64)
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._args = (
            self._config,
            ctypes.c_void_p(self._row.ctypes.data),
            ctypes.byref(self._out_len),
            ctypes.c_void_p(self._out.ctypes.data),
        )
        # The buffers are shared by the calls of this object: one at a time.
        self._lock = threading.Lock()

    def predict(self, row: np.ndarray) -> float:
        """The model's output for one row of ``n_features`` float64 values."""
        if row.shape != (self.n_features,) and row.shape != (1, self.n_features):
            raise ValueError(f"expected one row of {self.n_features} features, got {row.shape}")
        with self._lock:
            self._row[:] = row
            _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(*self._args))
            return float(self._out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
            self._config = ctypes.c_void_p()
