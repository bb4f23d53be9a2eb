"""bwv: an offline body-worn video evidence catalogue and voice-of-the-child compliance checker."""

__version__ = "0.1.0"
