"""Reads of the research data that several callers share (the API, the admin pages, the lab)."""

from __future__ import annotations

from django.db.models import F, QuerySet

from backtests.models import BacktestMatrix, MatrixResult

# The one ranking of a matrix's results: results with enough trades behind their score first (a Sharpe of 71 from
# 2 out-of-sample trades is noise, never the best), then the score, best first, None last, then the set's index.
RANKING = (F("enough_trades").desc(), F("score").desc(nulls_last=True), "index")


def ranked_results(matrix: BacktestMatrix) -> QuerySet[MatrixResult]:
    return MatrixResult.objects.filter(matrix=matrix).order_by(*RANKING)
