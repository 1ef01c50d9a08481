"""The demo's training budget: the training loop stops on the clock (train.loop, `max_seconds`),
so the model gets whatever the machine gives in the minutes asked for, and the report says how
many iterations that was, under what load, and warns when it was too few to be useful.

No iteration count is derived from a short speed probe: on a busy machine a probe is wrong in
either direction (the issue 24 audit saw 20 iterations in 2 min 44 s of a 4.5-minute budget, and
another run that took 22 minutes).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Below this many iterations the demo's generator still draws blurry, ED-like anatomy (README:
# "The demo's budget"); the report then says so instead of presenting the model as trained.
MIN_USEFUL_ITERS = 200
WRAPUP_S = 5.0  # kept free after the loop for what the train step does after it (model facts)


def loop_seconds(budget_s: float, spent_s: float) -> float:
    """Seconds the training loop may run: the budget less what the step already spent (loading
    the data) and WRAPUP_S, at least one second (the loop always trains one iteration)."""
    return max(1.0, budget_s - spent_s - WRAPUP_S)


def few_iterations_note(iters: int, seconds: float, load: list[float] | None) -> str | None:
    """A warning when the clock allowed fewer than MIN_USEFUL_ITERS iterations, else None."""
    if iters >= MIN_USEFUL_ITERS:
        return None
    busy = f" (load average {load[0]:.1f})" if load else ""
    note = (
        f"only {iters} iterations fitted the budget ({seconds:.0f} s){busy}, fewer than the "
        f"{MIN_USEFUL_ITERS} a useful demo model needs: expect blurry frames. Hint: a longer "
        "--minutes, or a quieter machine"
    )
    log.warning("%s", note)
    return note
