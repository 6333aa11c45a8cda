"""Next best action per account: the first rule of ``config/accounts.yaml`` whose conditions
all hold, with the reason (each condition with the account's own value) and a due date.

Rules are evaluated column-wise over every account at once; a signal that is unknown for an
account (no renewal date, never contacted) makes every comparison on it false, so a rule
never fires on missing data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from config.accounts_policy import ActionRule, Condition

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
ACTION_COLUMNS = ["rule", "action", "reason", "due_in_business_days"]


def _holds(signals: pd.DataFrame, condition: Condition) -> np.ndarray:
    if condition.signal not in signals:
        return np.zeros(len(signals), dtype=bool)
    values = signals[condition.signal]
    known = values.notna().to_numpy(dtype=bool, copy=True)
    if isinstance(condition.value, bool):
        got = values.astype(object).map(lambda v: bool(v) if v is not None else None)
        result = np.asarray(_OPS[condition.op](got, condition.value), dtype=bool)
    elif isinstance(condition.value, str):
        result = np.asarray(_OPS[condition.op](values.astype(object), condition.value), dtype=bool)
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        known &= numbers.notna().to_numpy(dtype=bool)
        result = np.asarray(_OPS[condition.op](numbers, condition.value), dtype=bool)
    return result & known


def _words(condition: Condition, values: pd.Series) -> pd.Series:
    """``<signal> <value> (<op> <threshold>)`` for each account, built column-wise."""
    name = condition.signal.replace("_", " ")
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.notna() & (numbers % 1 == 0)
    text = values.astype(str).where(~whole, numbers.fillna(0).astype(np.int64).astype(str))
    return name + " " + text + f" ({condition.op} {condition.value})"


def next_actions(signals: pd.DataFrame, rules: list[ActionRule]) -> pd.DataFrame:
    """One row per account (aligned with ``signals``): the first matching rule, or NaN."""
    out = pd.DataFrame(index=signals.index, columns=ACTION_COLUMNS, dtype=object)
    taken = np.zeros(len(signals), dtype=bool)
    for rule in rules:
        mask = np.ones(len(signals), dtype=bool)
        for condition in rule.when:
            mask &= _holds(signals, condition)
        mask &= ~taken
        if not mask.any():
            continue
        taken |= mask
        rows = signals.index[mask]
        parts = [_words(c, signals.loc[rows, c.signal]) for c in rule.when]
        reasons = parts[0]
        for more in parts[1:]:
            reasons = reasons + " and " + more
        out.loc[rows, "rule"] = rule.id
        out.loc[rows, "action"] = rule.action
        out.loc[rows, "reason"] = reasons.to_numpy(dtype=object)
        out.loc[rows, "due_in_business_days"] = rule.due_in_business_days
    return out
