//! The tailer: one thread that discovers files, reads them, assembles records, sends batches
//! into a bounded channel, and writes checkpoints as acknowledgements arrive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use schemas::{Kubernetes, RawRecord, SourceRef};

use crate::assemble::{self, Assembled, Assembler, PhysLine, Rules, flags};
use crate::batch::{Batch, Batcher};
use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::config::{ReadFrom, TailerConfig};
use crate::decode::{self, Format};
use crate::discovery::{self, Candidate, PathMeta, Role};
use crate::kube::KubeWatch;
use crate::ledger::{Acker, Ledger, SharedLedger};
use crate::metadata::{self, PodCache};
use crate::reader::{LineReader, RawLine};
use crate::stats::IngestStats;
use crate::{IngestError, codes};

/// Most bytes read from one file before the tailer turns to the next, so one busy file cannot
/// starve the others and a batch never grows far beyond its limit.
const READ_BUDGET_BYTES: usize = 256 * 1024;
/// How long one blocked `send` waits before the thread checks for shutdown and writes
/// checkpoints; short enough for a prompt stop, long enough not to spin.
const SEND_WAIT: Duration = Duration::from_millis(50);
/// A retired file is released after this many reads that reached its end while the file was
/// quiet: the first finds the end, the second also hands out an unterminated last line.
const RETIRED_EOF_READS: u32 = 2;
/// A renamed or deleted file counts as quiet once unmodified for this long: the kubelet asks the
/// runtime to reopen its log right after the rename, and until then the runtime still appends
/// to the renamed file; half a second covers that window on a busy node. A file is also quiet
/// as soon as a younger file of its group holds a complete line (the runtime has reopened), and
/// files already this old when found (backfill) are released as soon as they are read.
const RETIRE_GRACE: Duration = Duration::from_millis(500);

/// A configured tailer, not yet running. Created by [`Tailer::try_new`], started by
/// [`Tailer::spawn`].
#[derive(Debug)]
pub struct Tailer {
    config: TailerConfig,
    store: CheckpointStore,
    checkpoints: HashMap<u64, Checkpoint>,
    node: Option<String>,
    stats: Arc<IngestStats>,
    pods: Arc<PodCache>,
}

impl Tailer {
    /// Validates `config`, opens the state dir and loads the checkpoints.
    ///
    /// # Errors
    /// [`IngestError::InvalidConfig`], or checkpoint errors ([`IngestError::Io`],
    /// [`IngestError::CorruptCheckpoint`]).
    pub fn try_new(config: &TailerConfig) -> Result<Tailer, IngestError> {
        config.validate()?;
        let store = CheckpointStore::open(&config.state_dir)?;
        let checkpoints = store.load()?;
        let node = config
            .node_name
            .clone()
            .or_else(|| std::env::var("NODE_NAME").ok().filter(|s| !s.is_empty()));
        Ok(Tailer {
            config: config.clone(),
            store,
            checkpoints,
            node,
            stats: Arc::new(IngestStats::default()),
            pods: Arc::new(PodCache::default()),
        })
    }

    /// The pod metadata cache records are enriched from (filled by the Kubernetes watch).
    pub fn pod_cache(&self) -> Arc<PodCache> {
        Arc::clone(&self.pods)
    }

    /// Starts reading on its own thread (plus one for the Kubernetes watch when configured).
    /// Batches go into `out`; when it is full, reading pauses.
    ///
    /// # Errors
    /// [`IngestError::Spawn`] when a thread cannot be started.
    pub fn spawn(self, out: Sender<Batch>) -> Result<TailerHandle, IngestError> {
        let stop = Arc::new(AtomicBool::new(false));
        let graceful = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let ledger: SharedLedger = Arc::new(Mutex::new(Ledger::default()));
        // Capacity 1: only ever used to wake the thread; dropping the sender wakes it for good.
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(1);
        let watch = match (&self.config.kubernetes_api, &self.node) {
            (Some(api), Some(node)) => Some(KubeWatch::spawn(
                api.clone(),
                node.clone(),
                Arc::clone(&self.pods),
                Arc::clone(&self.stats),
            )?),
            (Some(_), None) => {
                tracing::warn!(
                    "kubernetes_api is set but the node name is unknown (set node_name or NODE_NAME); shipping path metadata only"
                );
                None
            }
            _ => None,
        };
        let known = self
            .checkpoints
            .into_iter()
            .map(|(id, cp)| {
                (
                    id,
                    Known {
                        cp,
                        read_pos: None,
                        finished: false,
                    },
                )
            })
            .collect();
        let catching_up = self.config.max_read_skew_secs > 0;
        let batch = Batcher::new(self.config.batch_max_records, self.config.batch_max_bytes);
        let worker = Worker {
            rules: Rules::new(&self.config.multiline, self.config.max_line_bytes),
            cfg: self.config,
            store: self.store,
            known,
            tracked: HashMap::new(),
            by_inode: HashMap::new(),
            fp_cache: HashMap::new(),
            ledger: Arc::clone(&ledger),
            stats: Arc::clone(&self.stats),
            pods: self.pods,
            node: self.node,
            out,
            stop: Arc::clone(&stop),
            wake_rx,
            idle: Arc::clone(&idle),
            batch,
            dirty: false,
            last_save: Instant::now(),
            next_scan: Instant::now(),
            scans: 0,
            waiting: 0,
            seq: 0,
            scratch: Vec::new(),
            root_error_logged: false,
            catching_up,
            scan_pending: false,
            truncation_seen: false,
        };
        let graceful_w = Arc::clone(&graceful);
        let thread = std::thread::Builder::new()
            .name("sluice-tailer".into())
            .spawn(move || worker.run(&graceful_w))
            .map_err(|source| IngestError::Spawn {
                name: "sluice-tailer",
                source,
            })?;
        Ok(TailerHandle {
            stop,
            graceful,
            wake: Some(wake_tx),
            thread: Some(thread),
            ledger,
            stats: self.stats,
            idle,
            watch,
        })
    }
}

