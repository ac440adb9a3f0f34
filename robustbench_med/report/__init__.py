"""Leaderboard tables (CSV, Markdown) and plots from the results store."""
