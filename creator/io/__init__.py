"""Readers, writers and format adapters: Amazon-2018, MIND, HLLM-Creator parquet and our own records."""

from creator.io.catalog import Catalog, build_ad
from creator.io.load import FORMATS, detect_format, load_catalog
from creator.io.records import read_records, write_records, write_rejects

__all__ = ["FORMATS", "Catalog", "build_ad", "detect_format", "load_catalog", "read_records", "write_records",
           "write_rejects"]
