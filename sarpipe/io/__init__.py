"""Readers of real acquisitions (Sentinel-1 Level-0, NISAR L0B, Sentinel-1 SAFE SLC) into contract datasets.

Each reader is reached through the ingest format registry (:mod:`sarpipe.ingest`); modules are imported lazily.
"""
