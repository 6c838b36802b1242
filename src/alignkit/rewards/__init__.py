"""Scoring a reply: one protocol, its implementations, and example reward functions."""
