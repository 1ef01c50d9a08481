"""The text values options take (comma lists, sizes), parsed once for every command.

Errors name the option and show an example, so `--batch 1,,x` fails the same way everywhere.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from echogen_trt.errors import ConfigError


def parse_ints(text: str, option: str, example: str = "1,8,32") -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32); ConfigError naming the option for anything else (empty, < 1)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise ConfigError(
            f"{option} | {text!r}. Expected positive integers separated by commas, e.g. {example}."
        )
    return values


def parse_names(text: str | None, *, upper: bool = False) -> tuple[str, ...] | None:
    """'a, b,' -> ('a', 'b') (upper-cased if asked); None for None or an empty string."""
    if not text:
        return None
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    return tuple(n.upper() for n in names) if upper else names


def parse_size(text: str, option: str) -> tuple[int, int]:
    """'480x640' (H x W) or '256' -> (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise ConfigError(f"{option} | {text!r}. Expected HxW (e.g. 480x640) or one size.")
    return int(m.group(1)), int(m.group(2) or m.group(1))


SEED_MAX = 2**32 - 1  # numpy's RandomState accepts 0..2**32-1; torch would overflow above 2**63


def check_seed(seed: object, subject: str = "--seed") -> int:
    """`seed` when it is an integer 0..SEED_MAX, else ConfigError naming `subject`: a huge
    seed (1e20 written out) would crash deep in torch or numpy after the data has loaded."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(
            f"{subject} | {seed!r}. Expected an integer 0..{SEED_MAX}. Hint: e.g. --seed 1."
        )
    return seed


def default_note(value: object) -> str:
    """'[default: X]' for a click help string, X being the library's default (a dataclass field
    such as `TrainConfig.iters`, read where the option is declared), so the help cannot drift
    from what an unset option (default=None) actually means."""
    return f"[default: {value:g}]" if isinstance(value, float) else f"[default: {value}]"


def default_of(func: Callable[..., Any], name: str) -> Any:
    """The default of `func`'s parameter `name` (a library function whose keyword an option
    fills), for `default_note` where the default is no dataclass field."""
    return inspect.signature(func).parameters[name].default
