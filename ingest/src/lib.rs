//! Sluice's agent input: discovers Kubernetes pod-log files, tails them through rotation,
//! decodes CRI and docker framing, joins partial and multi-line records, attaches pod
//! metadata, and checkpoints what downstream has acknowledged.
//!
//! - [`TailerConfig`] → [`Tailer::try_new`] (validates, loads checkpoints) →
//!   [`Tailer::spawn`] → [`TailerHandle`]: batches arrive on the bounded channel you pass in;
//!   call [`Acker::ack`] once they are committed; [`TailerHandle::shutdown`] stops cleanly.
//! - [`decode_line`]: decodes one runtime-framed line, for `sluice parse`.
//!
//! ```no_run
//! use ingest::{Tailer, TailerConfig};
//! # fn main() -> Result<(), ingest::IngestError> {
//! let config = TailerConfig {
//!     pods_dir: Some("/var/log/pods".into()),
//!     state_dir: "/var/lib/sluice/ingest".into(),
//!     ..TailerConfig::default()
//! };
//! let (tx, rx) = crossbeam_channel::bounded(8);
//! let handle = Tailer::try_new(&config)?.spawn(tx)?;
//! let acker = handle.acker();
//! for batch in rx.iter().take(1) {
//!     // ... index the records, commit, then:
//!     acker.ack(batch.records.iter().map(|r| &r.source));
//! }
//! handle.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! # Delivery guarantees
//! At-least-once. A file's checkpoint advances only over records that were acknowledged and
//! never into the middle of a record (see `ledger.rs`), so after a crash the tail is re-read
//! and every replayed record carries the same `source.file_id`/`source.offset`, hence the same
//! `event.id`, and the index drops it. Files are identified by their directory and first line,
//! not their name or inode, so kubelet renames and `.gz` compression neither re-read nor skip.
//! copytruncate loses what is written between the copy and the truncation (inherent); lines
//! before the copy are read from the copy when it is in view (`<n>.log.<suffix>`). When the
//! copy is out of view, what was written since the last read is lost too: on average half a
//! `poll_interval_ms`, at most about one (measured by `tests/it/copytruncate.rs`, figures in
//! `ingest/README.md`).
//!
//! Known limit: two files of one directory whose first lines are byte-identical share an id.
//! CRI and docker lines start with a nanosecond timestamp, so this cannot happen to pod logs;
//! a plain `include` file that always starts with the same header line would be taken for
//! its predecessor after rotation.
//!
//! # Read order
//! Live, each pass reads up to 256 KiB from every file with new data. Catching up after
//! start-up (a backfill, or the backlog of a restart) that order would hand detection a quiet
//! container's whole backlog before the busy containers' lines of the same hours, so those
//! would count as late; instead no file is read more than `max_read_skew_secs` (10 s) of log
//! time ahead of the earliest unread line of any file, and a line held for a possible
//! continuation is let go once a line stamped past the multi-line flush timeout is seen (in
//! its own file, or as the earliest unread line of another). Once every file has been read to
//! its end, the tailer logs "caught up" and reads by byte budget again.
//!
//! # Memory bound
//! Independent of input rate and sink stalls; with `C` the channel capacity chosen by the
//! caller, `F` the open files (≤ `max_open_files`), and the config values:
//!
//! - batches: `C + 1` batches, each at most `batch_max_records` records and
//!   `batch_max_bytes` of messages, plus `READ_BUDGET_BYTES` (256 KiB) of records being cut
//!   into batches, plus up to 4 dropped batches on their way back to be freed on the tailer
//!   thread ([`Records`]). A record costs its message plus about 0.3 KiB (the `RawRecord`
//!   itself and its own copy of the path; the pod metadata is one `Arc` per file);
//! - per open file: a read buffer of `read_chunk_bytes` while the file has unread data (freed
//!   when idle), an over-long line's head of `max_line_bytes + 4 KiB`, and per stream (3) one
//!   partial line of ≤ `max_line_bytes` and one multi-line record of ≤ `multiline.max_bytes`;
//! - the acknowledgement ledger: 24 bytes × `max_unacked_records`, up to twice that while a
//!   deque grows (reading pauses when that many records are unacknowledged).
//!
//! With the defaults (256-record batches, 100 000 unacked) and `C` = 16 (the embedded
//! pipeline) that is ~4 MiB of batches of ~350-byte lines and at most ~5 MiB of ledger, plus
//! 64 KiB per busy file; the multi-line and partial buffers only fill for records that really
//! are that long. Measured peak RSS of whole processes reading at full speed (figures and
//! commands in `ingest/README.md`): ~10 MiB for the `tail_rss` example (tailer plus an
//! acknowledging consumer; 10–13.6 MiB with mimalloc, the `sluice` binary's allocator) and for
//! `benches/src/bin/agent_path` (tailer, parse, NDJSON) over 1 GiB.
//!
//! # Threads
//! One tailer thread (discovery, reading, assembly, checkpoints) and, when
//! `kubernetes_api` is set, one watch thread. Per-line work never logs or touches a metric;
//! counters are folded into [`IngestStats`] per read pass.

mod assemble;
mod batch;
mod checkpoint;
mod config;
mod decode;
mod discovery;
mod error;
mod kube;
mod ledger;
mod metadata;
mod reader;
mod stats;
mod tailer;

pub use batch::{Batch, Records};
pub use checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointStore};
pub use config::{
    DEFAULT_MAX_READ_SKEW_SECS, KubeApiConfig, MultilineConfig, MultilineRule, ReadFrom,
    TailerConfig,
};
pub use decode::{DecodedLine, Format, decode_as, decode_line, detect_format, parse_rfc3339};
pub use error::IngestError;
pub use ledger::Acker;
pub use metadata::{LABEL_APP, LABEL_APP_NAME, PodCache, PodInfo};
pub use stats::IngestStats;
pub use tailer::{Tailer, TailerHandle};

/// Stable error codes put in [`schemas::RawRecord::errors`].
pub mod codes {
    /// The message was longer than `max_line_bytes` and was cut.
    pub const LINE_TRUNCATED: &str = "line_truncated";
    /// The message held invalid UTF-8, replaced lossily with U+FFFD.
    pub const INVALID_UTF8: &str = "invalid_utf8";
    /// The line did not have CRI framing; the message is the whole line.
    pub const MALFORMED_CRI: &str = "malformed_cri";
    /// The line was not a docker json-file object; the message is the whole line.
    pub const MALFORMED_DOCKER_JSON: &str = "malformed_docker_json";
    /// Partial segments without their final segment (flushed on timeout or at file end).
    pub const PARTIAL_UNTERMINATED: &str = "partial_unterminated";
    /// A multi-line record reached `max_lines` or `max_bytes`; the rest is the next record.
    pub const MULTILINE_SPLIT: &str = "multiline_split";
}
