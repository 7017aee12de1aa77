"""Remote catalog providers: search a catalog service for products and download them, verified.

A provider (``cdse``, ``dhus``, ``stac``, or a third party's registered under the entry-point group
``sarpipe.catalog_providers``) turns a ``kind: remote`` entry of ``data_catalog.yaml`` into requests to its service
and the answers into :class:`~sarpipe.catalog_remote.records.ProductRecord` (STAC-like); the downloader
(:mod:`sarpipe.catalog_remote.download`) is shared by every provider. See ``docs/catalog.md``.
"""
