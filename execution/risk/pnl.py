"""Position accounting from fills: average price, realized and unrealized PnL. Pure; the OMS and backtests share it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class PositionState:
    quantity: Decimal = ZERO  # signed: long > 0, short < 0
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO  # after fees
    fees: Decimal = ZERO

    def apply_fill(
        self, *, side_sign: int, quantity: Decimal, price: Decimal, fee: Decimal, multiplier: Decimal = Decimal("1")
    ) -> PositionState:
        """The position after a fill. Closing quantity realizes PnL against the average price; the rest opens."""
        signed = quantity * side_sign
        realized = self.realized_pnl - fee
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            new_quantity = self.quantity + signed
            average = (self.average_price * abs(self.quantity) + price * quantity) / abs(new_quantity)
            return PositionState(new_quantity, average, realized, self.fees + fee)
        closing = min(abs(signed), abs(self.quantity))
        direction = 1 if self.quantity > 0 else -1
        realized += (price - self.average_price) * closing * direction * multiplier
        new_quantity = self.quantity + signed
        if new_quantity == 0:
            average = ZERO
        elif (new_quantity > 0) == (self.quantity > 0):
            average = self.average_price
        else:
            average = price  # flipped: the remainder opened at this fill's price
        return PositionState(new_quantity, average, realized, self.fees + fee)

    def unrealized_pnl(self, mark: Decimal, multiplier: Decimal = Decimal("1")) -> Decimal:
        return (mark - self.average_price) * self.quantity * multiplier
