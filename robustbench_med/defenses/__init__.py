"""Baseline defenses as registry plugins (PNI, DBN, Learn2Perturb, RPF, CAP, CTRW)."""
