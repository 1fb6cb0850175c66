"""The formats vaewatch exchanges with the outside: wire messages, series CSV, model manifest.

Import from here or from the modules; `schemas.messages` is the worker's hot path,
`schemas.series_csv` the batch side's file format, `schemas.manifest` the model artifact.
"""

from schemas.manifest import ModelManifest, Thresholds
from schemas.messages import (
    MAX_CHANNELS,
    MAX_MESSAGE_BYTES,
    MAX_STEPS,
    AnomalousPoint,
    AnomalyEvent,
    CorrectedWindow,
    DecodedWindow,
    InvalidMessage,
    ModelRef,
    SensorWindow,
    SourceRef,
    align_to_model,
    dead_letter_headers,
    decode_window,
    encode_corrected,
    encode_event,
    encode_window,
    make_event_id,
)
from schemas.series_csv import (
    SeriesTable,
    find_series_files,
    parse_timestamps,
    read_series_csv,
    write_scores_csv,
)

__all__ = [
    "MAX_CHANNELS",
    "MAX_MESSAGE_BYTES",
    "MAX_STEPS",
    "AnomalousPoint",
    "AnomalyEvent",
    "CorrectedWindow",
    "DecodedWindow",
    "InvalidMessage",
    "ModelManifest",
    "ModelRef",
    "SensorWindow",
    "SeriesTable",
    "SourceRef",
    "Thresholds",
    "align_to_model",
    "dead_letter_headers",
    "decode_window",
    "encode_corrected",
    "encode_event",
    "encode_window",
    "find_series_files",
    "make_event_id",
    "parse_timestamps",
    "read_series_csv",
    "write_scores_csv",
]
