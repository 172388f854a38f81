"""Ranking metrics, computed by ranx under one vocabulary (``hit@1``, ``mrr@10``, ``ndcg@10``...).

Definitions are ranx's (Bassani 2022, "ranx: A Blazing-Fast Python Library for Ranking Evaluation
and Comparison", ECIR): hit rate, recall, reciprocal rank and nDCG with the Järvelin & Kekäläinen
(2002) discount, as in trec_eval. Both the project eval and the BEIR runs score through here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # {query id: {relevant doc id: grade}}
Run = Mapping[str, Mapping[str, float]]  # {query id: {doc id: score}}

RETRIEVAL_METRICS = ("hit@1", "recall@5", "mrr@10", "ndcg@10")
BEIR_METRICS = ("ndcg@10", "recall@100")


def ranx_name(metric: str) -> str:
    """ranx calls hit@k ``hit_rate@k``; every other name is shared."""
    return metric.replace("hit@", "hit_rate@")


def rank_scores(qrels: Qrels, run: Run, metrics: Sequence[str] = RETRIEVAL_METRICS
                ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values of ``metrics``; a query missing from ``run`` scores zero."""
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate

    ranx_qrels = RanxQrels({qid: dict(relevant) for qid, relevant in qrels.items()})
    ranx_run = RanxRun({qid: dict(run.get(qid, {})) for qid in qrels}).make_comparable(ranx_qrels)
    names = [ranx_name(m) for m in metrics]
    with warnings.catch_warnings():  # numba's uint64->int64 cast note inside ranx's hit_rate
        warnings.simplefilter("ignore")
        means = evaluate(ranx_qrels, ranx_run, names)
    means = means if isinstance(means, dict) else {names[0]: means}
    per_query = {qid: {m: float(ranx_run.scores[ranx_name(m)][qid]) for m in metrics} for qid in qrels}
    return {m: float(means[ranx_name(m)]) for m in metrics}, per_query