/// A running tailer. Dropping it without [`TailerHandle::shutdown`] stops and joins the tailer
/// thread without writing any further checkpoint (crash semantics).
#[derive(Debug)]
pub struct TailerHandle {
    stop: Arc<AtomicBool>,
    graceful: Arc<AtomicBool>,
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<Result<(), IngestError>>>,
    ledger: SharedLedger,
    stats: Arc<IngestStats>,
    idle: Arc<AtomicBool>,
    watch: Option<KubeWatch>,
}

impl TailerHandle {
    /// An acknowledger for downstream to call once records are committed.
    pub fn acker(&self) -> Acker {
        Acker {
            ledger: Arc::clone(&self.ledger),
            stats: Arc::clone(&self.stats),
        }
    }

    /// The tailer's self-metrics.
    pub fn stats(&self) -> Arc<IngestStats> {
        Arc::clone(&self.stats)
    }

    /// True when every discovered file is read to its end, nothing is buffered in partial or
    /// multi-line state, every emitted record is acknowledged and its checkpoint durably
    /// written. Becomes true within about `poll_interval_ms + flush_timeout_ms +
    /// checkpoint_interval_ms` after input stops and the last acknowledgement (about 0.7 s
    /// with the defaults, measured by a test). It reflects the last read pass: data appended
    /// to a known file turns it false within `poll_interval_ms`, a new file within
    /// `discovery_interval_ms`.
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    fn stop_thread(&mut self) -> Result<(), IngestError> {
        self.stop.store(true, Ordering::Release);
        self.wake = None;
        if let Some(watch) = self.watch.take() {
            watch.stop();
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| IngestError::ThreadPanicked {
                name: "sluice-tailer",
            })?,
            None => Ok(()),
        }
    }

    /// Stops reading, writes the checkpoints of everything acknowledged, joins the threads.
    ///
    /// # Errors
    /// The tailer thread's error, or [`IngestError::ThreadPanicked`].
    pub fn shutdown(mut self) -> Result<(), IngestError> {
        self.graceful.store(true, Ordering::Release);
        self.stop_thread()
    }
}

impl Drop for TailerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_thread();
        }
    }
}

#[derive(Debug)]
struct Known {
    cp: Checkpoint,
    /// Where reading stopped in this process, for a file released and seen again (a copy).
    read_pos: Option<u64>,
    /// Read to its end after rotation or deletion in this process.
    finished: bool,
}

/// A file's identity as computed by discovery.
#[derive(Debug, Clone, Copy)]
struct Fingerprint {
    id: u64,
    /// Bytes of the fingerprint (the first line, capped).
    len: u64,
    /// Runtime timestamp of the first line, for read order.
    first_ns: Option<i64>,
}

impl Fingerprint {
    fn of(dir_key: &str, bytes: &[u8]) -> Fingerprint {
        let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        Fingerprint {
            id: discovery::file_id(dir_key, bytes),
            len: bytes.len() as u64,
            first_ns: decode::decode_line(line)
                .time
                .and_then(|t| t.timestamp_nanos_opt()),
        }
    }
}

/// (read order, file id): sorts a group's files oldest first.
type FileOrder = ((u64, i64, u64), u64);

