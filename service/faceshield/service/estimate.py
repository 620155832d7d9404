"""How long one image takes on this server, for GetModelInfo's `expected_seconds_per_image`.

Clients size their deadlines from it (the SDK's default deadline), so it must come from this
server's own hardware and models rather than a constant: a 512x512 photo protected against five
attributes takes seconds on a GPU and minutes on a loaded CPU.

The unit that travels across configurations is the generator pass (one forward and backward of
one image against one target), which the engine counts (`counters["image_steps"]`). Each engine
batch, and the warm-up before any, adds (seconds, passes); the estimate is the seconds per pass
over the recent window times the passes one image needs at the server's default attack against
every attribute. Seconds include what scales with the photo's size (masks, crop and resize,
metrics), so recent traffic of large photos raises the figure, as it should.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from faceshield.engine.config import AttackConfig
from faceshield.engine.defaults import EOT_SAMPLES, ROBUST_SAMPLES

WINDOW = 32  # batches; the warm-up's sample is soon outweighed by real ones


def default_image_steps(config: AttackConfig, targets: int, steps: int | None = None) -> int:
    """Generator passes the engine counts for one image under `config` against `targets`
    targets: one per I-FGSM step (nine with EoT's blurs, three with the robust stage's
    transforms), plus the noise generator's steps when the attack starts from it (tests check
    this against the engine's own counter). `steps`: the I-FGSM steps to count (default the
    config's; an `ensure` policy's budget for its worst case)."""
    per_step = {"eot": EOT_SAMPLES, "robust": ROBUST_SAMPLES}.get(config.stages.blur, 1)
    noise = config.noise_steps if config.stages.start == "noise-generator" else 0
    drawn = min(targets, config.targets_per_step) if config.targets_per_step else targets  # per step, in turn
    return drawn * (config.steps if steps is None else steps) * per_step + targets * noise


class CostEstimate:
    """Seconds per image at the default attack, from measured (seconds, generator passes).

    `passes` reads the engine's running count of generator passes; `batch_done` (the batcher's
    observer hook, called on the event loop after each batch) takes the count's growth since the
    previous batch as this batch's passes. Batches run one at a time on the engine thread, so
    the growth belongs to the batch just timed.
    """

    def __init__(self, passes: Callable[[], int], window: int = WINDOW):
        self._passes = passes
        self._seen = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=window)
        self.image_steps = 0  # passes per image at the default attack; set once the models are known

    def configure(self, image_steps: int, passes_so_far: int) -> None:
        """Passes per default image, and the engine's count that batches will be measured from
        (the warm-up's passes are `observe`d by the server itself)."""
        self.image_steps = image_steps
        self._seen = passes_so_far

    def observe(self, seconds: float, passes: int) -> None:
        if passes > 0 and seconds > 0:
            self._samples.append((seconds, passes))

    def sync(self, seconds: float) -> None:
        """Record `seconds` of engine work against the passes counted since the last call."""
        now = self._passes()
        self.observe(seconds, now - self._seen)
        self._seen = now

    def seconds_per_image(self) -> float:
        """0.0 until something was measured."""
        if not self._samples or not self.image_steps:
            return 0.0
        seconds = sum(s for s, _ in self._samples)
        passes = sum(n for _, n in self._samples)
        return seconds / passes * self.image_steps

    # BatchObserver (see batcher.py): only finished batches matter here
    def queue_depth(self, depth: int) -> None:
        pass

    def batch_done(self, size: int, seconds: float) -> None:
        self.sync(seconds)

    def item_dropped(self, reason: str) -> None:
        pass
