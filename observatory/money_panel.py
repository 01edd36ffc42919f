"""The bot page's money panel: each book's PnL (realized, unrealized, fees), positions at their marks, open orders,
fills, daily PnL, and the equity and drawdown charts, all read from the OMS's own records (``bot_pnl``)."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backtests.report import CHART_OPTIONS
from bots.models import Bot
from controlplane.books import Book, venue_in_book
from execution.models import Fill, Order
from execution.risk.positions import bot_pnl
from observatory.links import admin_url, trace_url

ORDERS_SHOWN = 20
FILLS_SHOWN = 20
PNL_DAYS_SHOWN = 30
EQUITY_FILLS = 500


def _dec(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def _book(bot: Bot, book: str) -> dict:
    pnl = bot_pnl(bot=bot, book=book)
    in_book = venue_in_book(book)
    open_orders = list(
        Order.objects.filter(in_book, bot=bot, status__in=Order.OPEN_STATUSES)
        .select_related("instrument")
        .order_by("-created_at", "-id")[:ORDERS_SHOWN]
    )
    fills = list(
        Fill.objects.filter(in_book, bot=bot).select_related("instrument").order_by("-ts", "-id")[:FILLS_SHOWN]
    )
    positions = [
        {
            **p,
            "quantity": _dec(p["quantity"]),
            "average_price": _dec(p["average_price"]),
            "mark": _dec(p["mark"]),
            "unrealized_pnl": _dec(p["unrealized_pnl"]),
            "realized_pnl": _dec(p["realized_pnl"]),
            "mark_bar_ts": parse_datetime(p["mark_bar_ts"] or "") if p["mark_bar_ts"] else None,
        }
        for p in pnl["positions"]
    ]
    days = pnl["days"][:PNL_DAYS_SHOWN]
    equity, drawdown = _equity_charts(bot, book, pnl)
    return {
        "book": book,
        "label": Book(book).label,
        "pnl": pnl,
        "positions": positions,
        "realized_pnl": _dec(pnl["realized_pnl"]),
        "unrealized_pnl": _dec(pnl["unrealized_pnl"]),
        "total_pnl": _dec(pnl["total_pnl"]),
        "fees": _dec(pnl["fees"]),
        "open_orders": [
            {"o": o, "url": admin_url("execution_order", o.id), "trace_url": trace_url(o.trace_id)} for o in open_orders
        ],
        "fills": [
            {"f": f, "url": admin_url("execution_fill", f.id), "trace_url": trace_url(f.trace_id)} for f in fills
        ],
        "days": days,
        "equity_chart": equity,
        "drawdown_chart": drawdown,
        "empty": not positions and not open_orders and not fills and not days,
    }


def _equity_charts(bot: Bot, book: str, pnl: dict) -> tuple[str | None, str | None]:
    """The book's equity (realized PnL after fees, fill by fill, then now with the open positions at their marks)
    and its drawdown from the running peak, in money. Over the latest EQUITY_FILLS fills: the realized PnL of any
    earlier ones is the curve's starting level, so the end matches the PnL above. None without a fill."""
    rows = list(
        Fill.objects.filter(venue_in_book(book), bot=bot)
        .order_by("-ts", "-id")
        .values_list("ts", "realized_pnl")[:EQUITY_FILLS]
    )[::-1]
    if not rows:
        return None, None
    level = Decimal(pnl["realized_pnl"]) - sum((pnl_ for _, pnl_ in rows), Decimal(0))
    labels, values = [], []
    for ts, realized in rows:
        level += realized
        labels.append(timezone.localtime(ts, UTC).strftime("%m-%d %H:%M"))
        values.append(float(level))
    if pnl["unrealized_pnl"] is not None:
        labels.append("now")
        values.append(float(level + Decimal(pnl["unrealized_pnl"])))
    peak, drawdown = None, []
    for value in values:
        peak = value if peak is None or value > peak else peak
        drawdown.append(round(value - peak, 6))

    def chart(label, data, colour, fill):
        return json.dumps(
            {
                "labels": labels,
                "datasets": [
                    {"label": label, "data": data, "borderColor": colour, "backgroundColor": colour, "fill": fill}
                ],
            }
        )

    return (
        chart("Equity (PnL)", values, "var(--color-primary-600)", False),
        chart("Drawdown", drawdown, "#dc2626", True),
    )


def money_panel(bot: Bot) -> dict:
    """PnL, positions, open orders, fills, daily PnL and the equity and drawdown charts of each book."""
    return {"books": [_book(bot, book) for book in Book.values], "chart_options": CHART_OPTIONS}
