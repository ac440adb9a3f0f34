"""The registered MAIL and Robust-MAIL models, and their named ablations.

Bodies (``bodies.py``): ``mail_rn18`` (alias ``mail``), ``mail_rn50``,
``mail_mnv2``; ``robust_mail`` (ResNet18 layout), ``robust_mail_rn50``,
``robust_mail_mnv2``, and ``robust_mail_code`` (the official Robust-MAIL
notebook: attention noise as coded with its scalar delta, BN on the MSGDC
branches, no random projection filters, always-on dropout).

``robust_mail`` is the paper's design: random projection filters (25% of
the kernels) in the GPC and depth-wise convs of the MSGDC of every ERLA
(RPF@E) and EMCAM (RPF), modulated attention noise (MAN) as the paper's
Appendix B writes it (``man=paper``: eta' of Eq. 22 with a learnable
channel-wise delta multiplies the pre-sigmoid terms of CA, MFIFA, EMSCA and
A_m, Eqs. 21, 24-26), BN on the MSGDC branches (as the notebook's
Robust-EMILA), dropout following train/eval mode. ``--model-option man=code``
on any Robust-MAIL variant swaps in the notebook's noise instead (added,
clipped, gates raised to powers; see ``noise.py``) -- the form that blows up
first-layer gradients at init (``benchmarks/init_gradients.py``). Adversarial
training (Alg. 2) is the training recipe's business
(training.AdversarialTraining).

Named ablations (each one switch of :class:`MailOptions`; every switch also
works as ``--model-option`` on any body):

========================== ==================================== =========
name                       switch                               paper
========================== ==================================== =========
mail_rn18-no-erla          erla=false (ResNet basic blocks)     Table 4
mail_rn18-no-mfifa         mfifa=false                          Table 4
mail_rn18-no-emsca         emsca=false                          Table 4
mail_rn18-plain            erla, mfifa, emsca all false         Table 4
mail_rn18-emila-no-msgdc   emila_msgdc=false                    Table 5
mail_rn18-emila-no-ca      emila_ca=false                       Table 5
mail_rn18-mfifa-no-co      mfifa_composition=false (CO/MO)      Table 5
mail_rn18-mfifa-no-df      mfifa_diverse=false (DF)             Table 5
mail_rn18-emsca-no-msgdc   emsca_msgdc=false                    Table 5
mail_rn18-emsca-no-cmi     emsca_cmi=false (CMI)                Table 5
mail_rn18-cascaded         fusion=cascaded (CAT vs PFA)         Table 6
robust_mail-no-rpan        no RPF@E, no RPF, no MAN             Table 5
robust_mail-rpf-only       RPF in EMCAM only                    Table 5
robust_mail-man-only       MAN only (man=paper)                 Table 5
robust_mail-rpf-man        RPF in EMCAM + MAN (no RPF@E)        Table 5
robust_mail                RPF@E + RPF + MAN                    Table 5
========================== ==================================== =========

Sizes in the paper's configuration (m = 2, heads 5 and 7, 128x128x3; see
``models/profile.py`` for what is counted): mail_rn18 11.37 M parameters
(11.42 M with BN statistics; the paper says 11.7 M) and 1.31 GFLOPs (paper
1.84); mail_rn50 19.72 M / 2.19 GFLOPs (paper 20.8 M / 2.18); mail_mnv2
5.89 M / 0.49; robust_mail 11.31 M (11.32 M with man=code); robust_mail_code 11.42 M (11.51 M with
BN statistics, the notebook's hand count less its unused weights);
mail_rn18-plain 22.37 M (paper, Table 4 without ERLA, MFIFA, EMSCA: 23.4 M);
mail_rn18-no-erla 23.82 M.
"""

from __future__ import annotations

from typing import Any

from robustbench_med.models.mail.factories import make_factory
from robustbench_med.registry import MODELS

REFERENCE = "Dhar, Zaidi, Haghighat, KDD 2026 (arXiv 2602.15346); code misti1203/MAIL-Robust-MAIL"

ROBUST: dict[str, Any] = {"rpf_erla": True, "rpf_emcam": True, "man": "paper", "branch_norm": True,
                          "noise_delta": "channel"}
ROBUST_CODE: dict[str, Any] = {"man": "code", "branch_norm": True, "noise_delta": "code",
                               "always_on_dropout": True}

BASES: dict[str, tuple[str, dict[str, Any], str, tuple[str, ...]]] = {
    "mail_rn18": ("resnet18", {}, "MAIL on the official code's ResNet18 layout of ERLA blocks.", ("mail",)),
    "mail_rn50": ("resnet50", {}, "MAIL with ERLA blocks in ResNet50's [3, 4, 6, 3] stage layout.", ()),
    "mail_mnv2": ("mobilenetv2", {}, "MAIL with ERLA/EMCAM after the stages of a MobileNetV2 body.", ()),
    "robust_mail": ("resnet18", ROBUST, "Robust-MAIL as the paper designs it (RPF@E + RPF + MAN).", ()),
    "robust_mail_rn50": ("resnet50", ROBUST, "Robust-MAIL on the ResNet50 stage layout.", ()),
    "robust_mail_mnv2": ("mobilenetv2", ROBUST, "Robust-MAIL on the MobileNetV2 body.", ()),
    "robust_mail_code": ("resnet18", ROBUST_CODE,
                         "Robust-MAIL exactly as the official notebook: MAN only, always-on dropout.", ()),
}

MAIL_ABLATIONS: dict[str, dict[str, Any]] = {
    "no-erla": {"erla": False},
    "no-mfifa": {"mfifa": False},
    "no-emsca": {"emsca": False},
    "plain": {"erla": False, "mfifa": False, "emsca": False},
    "emila-no-msgdc": {"emila_msgdc": False},
    "emila-no-ca": {"emila_ca": False},
    "mfifa-no-co": {"mfifa_composition": False},
    "mfifa-no-df": {"mfifa_diverse": False},
    "emsca-no-msgdc": {"emsca_msgdc": False},
    "emsca-no-cmi": {"emsca_cmi": False},
    "cascaded": {"fusion": "cascaded"},
}

RPAN_ABLATIONS: dict[str, dict[str, Any]] = {
    "no-rpan": {"rpf_erla": False, "rpf_emcam": False, "man": "off"},
    "rpf-only": {"rpf_erla": False, "man": "off"},
    "man-only": {"rpf_erla": False, "rpf_emcam": False},
    "rpf-man": {"rpf_erla": False},
}


def _register(name: str, body: str, preset: dict[str, Any], doc: str, family: str,
              aliases: tuple[str, ...] = ()) -> None:
    MODELS.add(name, make_factory(name, body, preset, doc), aliases=aliases, origin="medrobust",
               family=family, reference=REFERENCE)


for _name, (_body, _preset, _doc, _aliases) in BASES.items():
    _register(_name, _body, _preset, _doc, "robust_mail" if _name.startswith("robust") else "mail",
              _aliases)
for _suffix, _switch in MAIL_ABLATIONS.items():
    _register(f"mail_rn18-{_suffix}", "resnet18", _switch, f"MAIL-RN18 ablation: {_switch}.", "mail")
for _suffix, _switch in RPAN_ABLATIONS.items():
    _register(f"robust_mail-{_suffix}", "resnet18", {**ROBUST, **_switch},
              f"Robust-MAIL RPAN ablation: {_switch}.", "robust_mail")
