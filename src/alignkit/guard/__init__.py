"""Guardrails: classical classifiers (intent, toxicity: TF-IDF + logistic regression; sentiment:
VADER) and a grounding check, run on the prompt before generation and on the answer after it."""
