"""Cleanup without a clean twin, on any complex spectrogram batch (audio or SAR): the deep audio prior
(:mod:`sarpipe.spectral.dap`) and the Score-CAM denoiser (:mod:`sarpipe.spectral.scorecam`); and Sams-Net source
separation by sliced attention (:mod:`sarpipe.spectral.samsnet`, the network; :mod:`sarpipe.spectral.samsnet_method`,
cleanup method ``samsnet``; :mod:`sarpipe.spectral.samsnet_training`, ``sarpipe train samsnet``).
The SFSRNet-style super-resolution behind ``--sr F`` (:mod:`sarpipe.spectral.sr`, registered as ``sfsrnet``: any
method on a coarser STFT, its estimate restored).

torch is imported only inside those modules (importing this package imports nothing heavy).
"""
