"""Timeline observation: recorded watch events -> pandas frames.

:mod:`.frames` holds the frame schemas (column names, documented once) and the pure
builders from recorded events; :mod:`.series` holds step-function lookups on those
frames; :mod:`.load` turns load-runner request records into a per-second offered load.
The background recorder that produces the events lives in ``recorder.py`` (cluster side).
"""

from harness.observe.frames import (
    PANIC_COLUMNS,
    POD_COLUMNS,
    READY_COLUMNS,
    SCALE_COLUMNS,
    SCHEDULING_COLUMNS,
    Frames,
    build_frames,
    infer_panic,
    panic_from_gauge,
    pod_frame,
    ready_frame,
    scale_frame,
    scheduling_frame,
)

__all__ = [
    "PANIC_COLUMNS",
    "POD_COLUMNS",
    "READY_COLUMNS",
    "SCALE_COLUMNS",
    "SCHEDULING_COLUMNS",
    "Frames",
    "build_frames",
    "infer_panic",
    "panic_from_gauge",
    "pod_frame",
    "ready_frame",
    "scale_frame",
    "scheduling_frame",
]
