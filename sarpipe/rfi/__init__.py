"""RFI chain: detection in the focused image, image -> pulse mapping, pulse-wise STFT, cleanup stages, metrics."""
