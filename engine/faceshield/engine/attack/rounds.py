"""The policy's rounds (docs/method.md §4) and the per-image bookkeeping that goes with them.

    plan_rounds   FIXED: the method's steps once; ensure: rounds of `steps` until the budget is
                  spent, the last widened to the whole face box (gamma halves each round)
    Tally         per image: steps, rounds and generator passes spent; the victims still in J;
                  when early stop measures it next; what the last measurement found
    settle        measure candidate images; those disrupted with margin leave with their x

Early stop measures an image only when the objective's own terms say it is likely disrupted,
and after a miss not again until twice as many steps have passed: a few checks per round at
most. Under `ensure`, a measurement also drops from J the victims the image already disrupts, so
the next steps go to the ones left; one that is found undisrupted again is put back. The steps
that chase the victims left can undo the others, so `ensure` also keeps each image's best
measured iterate (most victims disrupted, the later on a tie) and delivers that: never less
than the fixed schedule it starts with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..config import Policy
from .batch import Group, drop

FIRST_CHECK = 2  # steps before early stop first measures an image (one step seldom disrupts anything)
Measure = Callable[[Group], list[dict[str, bool]]]  # per image of the group: victim -> disrupted with margin


def plan_rounds(steps: int, policy: Policy) -> list[tuple[int, bool]]:
    """(steps, widen the mask to the face box) per round: one round under FIXED; under ensure,
    rounds of `steps` until the budget is spent, the last (where there is more than one) widened."""
    if policy.kind != "ensure":
        return [(steps, False)]
    rounds, left = [], policy.budget_steps
    while left > 0:
        k = min(steps, left)
        rounds.append(k)
        left -= k
    return [(k, len(rounds) > 1 and r == len(rounds) - 1) for r, k in enumerate(rounds)]


class Tally:
    """Per-image state of one `protect` call (indices are positions in the caller's batch)."""

    def __init__(self, n: int, victims: Sequence[str]):
        self.steps, self.rounds, self.passes = [0] * n, [0] * n, [0] * n
        self.next_check, self.gap = [FIRST_CHECK] * n, [1] * n
        self.verified: list[bool | None] = [None] * n
        self.pending: list[set[str]] = [set(victims) for _ in range(n)]
        self.final: dict[int, torch.Tensor] = {}
        self.best: dict[int, tuple[int, torch.Tensor]] = {}  # ensure: (victims disrupted, x) measured
        self.image_steps = 0  # forward+backward generator passes, all images
        self.checks = 0  # forward-only passes spent measuring

    def stepped(self, active: Sequence[Group], round_index: int) -> None:
        for g in active:
            for i in g.index:
                self.steps[i] += 1
                self.rounds[i] = round_index + 1

    def due(self, active: Sequence[Group], worst: Sequence[torch.Tensor], threshold: float) -> dict[int, list[int]]:
        """Rows of each group worth measuring now: the objective's worst term above the threshold
        (without a transform it is the MSE the check measures, one step late; with a blur it also
        holds the blur's own effect on G, which is why the schedule bounds the checks)."""
        return {
            gi: [
                row
                for row in range(g.n)
                if float(w[row]) > threshold and self.steps[g.index[row]] >= self.next_check[g.index[row]]
            ]
            for gi, (g, w) in enumerate(zip(active, worst, strict=True))
        }

    def settle(
        self,
        active: list[Group],
        candidates: dict[int, list[int]] | None,
        measure: Measure,
        cost_per_image: Callable[[Group], int],
        focus: bool,
    ) -> list[Group]:
        """Measure the candidate images of each group (all where None); those disrupted with
        margin leave the loop with their x. `focus`: drop disrupted victims from J (ensure)."""
        out = []
        for gi, g in enumerate(active):
            rows = list(range(g.n)) if candidates is None else candidates.get(gi, [])
            if not rows:
                out.append(g)
                continue
            sub = g if len(rows) == g.n else g.keep(rows)
            assert sub.x is not None and g.x is not None
            cost = cost_per_image(sub)
            self.checks += sub.n * cost
            flags = measure(sub)
            done = set()
            for j, row in enumerate(rows):
                i = g.index[row]
                self.passes[i] += cost
                ok = all(flags[j].values())
                self.verified[i] = ok
                if ok:
                    self.final[i] = g.x[row].detach()
                    done.add(row)
                    continue
                if focus:
                    self.pending[i] = {name for name, hit in flags[j].items() if not hit}
                    score = sum(flags[j].values())
                    if score >= self.best.get(i, (-1, None))[0]:
                        self.best[i] = (score, g.x[row].detach())
                self.next_check[i] = self.steps[i] + self.gap[i]  # again only after twice as many steps
                self.gap[i] *= 2
            out += drop([g], lambda g_, done=done: [row for row in range(g_.n) if row not in done])
        return out

    def finish(self, active: Sequence[Group]) -> None:
        """The images still in the loop at the end: their best measured iterate where there is
        one (ensure measures the last iterate first, so it wins ties), else the last."""
        for g in active:
            assert g.x is not None
            for k, i in enumerate(g.index):
                self.final[i] = self.best[i][1] if i in self.best else g.x[k].detach()
