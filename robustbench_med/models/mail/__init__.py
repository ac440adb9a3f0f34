"""MAIL and Robust-MAIL (Dhar et al., KDD 2026), one concept per module.

Layers, named as in the paper, following the official TensorFlow code's
structure (github.com/misti1203/MAIL-Robust-MAIL, ``Code/MAIL.ipynb`` and
``Code/Robust-MAIL.ipynb``) with two changes: dropout
follows train/eval mode (deterministic at inference; ``robust_mail_code``
keeps the notebook's always-on dropout) and MFIFA's alpha, phi, gamma are per
modality.

- ``msgdc``  multi-scale group and depth-wise convolution
- ``shuffle`` channel shuffle
- ``ca``     channel attention of EMILA (the coded pooling)
- ``emila``  MSGDC + CA + projected skip (and Robust-MAIL's noisy form)
- ``erla``   two EMILAs, 1x1 conv, residual
- ``dct``    channel DCT-II; ``mfifa`` frequency attention; ``emsca`` spatial cross attention
- ``emcam``  the shared per-stage fusion of MFIFA and EMSCA
- ``heads``  TMTL heads on GAP(concat(branches))
- ``rpf``    random projection filters; ``noise`` modulated attention noise
- ``bodies`` ResNet18 / ResNet50 / MobileNetV2 branch layouts; ``network`` MailNet
- ``options`` every switch; ``factories`` builders; ``variants`` the registered names
"""

from robustbench_med.models.mail.factories import build, build_net
from robustbench_med.models.mail.network import MailNet
from robustbench_med.models.mail.options import MailOptions

__all__ = ["MailNet", "MailOptions", "build", "build_net"]
