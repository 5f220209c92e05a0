"""Regenerate results/: the same code as ``jepa-flow reproduce`` (same flags).

python scripts/reproduce_paper.py [--quick] [--out results] [--only 1 3] [--force]
"""

import sys

from jepa_flow._cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
