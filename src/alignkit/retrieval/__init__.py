"""Retrieval-augmented generation: documents -> token chunks -> lexical (BM25) and dense indexes,
fused by reciprocal rank; evaluation by recall@k and MRR; retrieve-and-format for chat and serving."""
