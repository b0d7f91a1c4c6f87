"""``python efficientbioai/inference.py --config ...``: same as ``efficientbioai infer``."""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository, not this folder
    from efficientbioai.cli import main

    sys.exit(main(["infer", *sys.argv[1:]]))
