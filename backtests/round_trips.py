"""A backtest's round trips, cut from its fill columns: what the engine's result, the run's stored trades and the
tearsheet count as trades. Both forms cut the same trades; the numpy one covers the common shapes (every fill moves
between flat and one size), the loop every other."""

from __future__ import annotations

import numpy as np


def round_trips(cols: dict, multiplier: float) -> list[dict]:
    """Round trips; numpy when every fill moves between flat and one size (long, short or a full flip)."""
    side, qty = cols["side"], cols["quantity"]
    if not len(side):
        return []
    after = np.cumsum(side * qty)
    before = after - side * qty
    sizes = np.unique(np.abs(np.concatenate((before, after))))
    if len(sizes) > 2 or (len(sizes) == 2 and sizes[0] != 0):
        return round_trips_loop(cols, multiplier)
    price, fee, slip = cols["price"], cols["fee"], cols["slippage"]
    opens = np.flatnonzero(after != 0)  # every fill that leaves a position open starts a trade
    closes = np.flatnonzero(before != 0)  # every fill that had a position ends one
    count = len(closes)
    entry = opens[:count]
    size = np.abs(after[entry])
    direction = np.sign(after[entry])
    # An opening from flat pays its own fee and slippage; a flip's went to the trade it closed.
    flat_open = before[entry] == 0
    entry_fee = np.where(flat_open, fee[entry], 0.0)
    entry_slip = np.where(flat_open, slip[entry], 0.0)
    pnl = (price[closes] - price[entry]) * size * direction * multiplier - entry_fee - fee[closes]
    notional = size * price[entry] * multiplier + size * price[closes] * multiplier
    fb = cols["filled_at"]
    # tolist() hands back Python ints and floats in one pass (the per-element int()/float() of numpy scalars is
    # the slow part of building thousands of dicts).
    columns = (
        fb[entry],
        direction.astype(np.int64),
        size,
        price[entry],
        pnl,
        entry_fee + fee[closes],
        entry_slip + slip[closes],
        notional,
        fb[closes],
        price[closes],
    )
    trades = [
        {
            "entry_bar": a,
            "side": d,
            "quantity": q,
            "entry_price": pa,
            "pnl": p,
            "fees": fe,
            "slippage": sl,
            "notional": no,
            "exit_bar": b,
            "exit_price": pb,
        }
        for a, d, q, pa, p, fe, sl, no, b, pb in zip(*(c.tolist() for c in columns))
    ]
    if len(opens) > count:
        k = opens[-1]
        flat = before[k] == 0
        trades.append(
            {
                "entry_bar": int(fb[k]),
                "side": int(np.sign(after[k])),
                "quantity": float(abs(after[k])),
                "entry_price": float(price[k]),
                "pnl": float(-fee[k] if flat else 0.0),
                "fees": float(fee[k] if flat else 0.0),
                "slippage": float(slip[k] if flat else 0.0),
                "notional": float(abs(after[k]) * price[k] * multiplier),
                "exit_bar": None,
                "exit_price": None,
            }
        )
    return trades


def round_trips_loop(cols: dict, multiplier: float) -> list[dict]:
    """A trade runs from flat (or a flip) to flat (or the next flip). A flipping fill's fee goes to the trade it
    closes; the trade it opens starts at its price. Realized PnL per closed unit against the average entry."""
    trades: list[dict] = []
    qty = avg = 0.0
    current: dict | None = None
    fills = zip(*(cols[name].tolist() for name in ("filled_at", "side", "quantity", "price", "fee", "slippage")))
    for filled_at, side, quantity, price, fee, slippage in fills:
        signed = side * quantity
        if qty == 0:
            current = {
                "entry_bar": filled_at,
                "side": side,
                "quantity": quantity,
                "entry_price": price,
                "pnl": -fee,
                "fees": fee,
                "slippage": slippage,
                "notional": quantity * price * multiplier,
            }
            qty, avg = signed, price
            continue
        current["fees"] += fee
        current["slippage"] += slippage
        current["pnl"] -= fee
        if (qty > 0) == (signed > 0):  # adding
            avg = (avg * abs(qty) + price * quantity) / (abs(qty) + quantity)
            qty += signed
            current["quantity"] = max(current["quantity"], abs(qty))
            current["notional"] += quantity * price * multiplier
            continue
        closing = min(abs(signed), abs(qty))
        current["pnl"] += (price - avg) * closing * (1 if qty > 0 else -1) * multiplier
        current["notional"] += closing * price * multiplier
        remainder = qty + signed
        if remainder == 0 or (remainder > 0) != (qty > 0):
            current.update(exit_bar=filled_at, exit_price=price)
            trades.append(current)
            current = None
            if remainder != 0:
                left = abs(remainder)
                current = {
                    "entry_bar": filled_at,
                    "side": 1 if remainder > 0 else -1,
                    "quantity": left,
                    "entry_price": price,
                    "pnl": 0.0,
                    "fees": 0.0,
                    "slippage": 0.0,
                    "notional": left * price * multiplier,
                }
                avg = price
            qty = remainder
        else:
            qty = remainder
    if current is not None:
        current.update(exit_bar=None, exit_price=None)  # still open at the end: not a closed trade
        trades.append(current)
    return trades
