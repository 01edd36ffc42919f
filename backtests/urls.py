from django.urls import path

from backtests import api

urlpatterns = [
    path("backtests", api.BacktestListCreateView.as_view(), name="backtests"),
    path("backtests/thresholds", api.ThresholdsView.as_view(), name="backtest-thresholds"),
    path("backtests/matrix", api.MatrixListCreateView.as_view(), name="backtest-matrices"),
    path("backtests/matrix/<int:pk>", api.MatrixDetailView.as_view(), name="backtest-matrix-detail"),
    path("backtests/matrix/<int:pk>/cancel", api.MatrixCancelView.as_view(), name="backtest-matrix-cancel"),
    path("backtests/<int:pk>", api.BacktestDetailView.as_view(), name="backtest-detail"),
    path("backtests/<int:pk>/cancel", api.BacktestCancelView.as_view(), name="backtest-cancel"),
    path("lab/experiments", api.LabListCreateView.as_view(), name="lab-experiments"),
    path("lab/experiments/<int:pk>", api.LabDetailView.as_view(), name="lab-experiment-detail"),
    path("lab/experiments/<int:pk>/run", api.LabRunView.as_view(), name="lab-experiment-run"),
    path("lab/experiments/<int:pk>/shortlist", api.LabShortlistView.as_view(), name="lab-experiment-shortlist"),
    path("lab/experiments/<int:pk>/create-bot", api.LabCreateBotView.as_view(), name="lab-experiment-create-bot"),
]
