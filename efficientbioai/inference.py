"""``python efficientbioai/inference.py --config ...``: same as ``efficientbioai infer``.

Imported as ``efficientbioai.inference``, this module stands for :func:`efficientbioai.infer` (calling
it calls that function), so the script's name never hides the Python API.
"""

import sys
import types
from pathlib import Path


class _CallsTheAPI(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from efficientbioai.api import infer

        return infer(*args, **kwargs)


if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repository, not this folder
    from efficientbioai.cli import main

    sys.exit(main(["infer", *sys.argv[1:]]))
else:
    sys.modules[__name__].__class__ = _CallsTheAPI
