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

The stall rule (under `ensure`): at the end of each round, a victim an image has not disrupted
whose smallest output MSE grew by less than `STALL_GROWTH` (10%) over that round stops drawing
budget: it leaves the image's J for good and is reported not disrupted. The first round is
measured against the start (`Tally.baseline`), so an edit nothing moves costs one round, not the
whole budget; the image ends as soon as each of its victims is disrupted or stalled. The rule
follows each victim's least disrupted face and target (what the verdict judges), not each
target apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

from ..config import Policy
from .batch import Group, drop

FIRST_CHECK = 2  # steps before early stop first measures an image (one step seldom disrupts anything)
STALL_GROWTH = 0.10  # under ensure: a round must grow an undisrupted victim's MSE by this share
# Per image of the group: victim -> (disrupted with margin, its smallest output MSE).
Measure = Callable[[Group], list[dict[str, tuple[bool, float]]]]


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
        self.round_mse: list[dict[str, float]] = [{} for _ in range(n)]  # at the last round's end
        self.stalled: list[set[str]] = [set() for _ in range(n)]
        self.image_steps = 0  # forward+backward generator passes, all images
        self.checks = 0  # forward-only passes spent measuring
        self.draws = 0  # gradient evaluations so far (the round robin over targets follows it)

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

    def baseline(self, active: Sequence[Group], measure: Measure, cost_per_image: Callable[[Group], int]) -> None:
        """Under ensure, before the first round: each victim's MSE at the start, against which the
        first round's growth is judged (the stall rule)."""
        for g in active:
            cost = cost_per_image(g)
            self.checks += g.n * cost
            for k, flags in enumerate(measure(g)):
                self.passes[g.index[k]] += cost
                self.round_mse[g.index[k]] = {name: mse for name, (_, mse) in flags.items()}

    def settle(
        self,
        active: list[Group],
        candidates: dict[int, list[int]] | None,
        measure: Measure,
        cost_per_image: Callable[[Group], int],
        focus: bool,
        round_end: bool = False,
    ) -> list[Group]:
        """Measure the candidate images of each group (all where None); those disrupted with
        margin leave the loop with their x. `focus`: drop disrupted victims from J (ensure);
        with `round_end`, also apply the stall rule, and let an image whose victims are each
        disrupted or stalled leave with its best iterate."""
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
            measured = measure(sub)
            done: set[int] = set()
            for j, row in enumerate(rows):
                i = g.index[row]
                self.passes[i] += cost
                hits = {name: hit for name, (hit, _) in measured[j].items()}
                ok = all(hits.values())
                self.verified[i] = ok
                if ok:
                    self.final[i] = g.x[row].detach()
                    done.add(row)
                    continue
                if focus:
                    score = sum(hits.values())
                    if score >= self.best.get(i, (-1, None))[0]:
                        self.best[i] = (score, g.x[row].detach())
                    if round_end:
                        self._stall(i, measured[j])
                    self.pending[i] = {name for name, hit in hits.items() if not hit} - self.stalled[i]
                    if not self.pending[i]:  # every victim left has stalled: more steps buy nothing
                        self.final[i] = self.best[i][1]
                        done.add(row)
                        continue
                self.next_check[i] = self.steps[i] + self.gap[i]  # again only after twice as many steps
                self.gap[i] *= 2
            out += drop([g], partial(_rows_left, done))
        return out

    def _stall(self, i: int, measured: dict[str, tuple[bool, float]]) -> None:
        before = self.round_mse[i]
        for name, (hit, mse) in measured.items():
            if not hit and name in before and (mse <= before[name] or mse < before[name] * (1.0 + STALL_GROWTH)):
                self.stalled[i].add(name)
        self.round_mse[i] = {name: mse for name, (_, mse) in measured.items()}

    def finish(self, active: Sequence[Group]) -> None:
        """The images still in the loop at the end: their best measured iterate where there is
        one (ensure measures the last iterate first, so it wins ties), else the last."""
        for g in active:
            assert g.x is not None
            for k, i in enumerate(g.index):
                self.final[i] = self.best[i][1] if i in self.best else g.x[k].detach()


def _rows_left(done: set[int], g: Group) -> list[int]:
    """The rows of `g` not in `done`."""
    return [row for row in range(g.n) if row not in done]
