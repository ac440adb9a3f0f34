"""Every switch of a MAIL / Robust-MAIL model, validated in one place.

A factory's keyword options are exactly these fields (``--model-option
erla=false``); the named variants in ``variants.py`` are presets of them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from robustbench_med.errors import BadInputError
from robustbench_med.models.mail.emcam import FUSIONS
from robustbench_med.models.mail.noise import MAN_FORMS

NOISE_DELTAS = ("channel", "code")


@dataclass(frozen=True)
class MailOptions:
    """Switches of MAIL (paper Tables 4-6) and Robust-MAIL (Table 5, RPAN)."""

    # Table 4: the three modules
    erla: bool = True            # False: plain ResNet basic blocks instead of ERLA
    mfifa: bool = True
    emsca: bool = True
    # Table 5: their components
    emila_msgdc: bool = True     # multi-scale branches of EMILA (False: GPC branch only)
    emila_ca: bool = True        # channel attention in EMILA
    mfifa_composition: bool = True  # CO/MO: modulated composition across modalities
    mfifa_diverse: bool = True   # DF: low/high/mean decomposition
    emsca_msgdc: bool = True     # MSGDC inside EMSCA
    emsca_cmi: bool = True       # cross-modal interaction in EMSCA
    # Table 6: parallel (PFA) or cascaded (CAT) fusion in EMCAM
    fusion: str = "parallel"
    # regularisation and Keras defaults
    dropout: float = 0.25        # after every stride-2 block, as the code
    always_on_dropout: bool = False  # the notebook's Dropout(training=True)
    bn_momentum: float = 0.01    # Keras' 0.99 in PyTorch terms
    # Robust-MAIL: RPAN
    rpf_erla: bool = False       # RPF@E: random projection filters in ERLA's MSGDC
    rpf_emcam: bool = False      # RPF in EMCAM's (EMSCA's) MSGDC
    rpf_ratio: float = 0.25      # fraction of kernels that are random
    rpf_weight_decay: float = 1e-4  # on the trainable kernels of RPF convs (Alg. 2)
    man: str = "off"             # MAN: "paper" (Eqs. 21, 24-26), "code" (the notebook's) or "off"
    noise_std: float = 0.6
    noise_delta: str = "channel"  # "channel": learnable delta in R^C; "code": the notebook's scalars
    branch_norm: bool = False    # BN on each MSGDC branch (Robust-MAIL notebook)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"bool": bool, "str": str, "float": (int, float)}[str(f.type)]
            if not isinstance(value, expected) or (f.type == "float" and isinstance(value, bool)):
                raise BadInputError(f"MAIL option {f.name} must be a {f.type}, got {value!r}")
        if self.fusion not in FUSIONS:
            raise BadInputError(f"unknown fusion '{self.fusion}' (allowed: {', '.join(FUSIONS)})")
        if self.man not in MAN_FORMS:
            raise BadInputError(f"unknown man '{self.man}' (allowed: {', '.join(MAN_FORMS)})")
        if self.noise_delta not in NOISE_DELTAS:
            raise BadInputError(f"unknown noise_delta '{self.noise_delta}' "
                                f"(allowed: {', '.join(NOISE_DELTAS)})")
        if not 0.0 <= self.dropout < 1.0:
            raise BadInputError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.bn_momentum <= 1.0:
            raise BadInputError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if (self.rpf_erla or self.rpf_emcam) and not 0.0 < self.rpf_ratio < 1.0:
            raise BadInputError(f"rpf_ratio must be in (0, 1), got {self.rpf_ratio}")
        if self.rpf_erla and not self.erla:
            raise BadInputError("rpf_erla needs ERLA blocks (erla=true)")
        if self.rpf_emcam and not (self.emsca and self.emsca_msgdc):
            raise BadInputError("rpf_emcam lives in EMSCA's MSGDC (needs emsca=true, emsca_msgdc=true)")
        if self.noise_std <= 0:
            raise BadInputError(f"noise_std must be positive, got {self.noise_std}")

    @property
    def emcam(self) -> bool:
        return self.mfifa or self.emsca

    def emila_kwargs(self) -> dict[str, Any]:
        """What every EMILA of an ERLA block receives."""
        return {"msgdc": self.emila_msgdc, "ca": self.emila_ca, "branch_norm": self.branch_norm,
                "rpf_ratio": self.rpf_ratio if self.rpf_erla else 0.0,
                "rpf_weight_decay": self.rpf_weight_decay, "man": self.man, "noise_std": self.noise_std,
                "noise_channelwise": self.noise_delta == "channel",
                "noise_learnable": self.noise_delta == "channel"}

    def emcam_kwargs(self) -> dict[str, Any]:
        """What every EMCAM receives."""
        return {"mfifa": self.mfifa, "emsca": self.emsca, "mfifa_composition": self.mfifa_composition,
                "mfifa_diverse": self.mfifa_diverse, "emsca_msgdc": self.emsca_msgdc,
                "emsca_cmi": self.emsca_cmi, "fusion": self.fusion,
                "rpf_ratio": self.rpf_ratio if self.rpf_emcam else 0.0,
                "rpf_weight_decay": self.rpf_weight_decay, "man": self.man, "noise_std": self.noise_std,
                "noise_channelwise": self.noise_delta == "channel"}
