"""act: a high-throughput trainer for ACT (Asymmetric Co-Training) on noisy labels."""

__version__ = "0.1.0"
