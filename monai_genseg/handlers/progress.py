"""ignite's tqdm progress bar, from wherever the installed ignite keeps it."""

try:  # pytorch-ignite >= 0.5
    from ignite.handlers import ProgressBar
except ImportError:  # 0.4.x, which MONAI < 1.6 pins (e.g. in a MONAI Label environment)
    from ignite.contrib.handlers import ProgressBar

__all__ = ["ProgressBar"]
