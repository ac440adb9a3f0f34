"""Imports every built-in defense module so that its registrations run."""
