"""The Python API: objects in, objects out. The CLI commands call these same functions.

=====================================  =================================================
``compress(config, model, exp_path)``  build every variant → :class:`Experiment`
``infer(exp, images)``                 run and compare the variants → :class:`Report`
``load_engine(exp, "openvino:int8")``  one variant's engine: ``engine(x)``
=====================================  =================================================
"""

from efficientbioai.api.experiment import Experiment, compress, load_engine
from efficientbioai.api.infer import infer
from efficientbioai.evaluation.report import Report

__all__ = ["Experiment", "Report", "compress", "infer", "load_engine"]