#[derive(Debug)]
struct Tracked {
    id: u64,
    dev: u64,
    ino: u64,
    path: PathBuf,
    path_str: String,
    group: PathBuf,
    /// Read order inside the group: (restart count, runtime timestamp of the first line in
    /// Unix nanoseconds, discovery sequence). Content time, not the name: a file's name
    /// changes under rotation (even between listing a directory and `stat`ing an entry), one
    /// deleted between two scans keeps no name at all, and an older file may be discovered
    /// after a younger one. Files without a timestamp (plain text) fall back to discovery
    /// order.
    order: (u64, i64, u64),
    retired: bool,
    retired_eofs: u32,
    at_eof: bool,
    /// Log time (Unix milliseconds) of the file's next unread line, or a lower bound of it: the
    /// last line taken, or the first line of the file. Kept while catching up, where a file is
    /// not read further ahead of the others than `max_read_skew_secs`.
    next_time_ms: Option<i64>,
    /// Chosen from the first line read.
    format: Option<Format>,
    /// Directory key and fingerprint length, to re-check the file's identity.
    dir_key: String,
    fp_len: u64,
    gz: bool,
    reader: LineReader,
    asm: Assembler,
    path_meta: Option<PathMeta>,
    /// Shared by every record of the file; rebuilt when the pod cache changes.
    kubernetes: Arc<Kubernetes>,
    service: Option<Arc<str>>,
    meta_gen: u64,
}

#[derive(Debug, Default)]
struct LocalCounts {
    records: u64,
    truncated: u64,
    invalid_utf8: u64,
    malformed: u64,
}

