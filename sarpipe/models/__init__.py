"""Learned RFI cleanup methods (torch only here, imported lazily).

Nothing heavy is imported by this package: ``sarpipe.models.torch_method`` holds the base class every learned
method uses, ``sarpipe.models.weights`` the weights folders (safetensors + JSON config + model card),
``sarpipe.models.difnet`` the DIFNet architecture and its cleanup method, ``sarpipe.models.training`` and
``sarpipe.models.difnet_data`` its training loop and on-the-fly training data.
"""

__all__: list[str] = []
