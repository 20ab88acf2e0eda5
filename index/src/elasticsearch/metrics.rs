//! Counters of the Elasticsearch writer, read by tests and rendered for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters; updated once per bulk request or response, never per document.
#[derive(Debug, Default)]
pub(crate) struct EsMetrics {
    pub(crate) bulk_requests: AtomicU64,
    pub(crate) bulk_request_failures: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) docs_created: AtomicU64,
    pub(crate) docs_duplicate: AtomicU64,
    pub(crate) docs_dead_lettered: AtomicU64,
    pub(crate) docs_retried: AtomicU64,
    pub(crate) docs_unacked: AtomicU64,
    pub(crate) docs_without_id: AtomicU64,
    pub(crate) dead_letter_write_failures: AtomicU64,
    pub(crate) in_flight_bytes: AtomicU64,
    pub(crate) in_flight_bytes_max: AtomicU64,
}

/// A copy of the writer's counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EsMetricsSnapshot {
    /// `_bulk` requests sent, retries included.
    pub bulk_requests: u64,
    /// Requests that failed as a whole: connection errors, timeouts, 429 and 5xx responses.
    pub bulk_request_failures: u64,
    /// Request body bytes sent, retries included.
    pub bytes_sent: u64,
    /// Documents ES created (201).
    pub docs_created: u64,
    /// Documents ES already had (409 on `create`): replays, counted as success.
    pub docs_duplicate: u64,
    /// Documents ES refused for good and written to the dead-letter file.
    pub docs_dead_lettered: u64,
    /// Document sends that had to be retried (429, 5xx, connection failures).
    pub docs_retried: u64,
    /// Documents given up on (retry limit or shutdown) and reported unacknowledged.
    pub docs_unacked: u64,
    /// Events without an `event.id`, sent without `_id` (ES assigns one; replays duplicate).
    pub docs_without_id: u64,
    /// Failed appends to the dead-letter file (the documents are retried).
    pub dead_letter_write_failures: u64,
    /// Bytes of `_bulk` bodies currently held by in-flight requests and their retries.
    pub in_flight_bytes: u64,
    /// The highest `in_flight_bytes` seen.
    pub in_flight_bytes_max: u64,
}

impl EsMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn in_flight_add(&self, n: u64) {
        let now = self.in_flight_bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.in_flight_bytes_max.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn in_flight_sub(&self, n: u64) {
        self.in_flight_bytes.fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> EsMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EsMetricsSnapshot {
            bulk_requests: get(&self.bulk_requests),
            bulk_request_failures: get(&self.bulk_request_failures),
            bytes_sent: get(&self.bytes_sent),
            docs_created: get(&self.docs_created),
            docs_duplicate: get(&self.docs_duplicate),
            docs_dead_lettered: get(&self.docs_dead_lettered),
            docs_retried: get(&self.docs_retried),
            docs_unacked: get(&self.docs_unacked),
            docs_without_id: get(&self.docs_without_id),
            dead_letter_write_failures: get(&self.dead_letter_write_failures),
            in_flight_bytes: get(&self.in_flight_bytes),
            in_flight_bytes_max: get(&self.in_flight_bytes_max),
        }
    }
}

impl EsMetricsSnapshot {
    /// Appends the counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        let rows: [(&str, &str, &str, u64); 12] = [
            (
                "sluice_es_bulk_requests_total",
                "counter",
                "_bulk requests sent, retries included",
                self.bulk_requests,
            ),
            (
                "sluice_es_bulk_request_failures_total",
                "counter",
                "_bulk requests that failed as a whole (connection, timeout, 429, 5xx)",
                self.bulk_request_failures,
            ),
            (
                "sluice_es_bytes_sent_total",
                "counter",
                "_bulk body bytes sent, retries included",
                self.bytes_sent,
            ),
            (
                "sluice_es_docs_created_total",
                "counter",
                "documents created by Elasticsearch",
                self.docs_created,
            ),
            (
                "sluice_es_docs_duplicate_total",
                "counter",
                "documents Elasticsearch already had (409 on create), counted as success",
                self.docs_duplicate,
            ),
            (
                "sluice_es_docs_dead_lettered_total",
                "counter",
                "documents refused for good and written to the dead-letter file",
                self.docs_dead_lettered,
            ),
            (
                "sluice_es_docs_retried_total",
                "counter",
                "document sends retried after 429, 5xx or connection failures",
                self.docs_retried,
            ),
            (
                "sluice_es_docs_unacked_total",
                "counter",
                "documents given up on (retry limit or shutdown), left for replay",
                self.docs_unacked,
            ),
            (
                "sluice_es_docs_without_id_total",
                "counter",
                "events without event.id, indexed with an ES-assigned _id",
                self.docs_without_id,
            ),
            (
                "sluice_es_dead_letter_write_failures_total",
                "counter",
                "failed appends to the dead-letter file",
                self.dead_letter_write_failures,
            ),
            (
                "sluice_es_in_flight_bytes",
                "gauge",
                "bytes of _bulk bodies held by in-flight requests",
                self.in_flight_bytes,
            ),
            (
                "sluice_es_in_flight_bytes_max",
                "gauge",
                "highest sluice_es_in_flight_bytes seen",
                self.in_flight_bytes_max,
            ),
        ];
        for (name, kind, help, value) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}
