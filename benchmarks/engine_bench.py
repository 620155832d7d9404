"""Engine throughput on this machine: the paper's default configuration and `pgd`, 128x128,
10 steps, batch 1 and 8, next to Ruiz et al.'s reference loop. Writes
benchmarks/results/engine-<device>.md. Extra arguments go to `faceshield bench`.

    python benchmarks/engine_bench.py                       # CPU, the embedded default's width
    python benchmarks/engine_bench.py --width full --device cuda --batches 1,8,32,64,128,256 \
        --precisions fp32,tf32,bf16
"""

import sys

from faceshield.cli.main import main

if __name__ == "__main__":
    defaults = ["bench", "--methods", "pgd,union-saliency", "--batches", "1,8", "--steps", "10"]
    sys.exit(main(defaults + sys.argv[1:]))
