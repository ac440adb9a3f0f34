"""The paper's reported numbers, kept beside ours so every published table shows both.

Claims to test, not targets: copied from the KDD'26 paper's Tables 1, 2 and 5
(arXiv 2602.15346). Percentages.
"""

from __future__ import annotations

# Table 2: (ACC, AUC) on the MedMNIST datasets, 28x28 files upsampled by the authors.
TABLE2 = {
    "mail_rn18": {"d11": (93.73, 99.95), "d12": (92.49, 98.83), "d13": (70.69, 81.32),
                  "d14": (90.06, 93.92), "d15": (74.84, 96.56), "d16": (97.07, 99.94)},
    "mail_mnv2": {"d11": (93.10, 99.75), "d12": (91.83, 98.24), "d13": (69.38, 79.81),
                  "d14": (88.95, 93.67), "d15": (73.75, 96.03), "d16": (96.45, 99.90)},
}

# Table 1: MAIL-RN18 accuracy on D1..D9 (D10 is not legible in the extracted table).
TABLE1_MAIL_RN18_ACC = {"d1": 98.8, "d2": 99.7, "d3": 99.3, "d4": 99.1, "d5": 99.4, "d6": 96.3,
                        "d7": 98.4, "d8": 97.1, "d9": 92.3}

# Table 1/4: model sizes (parameters in millions, GFLOPs).
SIZES = {"mail_rn18": (11.7, 1.84), "mail_rn50": (20.8, 2.18)}

# Table 5, Robust-MAIL ablation: robust accuracy (%) on D5 and D3 under the paper's attack protocol.
TABLE5_ROBUST = {
    "no RPAN part": {"d5": 0.0, "d3": 2.58},
    "RPF@E + RPF + MAN (Robust-MAIL)": {"d5": 63.29, "d3": 86.50},
}


def table2_claim(model: str, dataset: str) -> tuple[float, float] | None:
    return TABLE2.get(model, {}).get(dataset)
