//! Self-metrics of the tailer: plain atomics updated once per read pass (never per line) and
//! rendered in the Prometheus text format for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! stats_struct {
    ($( $(#[doc = $doc:literal])* $kind:ident $name:ident ),* $(,)?) => {
        /// Counters and gauges of one tailer. Cheap to read from any thread.
        #[derive(Debug, Default)]
        pub struct IngestStats {
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
        }

        impl IngestStats {
            /// Appends every metric in the Prometheus text exposition format, names prefixed
            /// `sluice_ingest_`.
            pub fn render_prometheus(&self, out: &mut String) {
                $(
                    let help = concat!($($doc),*).trim();
                    let kind = stringify!($kind);
                    let suffix = if kind == "counter" { "_total" } else { "" };
                    let _ = writeln!(out, "# HELP sluice_ingest_{}{} {}", stringify!($name), suffix, help);
                    let _ = writeln!(out, "# TYPE sluice_ingest_{}{} {}", stringify!($name), suffix, kind);
                    let _ = writeln!(out, "sluice_ingest_{}{} {}", stringify!($name), suffix, self.$name.load(Ordering::Relaxed));
                )*
            }
        }
    };
}

stats_struct! {
    /// Files currently open for reading.
    gauge files_watched,
    /// Files discovered and opened since start.
    counter files_opened,
    /// Files read to the end after rotation or deletion and released.
    counter files_released,
    /// Bytes read from log files (uncompressed).
    counter bytes_read,
    /// Physical lines read.
    counter lines_read,
    /// Records emitted after partial and multi-line joining.
    counter records_emitted,
    /// Partial segments (CRI `P`, docker splits) joined into a following segment.
    counter partial_merges,
    /// Physical lines joined into a multi-line record beyond its first.
    counter multiline_joins,
    /// Multi-line records split because they reached max_lines or max_bytes.
    counter multiline_splits,
    /// Records whose message was truncated at max_line_bytes.
    counter lines_truncated,
    /// Records with invalid UTF-8, kept lossily.
    counter invalid_utf8,
    /// Lines whose CRI or docker framing was malformed, kept with an error tag.
    counter malformed_lines,
    /// Rotations seen: a file renamed away, deleted, or compressed, then drained.
    counter rotations,
    /// Files truncated in place (copytruncate).
    counter truncations,
    /// Checkpoint file writes.
    counter checkpoint_writes,
    /// Checkpoint write failures.
    counter checkpoint_errors,
    /// Bytes read but not yet covered by a durable checkpoint, over all files.
    gauge checkpoint_lag_bytes,
    /// Records emitted and not yet acknowledged.
    gauge unacked_records,
    /// Read passes skipped because downstream was slow (full channel or too many unacked).
    counter backpressure_pauses,
    /// Acknowledgements for records the tailer does not know (ignored).
    counter acks_unknown,
    /// Errors opening, reading or fingerprinting files.
    counter file_errors,
    /// Successful pod list calls to the Kubernetes API.
    counter kube_lists,
    /// Watch events applied from the Kubernetes API.
    counter kube_watch_events,
    /// Relists after `410 Gone`.
    counter kube_relists,
    /// Failed Kubernetes API calls (each followed by a backoff).
    counter kube_errors,
    /// Pods in the metadata cache.
    gauge kube_pods_cached,
}

impl IngestStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Reads one metric (for tests and status lines).
    pub fn get(metric: &AtomicU64) -> u64 {
        metric.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_value() {
        let s = IngestStats::default();
        IngestStats::add(&s.lines_read, 7);
        let mut out = String::new();
        s.render_prometheus(&mut out);
        assert!(out.contains("# TYPE sluice_ingest_lines_read_total counter\n"));
        assert!(out.contains("sluice_ingest_lines_read_total 7\n"));
        assert!(out.contains("# TYPE sluice_ingest_files_watched gauge\n"));
        assert!(out.contains("# HELP sluice_ingest_checkpoint_lag_bytes Bytes read"));
    }
}