struct Worker {
    cfg: TailerConfig,
    rules: Rules,
    store: CheckpointStore,
    known: HashMap<u64, Known>,
    tracked: HashMap<u64, Tracked>,
    by_inode: HashMap<(u64, u64), u64>,
    /// (dev, inode) to (mtime, file id, fingerprint length) of files seen but not tracked
    /// (copies, finished files).
    fp_cache: HashMap<(u64, u64), (i64, Fingerprint)>,
    ledger: SharedLedger,
    stats: Arc<IngestStats>,
    pods: Arc<PodCache>,
    node: Option<String>,
    out: Sender<Batch>,
    stop: Arc<AtomicBool>,
    wake_rx: Receiver<()>,
    idle: Arc<AtomicBool>,
    /// Records assembled, registered in the ledger, not yet sent, cut into batches; takes
    /// sent batches back to free them on this thread.
    batch: Batcher,
    dirty: bool,
    last_save: Instant,
    next_scan: Instant,
    scans: u64,
    /// Candidates not opened in the last scan (open-file limit).
    waiting: usize,
    seq: u64,
    scratch: Vec<Assembled>,
    root_error_logged: bool,
    /// Until every file has been read to its end once after start-up, files are read in log
    /// time order (within `max_read_skew_secs`) rather than a budget of bytes each.
    catching_up: bool,
    /// A file was dropped without being finished (truncated, replaced, unreadable): its copy
    /// or new content must be discovered before the tailer can call itself idle.
    scan_pending: bool,
    /// A file was found truncated or replaced in place in this loop iteration.
    truncation_seen: bool,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lock(ledger: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    match ledger.lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The framing of a file, chosen from the first line read from it. A pod log is CRI unless
/// it is docker JSON: a malformed first line must not turn the whole file into plain text.
fn choose_format(first_line: &[u8], pods: bool) -> Format {
    if pods {
        if first_line.first() == Some(&b'{') {
            Format::Docker
        } else {
            Format::Cri
        }
    } else {
        decode::detect_format(first_line)
    }
}

/// True while the tracked file still holds the content it was identified by: not shorter
/// than what was read or than its fingerprint, and the same first line.
fn same_identity(t: &Tracked) -> bool {
    let consumed = t.reader.position() + t.reader.pending_bytes() as u64;
    match t.reader.file_len() {
        Ok(Some(len)) if len < consumed || len < t.fp_len => return false,
        Ok(_) => {}
        Err(_) => return true,
    }
    match discovery::fingerprint_bytes(&t.path, false, false) {
        Ok(Some(fp)) => discovery::file_id(&t.dir_key, &fp) == t.id,
        Ok(None) => false,
        // Unreadable under its path (e.g. just renamed): the fd is still the same file.
        Err(_) => true,
    }
}

/// True unless the tracked plain file's first `fp_len` bytes provably changed: read from the
/// open descriptor (the path may already name another file), hashed like its id.
fn head_matches(t: &Tracked) -> bool {
    let mut buf = [0u8; discovery::FINGERPRINT_MAX_BYTES];
    let Ok(n) = usize::try_from(t.fp_len) else {
        return true;
    };
    let Some(head) = buf.get_mut(..n) else {
        return true;
    };
    match t.reader.read_head(head) {
        Ok(true) => discovery::file_id(&t.dir_key, head) == t.id,
        Ok(false) => t.gz,
        // An unreadable head says nothing about the content; the read reports real errors.
        Err(_) => true,
    }
}

impl Worker {
    fn run(mut self, graceful: &AtomicBool) -> Result<(), IngestError> {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms);
        let scan_every = Duration::from_millis(self.cfg.discovery_interval_ms);
        loop {
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if now >= self.next_scan || self.scan_pending {
                self.scan();
                self.next_scan = Instant::now() + scan_every;
            }
            let unacked = lock(&self.ledger).unacked();
            let mut progressed = false;
            if unacked >= self.cfg.max_unacked_records {
                IngestStats::add(&self.stats.backpressure_pauses, 1);
            } else {
                progressed = self.read_pass();
            }
            self.flush_timeouts();
            if !self.flush_batch(true) {
                break;
            }
            self.persist(false);
            self.update_idle();
            // After a truncation, discover and read the new content right away: sleeping a poll
            // first let a writer that truncates again within that poll take everything written
            // since the first truncation with it (measured by tests/it/copytruncate.rs). Only
            // a truncation, never a failing file, skips the sleep, so this cannot spin.
            if !progressed && !std::mem::take(&mut self.truncation_seen) {
                // Wakes early when the handle is dropped or shut down.
                let _ = self.wake_rx.recv_timeout(poll);
            }
        }
        if graceful.load(Ordering::Acquire) {
            self.persist(true);
        }
        self.idle.store(false, Ordering::Release);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    // ---- discovery -------------------------------------------------------------------------

    fn scan(&mut self) {
        self.scan_pending = false;
        let mut cands: Vec<Candidate> = Vec::new();
        if let Some(root) = &self.cfg.pods_dir {
            if let Err(err) = discovery::scan_pods(root, &mut cands) {
                if !self.root_error_logged {
                    tracing::warn!(path = %root.display(), error = %err, "cannot scan pods dir");
                    self.root_error_logged = true;
                }
            } else {
                self.root_error_logged = false;
            }
        }
        for pattern in &self.cfg.include {
            discovery::scan_glob(pattern, &mut cands);
        }
        cands.sort_by(|a, b| (&a.group, &a.order).cmp(&(&b.group, &b.order)));
        let now_unix = unix_secs();
        let mut seen: HashSet<(u64, u64)> = HashSet::with_capacity(cands.len());
        let mut waiting = 0;
        let first_scan = self.scans == 0;
        for c in cands {
            seen.insert((c.dev, c.ino));
            if let Some(&id) = self.by_inode.get(&(c.dev, c.ino)) {
                if let Some(t) = self.tracked.get_mut(&id) {
                    if t.path != c.path {
                        t.path_str = c.path.to_string_lossy().into_owned();
                        t.path = c.path.clone();
                    }
                    if c.role == Role::Rotated && !t.retired {
                        t.retired = true;
                        IngestStats::add(&self.stats.rotations, 1);
                    }
                }
                if let Some(k) = self.known.get_mut(&id) {
                    k.cp.seen_unix_secs = now_unix;
                }
                continue;
            }
            let fp = match self.fp_cache.get(&(c.dev, c.ino)) {
                Some(&(mtime, fp)) if mtime == c.mtime_ns => fp,
                _ => match discovery::fingerprint_bytes(&c.path, c.gz, c.role == Role::Rotated) {
                    Ok(Some(bytes)) => {
                        let fp = Fingerprint::of(&c.dir_key, &bytes);
                        self.fp_cache.insert((c.dev, c.ino), (c.mtime_ns, fp));
                        fp
                    }
                    Ok(None) => continue,
                    Err(err) => {
                        IngestStats::add(&self.stats.file_errors, 1);
                        tracing::debug!(path = %c.path.display(), error = %err, "cannot fingerprint file");
                        continue;
                    }
                },
            };
            let id = fp.id;
            if let Some(k) = self.known.get_mut(&id) {
                k.cp.seen_unix_secs = now_unix;
                if k.finished || k.cp.done {
                    continue;
                }
            }
            if self.tracked.contains_key(&id) {
                // A copy of a file being read (its .gz, or a copytruncate copy).
                continue;
            }
            if self.tracked.len() >= self.cfg.max_open_files {
                waiting += 1;
                continue;
            }
            self.open(c, fp, first_scan);
        }
        self.waiting = waiting;
        // A tracked file whose content was replaced in place (copytruncate, even before we
        // read anything from it) must not go on under its old id.
        let replaced: Vec<u64> = self
            .tracked
            .values()
            .filter(|t| !t.gz && !t.retired && seen.contains(&(t.dev, t.ino)))
            .filter(|t| !same_identity(t))
            .map(|t| t.id)
            .collect();
        for id in replaced {
            IngestStats::add(&self.stats.truncations, 1);
            self.finish(id, false);
            self.truncation_seen = true;
        }
        for t in self.tracked.values_mut() {
            if !t.retired && !seen.contains(&(t.dev, t.ino)) {
                // Renamed out of view or deleted: drain it, then release it.
                t.retired = true;
                IngestStats::add(&self.stats.rotations, 1);
            }
        }
        self.fp_cache.retain(|k, _| seen.contains(k));
        let forget = self.cfg.forget_after_secs;
        let before = self.known.len();
        let tracked = &self.tracked;
        let ledger = lock(&self.ledger);
        self.known.retain(|id, k| {
            tracked.contains_key(id)
                || ledger.has_file(*id)
                || now_unix.saturating_sub(k.cp.seen_unix_secs) < forget
        });
        drop(ledger);
        if self.known.len() != before {
            self.dirty = true;
        }
        self.scans += 1;
        IngestStats::set(&self.stats.files_watched, self.tracked.len() as u64);
    }

    fn open(&mut self, c: Candidate, fp: Fingerprint, first_scan: bool) {
        let Fingerprint {
            id,
            len: fp_len,
            first_ns,
        } = fp;
        let known = self.known.get(&id);
        let mut start = match known {
            Some(k) => k.read_pos.unwrap_or(k.cp.offset),
            None if first_scan && self.cfg.read_from == ReadFrom::End && !c.gz => c.size,
            None => 0,
        };
        if !c.gz && start > c.size {
            // Same first line but shorter than what we read: the content was replaced.
            IngestStats::add(&self.stats.truncations, 1);
            tracing::warn!(path = %c.path.display(), checkpoint = start, size = c.size, "file is shorter than its checkpoint; reading what is left");
            start = c.size;
        }
        let file = match File::open(&c.path) {
            Ok(f) => f,
            Err(err) => {
                IngestStats::add(&self.stats.file_errors, 1);
                tracing::debug!(path = %c.path.display(), error = %err, "cannot open file");
                return;
            }
        };
        let reader = match LineReader::new(
            file,
            c.gz,
            start,
            self.cfg.read_chunk_bytes,
            self.cfg.max_line_bytes,
        ) {
            Ok(r) => r,
            Err(err) => {
                IngestStats::add(&self.stats.file_errors, 1);
                tracing::warn!(path = %c.path.display(), error = %err, "cannot resume file at its checkpoint; skipping it");
                // Nothing left to read in it: treat it as finished so it is not retried.
                let k = self.known.entry(id).or_insert_with(|| Known {
                    cp: Checkpoint {
                        offset: start,
                        done: false,
                        path: c.path.to_string_lossy().into_owned(),
                        seen_unix_secs: unix_secs(),
                    },
                    read_pos: None,
                    finished: false,
                });
                k.finished = true;
                return;
            }
        };
        let pod = c.meta.as_ref().and_then(|m| self.pods.get(&m.uid));
        let meta_gen = self.pods.generation();
        let (kubernetes, service) =
            metadata::build(c.meta.as_ref(), self.node.as_deref(), pod.as_ref());
        let path_str = c.path.to_string_lossy().into_owned();
        self.seq += 1;
        let retired = c.role == Role::Rotated;
        if retired {
            // First seen already rotated (renamed or compressed between two scans).
            IngestStats::add(&self.stats.rotations, 1);
        }
        self.known.entry(id).or_insert_with(|| {
            self.dirty = true;
            Known {
                cp: Checkpoint {
                    offset: start,
                    done: false,
                    path: path_str.clone(),
                    seen_unix_secs: unix_secs(),
                },
                read_pos: None,
                finished: false,
            }
        });
        self.by_inode.insert((c.dev, c.ino), id);
        self.tracked.insert(
            id,
            Tracked {
                id,
                dev: c.dev,
                ino: c.ino,
                path: c.path,
                path_str,
                group: c.group,
                order: (c.order.0, first_ns.unwrap_or(i64::MAX), self.seq),
                retired,
                retired_eofs: 0,
                at_eof: false,
                next_time_ms: first_ns.map(|ns| ns.div_euclid(1_000_000)),
                format: None,
                dir_key: c.dir_key,
                fp_len,
                gz: c.gz,
                reader,
                asm: Assembler::default(),
                path_meta: c.meta,
                kubernetes: Arc::new(kubernetes),
                service: service.map(Arc::from),
                meta_gen,
            },
        );
        IngestStats::add(&self.stats.files_opened, 1);
    }

    // ---- reading ---------------------------------------------------------------------------

    /// While catching up after start-up: the log time (Unix milliseconds) of the earliest
    /// unread line of any file. Lines more than `max_read_skew_secs` past it wait. Read by a
    /// budget of bytes per file instead, a quiet container's whole backlog (hours of it in a few
    /// kilobytes) came before the busy containers' lines of the same hours, moved detection's
    /// watermark past them and made them late: 93% of the lines of a 30-minute backfill of
    /// `sluice generate` were counted late and left out of the rules.
    fn catch_up_front(&mut self) -> Option<i64> {
        if !self.catching_up {
            return None;
        }
        if !self.tracked.is_empty() && self.tracked.values().all(|t| t.at_eof) {
            self.catching_up = false;
            tracing::info!(
                files = self.tracked.len(),
                "caught up: every file read to its end; reading by byte budget from now on"
            );
            return None;
        }
        self.tracked
            .values()
            .filter(|t| !t.at_eof)
            .filter_map(|t| t.next_time_ms)
            .min()
    }

    /// Reads every group's current file once. Returns true on progress: lines were read, or a
    /// file's next line time was learnt.
    fn read_pass(&mut self) -> bool {
        // The latest log time a line may have to be read in this pass.
        let horizon = self.catch_up_front().map(|front| {
            self.close_stale_holds(front);
            let skew_ms = i64::try_from(self.cfg.max_read_skew_secs).unwrap_or(i64::MAX);
            front.saturating_add(skew_ms.saturating_mul(1000))
        });
        let mut groups: BTreeMap<PathBuf, Vec<FileOrder>> = BTreeMap::new();
        for t in self.tracked.values() {
            groups
                .entry(t.group.clone())
                .or_default()
                .push((t.order, t.id));
        }
        let mut progressed = false;
        for (_, mut files) in groups {
            files.sort();
            let count = files.len();
            for (i, (_, id)) in files.into_iter().enumerate() {
                if self.stopping() {
                    return progressed;
                }
                let unacked = lock(&self.ledger).unacked();
                if unacked >= self.cfg.max_unacked_records {
                    IngestStats::add(&self.stats.backpressure_pauses, 1);
                    return progressed;
                }
                // Ahead of the file furthest behind: it waits, and the group's younger files with it.
                if let Some(h) = horizon
                    && self
                        .tracked
                        .get(&id)
                        .and_then(|t| t.next_time_ms)
                        .is_some_and(|next| next > h)
                {
                    break;
                }
                let line_budget = self.cfg.max_unacked_records - unacked;
                let has_successor = i + 1 < count;
                let (read, released) = self.read_file(id, line_budget, has_successor, horizon);
                progressed |= read;
                if self.batch.has_full() && !self.flush_batch(false) {
                    return progressed;
                }
                // Younger files of the group wait until this one is released.
                if !released {
                    break;
                }
            }
        }
        progressed
    }

    /// Reads one file; returns (lines were read or the file's next line time was learnt, file
    /// was released). `has_successor`: a younger file of the same group is open, so the writer
    /// has moved on to it. `horizon`: lines stamped later are left unread (catching up).
    fn read_file(
        &mut self,
        id: u64,
        line_budget: usize,
        has_successor: bool,
        horizon: Option<i64>,
    ) -> (bool, bool) {
        let now = Instant::now();
        let gen_now = self.pods.generation();
        let Some(t) = self.tracked.get_mut(&id) else {
            return (false, true);
        };
        if t.meta_gen != gen_now {
            let pod = t.path_meta.as_ref().and_then(|m| self.pods.get(&m.uid));
            let (k, s) = metadata::build(t.path_meta.as_ref(), self.node.as_deref(), pod.as_ref());
            t.kubernetes = Arc::new(k);
            t.service = s.map(Arc::from);
            t.meta_gen = gen_now;
        }
        // copytruncate: the file shrank below what we consumed, or (when the tailer was slow
        // to come back) it was truncated and has grown past that again: its first bytes are
        // no longer the ones it was identified by. Checked only when there is new data, so
        // an idle file costs no extra read.
        let consumed = t.reader.position() + t.reader.pending_bytes() as u64;
        if let Ok(Some(len)) = t.reader.file_len()
            && (len < consumed || len < t.fp_len || (len > consumed && !head_matches(t)))
        {
            IngestStats::add(&self.stats.truncations, 1);
            tracing::info!(path = %t.path.display(), size = len, offset = consumed, "file truncated in place (copytruncate)");
            self.finish(id, false);
            self.truncation_seen = true;
            return (false, true);
        }
        let drain = t.retired && t.retired_eofs + 1 >= RETIRED_EOF_READS;
        let format = &mut t.format;
        let pods = t.path_meta.is_some();
        let rules = &self.rules;
        let scratch = &mut self.scratch;
        let asm = &mut t.asm;
        let time_before = t.next_time_ms;
        let next_time_ms = &mut t.next_time_ms;
        let result =
            t.reader
                .read_lines(READ_BUDGET_BYTES, line_budget, drain, |raw: RawLine<'_>| {
                    let f = *format.get_or_insert_with(|| choose_format(raw.bytes, pods));
                    let d = decode::decode_as(f, raw.bytes);
                    if let (Some(h), Some(time)) = (horizon, d.time) {
                        let ms = time.timestamp_millis();
                        *next_time_ms = Some(ms);
                        if ms > h {
                            return false;
                        }
                    }
                    let mut fl = 0u16;
                    if raw.truncated {
                        fl |= flags::TRUNCATED;
                    }
                    match d.error {
                        Some(codes::MALFORMED_CRI) => fl |= flags::MALFORMED_CRI,
                        Some(codes::MALFORMED_DOCKER_JSON) => fl |= flags::MALFORMED_DOCKER,
                        _ => {}
                    }
                    asm.push(
                        rules,
                        PhysLine {
                            offset: raw.offset,
                            end: raw.end,
                            time: d.time,
                            stream: d.stream,
                            partial: d.partial,
                            message: &d.message,
                            flags: fl,
                        },
                        now,
                        scratch,
                    );
                    true
                });
        let outcome = match result {
            Ok(o) => o,
            Err(err) => {
                IngestStats::add(&self.stats.file_errors, 1);
                tracing::warn!(path = %t.path.display(), error = %err, "read failed; releasing file");
                self.emit(id);
                self.finish(id, false);
                // Not progress: a file that keeps failing must not make the loop spin.
                return (false, true);
            }
        };
        IngestStats::add(&self.stats.bytes_read, outcome.bytes);
        IngestStats::add(&self.stats.lines_read, outcome.lines);
        t.at_eof = outcome.eof;
        let learnt = t.next_time_ms != time_before;
        let mut release = false;
        if t.retired && outcome.eof {
            let quiet = t.gz
                || has_successor
                || t.reader
                    .modified_age()
                    .is_none_or(|age| age >= RETIRE_GRACE);
            if quiet {
                t.retired_eofs += 1;
            }
            release = t.retired_eofs >= RETIRED_EOF_READS;
        }
        self.emit(id);
        if release {
            self.finish(id, true);
        }
        (outcome.bytes > 0 || outcome.lines > 0 || learnt, release)
    }

    /// Flushes the file's assembly state and stops tracking it. `finished`: read to its end
    /// after rotation, so copies of it are never read again.
    fn finish(&mut self, id: u64, finished: bool) {
        let now = Instant::now();
        if let Some(t) = self.tracked.get_mut(&id) {
            t.asm.flush(&self.rules, now, true, &mut self.scratch);
        }
        self.emit(id);
        let Some(t) = self.tracked.remove(&id) else {
            return;
        };
        self.by_inode.remove(&(t.dev, t.ino));
        self.fp_cache.remove(&(t.dev, t.ino));
        let path_str = t.path_str;
        let pos = t.reader.position();
        let k = self.known.entry(id).or_insert_with(|| Known {
            cp: Checkpoint {
                offset: 0,
                done: false,
                path: path_str.clone(),
                seen_unix_secs: unix_secs(),
            },
            read_pos: None,
            finished: false,
        });
        k.read_pos = Some(pos);
        k.cp.path = path_str;
        k.finished |= finished;
        if !finished {
            self.scan_pending = true;
        }
        IngestStats::add(&self.stats.files_released, 1);
        IngestStats::set(&self.stats.files_watched, self.tracked.len() as u64);
    }

    /// Emits the records held open longer than the multi-line flush timeout (wall clock).
    fn flush_timeouts(&mut self) {
        let now = Instant::now();
        self.release_held(|asm, rules, out| asm.flush(rules, now, false, out));
    }

    /// Runs `release` on the assembler of every file that holds a record, and emits what it
    /// let go.
    fn release_held(
        &mut self,
        mut release: impl FnMut(&mut Assembler, &Rules, &mut Vec<Assembled>),
    ) {
        let ids: Vec<u64> = self
            .tracked
            .values()
            .filter(|t| !t.asm.is_empty())
            .map(|t| t.id)
            .collect();
        for id in ids {
            if let Some(t) = self.tracked.get_mut(&id) {
                release(&mut t.asm, &self.rules, &mut self.scratch);
            }
            self.emit(id);
        }
    }

    /// Catching up: emits the records files hold open for a continuation whose latest line is
    /// stamped more than the flush timeout before `front_ms`, the earliest unread line of any
    /// file. A line with that stamp exists, so the runtime's clock has passed it and any
    /// continuation is already in its file; held until the wall-clock timeout instead, the
    /// last line of a quiet file reached detection after the other files had moved minutes on.
    fn close_stale_holds(&mut self, front_ms: i64) {
        let Some(front) = DateTime::from_timestamp_millis(front_ms) else {
            return;
        };
        self.release_held(|asm, rules, out| asm.close_stale(rules, front, out));
    }

    /// Turns the assembled records in `scratch` into `RawRecord`s of file `id`, registers them
    /// in the ledger and appends them to the batch.
    fn emit(&mut self, id: u64) {
        let Some(t) = self.tracked.get_mut(&id) else {
            self.scratch.clear();
            return;
        };
        let c = t.asm.counts;
        t.asm.counts = assemble::AssembleCounts::default();
        IngestStats::add(&self.stats.partial_merges, c.partial_merges);
        IngestStats::add(&self.stats.multiline_joins, c.multiline_joins);
        IngestStats::add(&self.stats.multiline_splits, c.multiline_splits);
        if self.scratch.is_empty() {
            return;
        }
        let mut counts = LocalCounts::default();
        let mut ledger = lock(&self.ledger);
        ledger.register_many(id, self.scratch.iter().map(|a| (a.offset, a.end)));
        IngestStats::set(&self.stats.unacked_records, ledger.unacked() as u64);
        drop(ledger);
        for a in self.scratch.drain(..) {
            let mut errors: Vec<String> = if a.flags == 0 {
                Vec::new()
            } else {
                assemble::flag_codes(a.flags).map(str::to_string).collect()
            };
            if a.flags & flags::TRUNCATED != 0 {
                counts.truncated += 1;
            }
            if a.flags & (flags::MALFORMED_CRI | flags::MALFORMED_DOCKER) != 0 {
                counts.malformed += 1;
            }
            let message = match String::from_utf8(a.message) {
                Ok(s) => s,
                Err(e) => {
                    counts.invalid_utf8 += 1;
                    errors.push(codes::INVALID_UTF8.to_string());
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                }
            };
            counts.records += 1;
            self.batch.push(RawRecord {
                v: schemas::RAW_RECORD_VERSION,
                time: a.time,
                stream: a.stream,
                message,
                source: SourceRef {
                    path: t.path_str.clone(),
                    file_id: id,
                    offset: a.offset,
                    end_offset: a.end,
                },
                kubernetes: Arc::clone(&t.kubernetes),
                service: t.service.clone(),
                errors,
                lines: a.lines,
            });
        }
        IngestStats::add(&self.stats.records_emitted, counts.records);
        IngestStats::add(&self.stats.lines_truncated, counts.truncated);
        IngestStats::add(&self.stats.invalid_utf8, counts.invalid_utf8);
        IngestStats::add(&self.stats.malformed_lines, counts.malformed);
    }

    // ---- sending ---------------------------------------------------------------------------

    /// Sends the full batches, and with `all` also the last short one. Returns false when the
    /// tailer must stop.
    fn flush_batch(&mut self, all: bool) -> bool {
        self.batch.take_back();
        while let Some(batch) = self.batch.next(all) {
            if !self.send(batch) {
                return false;
            }
        }
        true
    }

    fn send(&mut self, mut batch: Batch) -> bool {
        loop {
            match self.out.send_timeout(batch, SEND_WAIT) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(b)) => {
                    batch = b;
                    IngestStats::add(&self.stats.backpressure_pauses, 1);
                    if self.stopping() {
                        return false;
                    }
                    // Acknowledgements and returned batches keep arriving while we wait.
                    self.persist(false);
                    self.batch.take_back();
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    tracing::warn!("batch receiver is gone; stopping the tailer");
                    self.stop.store(true, Ordering::Release);
                    return false;
                }
            }
        }
    }

    // ---- checkpoints -----------------------------------------------------------------------

    fn persist(&mut self, force: bool) {
        let mut ledger = lock(&self.ledger);
        let ids: Vec<u64> = self
            .known
            .keys()
            .copied()
            .filter(|id| ledger.has_file(*id))
            .collect();
        for id in ids {
            let open = self.tracked.get(&id).and_then(|t| t.asm.open_start());
            if let Some(cp) = ledger.advance(id, open)
                && let Some(k) = self.known.get_mut(&id)
                && cp > k.cp.offset
            {
                k.cp.offset = cp;
                self.dirty = true;
            }
        }
        for (id, k) in &mut self.known {
            if k.finished
                && !k.cp.done
                && !ledger.has_file(*id)
                && k.cp.offset >= k.read_pos.unwrap_or(0)
            {
                k.cp.done = true;
                self.dirty = true;
            }
        }
        IngestStats::set(&self.stats.unacked_records, ledger.unacked() as u64);
        drop(ledger);
        let lag: u64 = self
            .tracked
            .values()
            .map(|t| {
                let cp = self.known.get(&t.id).map_or(0, |k| k.cp.offset);
                t.reader.position().saturating_sub(cp)
            })
            .sum();
        IngestStats::set(&self.stats.checkpoint_lag_bytes, lag);
        let due = force
            || self.last_save.elapsed() >= Duration::from_millis(self.cfg.checkpoint_interval_ms);
        if !self.dirty || !due {
            return;
        }
        let entries: HashMap<u64, Checkpoint> = self
            .known
            .iter()
            .map(|(id, k)| (*id, k.cp.clone()))
            .collect();
        match self.store.save(&entries) {
            Ok(()) => {
                self.dirty = false;
                IngestStats::add(&self.stats.checkpoint_writes, 1);
            }
            Err(err) => {
                IngestStats::add(&self.stats.checkpoint_errors, 1);
                tracing::error!(error = %err, code = err.error_code(), "checkpoint write failed");
            }
        }
        self.last_save = Instant::now();
    }

    fn update_idle(&self) {
        let idle = self.scans > 0
            && !self.scan_pending
            && self.waiting == 0
            && self.batch.is_empty()
            && !self.dirty
            && lock(&self.ledger).is_empty()
            && self
                .tracked
                .values()
                .all(|t| t.at_eof && !t.retired && t.asm.is_empty());
        self.idle.store(idle, Ordering::Release);
    }
}
