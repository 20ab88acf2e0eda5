//! Security detections (filled in by the security work).
