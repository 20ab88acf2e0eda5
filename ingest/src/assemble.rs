//! Turning decoded physical lines into records, per file and per stream: partial-line merge
//! (CRI `P` segments, docker 16 KiB splits), then multi-line joining (Python tracebacks, Java
//! stack traces, Go panics, user rules).
//!
//! Everything here is synchronous and deterministic given the input lines; the only clock is
//! the flush timeout, passed in by the caller.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use regex::bytes::Regex;
use schemas::Stream;

use crate::codes;
use crate::config::MultilineConfig;

/// Flag bits for per-record problems; turned into [`codes`] strings only when set.
pub(crate) mod flags {
    pub const TRUNCATED: u16 = 1;
    pub const MALFORMED_CRI: u16 = 1 << 1;
    pub const MALFORMED_DOCKER: u16 = 1 << 2;
    pub const PARTIAL_UNTERMINATED: u16 = 1 << 3;
    pub const MULTILINE_SPLIT: u16 = 1 << 4;
}

/// Error codes of the flags set in `bits`, in a fixed order.
pub(crate) fn flag_codes(bits: u16) -> impl Iterator<Item = &'static str> {
    [
        (flags::TRUNCATED, codes::LINE_TRUNCATED),
        (flags::MALFORMED_CRI, codes::MALFORMED_CRI),
        (flags::MALFORMED_DOCKER, codes::MALFORMED_DOCKER_JSON),
        (flags::PARTIAL_UNTERMINATED, codes::PARTIAL_UNTERMINATED),
        (flags::MULTILINE_SPLIT, codes::MULTILINE_SPLIT),
    ]
    .into_iter()
    .filter(move |(bit, _)| bits & bit != 0)
    .map(|(_, code)| code)
}

/// One decoded physical line with its byte range in the file.
#[derive(Debug)]
pub(crate) struct PhysLine<'a> {
    pub offset: u64,
    pub end: u64,
    pub time: Option<DateTime<Utc>>,
    pub stream: Option<Stream>,
    pub partial: bool,
    pub message: &'a [u8],
    pub flags: u16,
}

/// A finished record, before metadata is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assembled {
    pub offset: u64,
    pub end: u64,
    pub time: Option<DateTime<Utc>>,
    pub stream: Option<Stream>,
    pub message: Vec<u8>,
    pub flags: u16,
    pub lines: u32,
}

/// Counters of one assembly pass, folded into [`crate::IngestStats`] per batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AssembleCounts {
    pub partial_merges: u64,
    pub multiline_joins: u64,
    pub multiline_splits: u64,
}

/// Compiled multi-line rules, shared by every file.
#[derive(Debug)]
pub(crate) struct Rules {
    enabled: bool,
    python: bool,
    java: bool,
    go: bool,
    custom: Vec<(Option<Regex>, Regex)>,
    max_lines: u32,
    max_bytes: usize,
    max_line_bytes: usize,
    flush_timeout: Duration,
    /// True when a single line must be held open because a later line may join it.
    hold_singles: bool,
}

impl Rules {
    /// Compiles `config`; patterns were checked by `validate()`, so a bad one is skipped.
    pub(crate) fn new(config: &MultilineConfig, max_line_bytes: usize) -> Rules {
        let custom: Vec<(Option<Regex>, Regex)> = config
            .rules
            .iter()
            .filter_map(|r| {
                let start = match &r.start_pattern {
                    Some(p) => Some(Regex::new(p).ok()?),
                    None => None,
                };
                Some((start, Regex::new(&r.continue_pattern).ok()?))
            })
            .collect();
        let hold_singles =
            config.enabled && (config.java || custom.iter().any(|(start, _)| start.is_none()));
        Rules {
            enabled: config.enabled,
            python: config.python,
            java: config.java,
            go: config.go,
            custom,
            max_lines: u32::try_from(config.max_lines).unwrap_or(u32::MAX),
            max_bytes: config.max_bytes,
            max_line_bytes,
            flush_timeout: Duration::from_millis(config.flush_timeout_ms),
            hold_singles,
        }
    }
}

/// Message capacity a multi-line record (not a held single line) starts with: a short
/// Python traceback fits, longer ones double from there.
const MULTILINE_START_BYTES: usize = 512;

const PY_START: &[u8] = b"Traceback (most recent call last):";
const PY_CHAIN: [&[u8]; 2] = [
    b"During handling of the above exception, another exception occurred:",
    b"The above exception was the direct cause of the following exception:",
];

fn is_blank(l: &[u8]) -> bool {
    l.iter().all(|b| b.is_ascii_whitespace())
}

fn is_indented(l: &[u8]) -> bool {
    matches!(l.first(), Some(b' ' | b'\t'))
}

fn trim_start(l: &[u8]) -> &[u8] {
    let n = l.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &l[n..]
}

fn java_continuation(l: &[u8]) -> bool {
    // Most lines start with neither `C` nor whitespace: decided on one byte, no compare.
    match l.first() {
        Some(b'C') => return l.starts_with(b"Caused by: "),
        Some(b' ' | b'\t') => {}
        _ => return false,
    }
    let t = trim_start(l);
    (t.starts_with(b"at ") && memchr::memchr(b'(', t).is_some())
        || (t.starts_with(b"... ") && (t.ends_with(b" more") || t.ends_with(b"omitted")))
        || t.starts_with(b"Caused by: ")
        || t.starts_with(b"Suppressed: ")
}

fn go_start(l: &[u8]) -> bool {
    match l.first() {
        Some(b'p') => l.starts_with(b"panic: "),
        Some(b'f') => l.starts_with(b"fatal error: "),
        _ => false,
    }
}

/// `Traceback (most recent call last):`, checked on its first byte before comparing.
fn py_start(l: &[u8]) -> bool {
    l.first() == Some(&b'T') && l.starts_with(PY_START)
}

fn go_continuation(l: &[u8]) -> bool {
    if is_indented(l)
        || l.starts_with(b"goroutine ")
        || l.starts_with(b"created by ")
        || l.starts_with(b"[signal ")
        || l.starts_with(b"exit status ")
    {
        return true;
    }
    // A frame's function line: `pkg.fn(args)`, `main.(*T).m(...)`.
    match memchr::memchr(b'(', l) {
        Some(i) if i > 0 => {
            let name = &l[..i];
            l.ends_with(b")") && memchr::memchr(b' ', name).is_none() && name.contains(&b'.')
        }
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One line that a continuation (Java, user continue-through rule) may still join.
    Single,
    /// Python traceback, inside the frames.
    PyFrames,
    /// Python traceback after its exception line: only a chain header may follow.
    PyDone,
    /// After `During handling of ...`: blank lines, then `Traceback ...`.
    PyChain,
    /// Go panic.
    Go,
    /// User rule with a start pattern.
    Custom(usize),
}

#[derive(Debug)]
struct Blank {
    offset: u64,
    end: u64,
    time: Option<DateTime<Utc>>,
    message: Vec<u8>,
    flags: u16,
    lines: u32,
}

#[derive(Debug)]
struct Open {
    rec: Assembled,
    kind: Kind,
    /// Blank lines that join only if a continuation follows them.
    blanks: Vec<Blank>,
    updated: Instant,
    /// Log time of the latest line taken, for [`Assembler::close_stale`].
    last_time: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Partial {
    rec: Assembled,
    updated: Instant,
}

#[derive(Debug, Default)]
struct StreamState {
    partial: Option<Partial>,
    open: Option<Open>,
}

impl StreamState {
    fn min_start(&self) -> Option<u64> {
        let a = self.partial.as_ref().map(|p| p.rec.offset);
        let b = self.open.as_ref().map(|o| o.rec.offset);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Per-file assembly state: one slot per stream (stdout, stderr, unframed).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    streams: [StreamState; 3],
    pub counts: AssembleCounts,
}

fn slot(stream: Option<Stream>) -> usize {
    match stream {
        Some(Stream::Stdout) => 0,
        Some(Stream::Stderr) => 1,
        None => 2,
    }
}

/// A logical line: partial segments merged.
struct Logical<'a> {
    offset: u64,
    end: u64,
    time: Option<DateTime<Utc>>,
    stream: Option<Stream>,
    message: std::borrow::Cow<'a, [u8]>,
    flags: u16,
    lines: u32,
}

impl Assembler {
    /// True when nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.partial.is_none() && s.open.is_none())
    }

    /// Smallest start offset of a record still being assembled.
    pub(crate) fn open_start(&self) -> Option<u64> {
        self.streams.iter().filter_map(StreamState::min_start).min()
    }

    /// Feeds one physical line; finished records are pushed to `out`.
    pub(crate) fn push(
        &mut self,
        rules: &Rules,
        line: PhysLine<'_>,
        now: Instant,
        out: &mut Vec<Assembled>,
    ) {
        let s = slot(line.stream);
        let max = rules.max_line_bytes;
        let state = &mut self.streams[s];
        if line.partial || state.partial.is_some() {
            let p = state.partial.get_or_insert_with(|| Partial {
                rec: Assembled {
                    offset: line.offset,
                    end: line.end,
                    time: line.time,
                    stream: line.stream,
                    message: Vec::with_capacity(line.message.len().min(max) * 2),
                    flags: 0,
                    lines: 0,
                },
                updated: now,
            });
            if p.rec.lines > 0 {
                self.counts.partial_merges += 1;
            }
            append_capped(&mut p.rec, line.message, max);
            p.rec.flags |= line.flags;
            p.rec.end = line.end;
            p.rec.lines += 1;
            p.updated = now;
            if line.partial {
                return;
            }
            let Some(p) = state.partial.take() else {
                return;
            };
            let logical = Logical {
                offset: p.rec.offset,
                end: p.rec.end,
                time: p.rec.time,
                stream: p.rec.stream,
                message: std::borrow::Cow::Owned(p.rec.message),
                flags: p.rec.flags,
                lines: p.rec.lines,
            };
            self.logical(rules, s, logical, now, out);
            return;
        }
        let (message, extra) = if line.message.len() > max {
            (&line.message[..max], flags::TRUNCATED)
        } else {
            (line.message, 0)
        };
        let logical = Logical {
            offset: line.offset,
            end: line.end,
            time: line.time,
            stream: line.stream,
            message: std::borrow::Cow::Borrowed(message),
            flags: line.flags | extra,
            lines: 1,
        };
        self.logical(rules, s, logical, now, out);
    }

    /// Emits the open records (any stream) whose latest line is stamped more than the flush
    /// timeout before `time`, a stamp the runtime has written (so its clock has passed it): the
    /// flush timeout in log time, for a tailer catching up. Live, the wall-clock timeout of
    /// [`Assembler::flush`] emits them; a backfill reads faster than that clock, and a held
    /// line (every line is held when Java or continuation-only rules are on) waited for the
    /// next line of its stream, often a minute of log time later, and reached detection late.
    pub(crate) fn close_stale(
        &mut self,
        rules: &Rules,
        time: DateTime<Utc>,
        out: &mut Vec<Assembled>,
    ) {
        let timeout =
            chrono::TimeDelta::from_std(rules.flush_timeout).unwrap_or(chrono::TimeDelta::MAX);
        for state in &mut self.streams {
            let stale = state
                .open
                .as_ref()
                .and_then(|o| o.last_time)
                .is_some_and(|last| time.signed_duration_since(last) > timeout);
            if stale {
                close_open(state, out);
            }
        }
    }

    fn logical(
        &mut self,
        rules: &Rules,
        s: usize,
        line: Logical<'_>,
        now: Instant,
        out: &mut Vec<Assembled>,
    ) {
        if !rules.enabled {
            out.push(into_record(line));
            return;
        }
        let state = &mut self.streams[s];
        let counts = &mut self.counts;
        if let Some(open) = state.open.as_mut() {
            let msg: &[u8] = &line.message;
            let blank = is_blank(msg);
            // Does the line continue the open record?
            let joins = match open.kind {
                Kind::PyFrames => true,
                Kind::PyDone => PY_CHAIN.iter().any(|c| msg.starts_with(c)),
                Kind::PyChain => blank || py_start(msg),
                Kind::Go => go_continuation(msg),
                Kind::Single => {
                    (rules.java && java_continuation(msg))
                        || rules
                            .custom
                            .iter()
                            .any(|(start, cont)| start.is_none() && cont.is_match(msg))
                }
                Kind::Custom(i) => rules.custom.get(i).is_some_and(|(_, c)| c.is_match(msg)),
            };
            let tentative_blank = blank && matches!(open.kind, Kind::PyDone | Kind::Go) && !joins;
            if tentative_blank && open.blanks.len() < rules.max_lines as usize {
                open.blanks.push(Blank {
                    offset: line.offset,
                    end: line.end,
                    time: line.time,
                    message: line.message.into_owned(),
                    flags: line.flags,
                    lines: line.lines,
                });
                open.updated = now;
                open.last_time = line.time.or(open.last_time);
                return;
            }
            if joins {
                let blank_bytes: usize = open.blanks.iter().map(|b| b.message.len() + 1).sum();
                let blank_lines: u32 = open.blanks.iter().map(|b| b.lines).sum();
                let fits = open.rec.lines + blank_lines + line.lines <= rules.max_lines
                    && open.rec.message.len() + blank_bytes + 1 + msg.len() <= rules.max_bytes;
                if fits {
                    for b in open.blanks.drain(..) {
                        open.rec.message.push(b'\n');
                        open.rec.message.extend_from_slice(&b.message);
                        open.rec.flags |= b.flags;
                        open.rec.lines += b.lines;
                        open.rec.end = b.end;
                        counts.multiline_joins += 1;
                    }
                    open.rec.message.push(b'\n');
                    open.rec.message.extend_from_slice(msg);
                    open.rec.flags |= line.flags;
                    open.rec.lines += line.lines;
                    open.rec.end = line.end;
                    counts.multiline_joins += 1;
                    open.updated = now;
                    open.last_time = line.time.or(open.last_time);
                    open.kind = match open.kind {
                        Kind::PyFrames if !is_indented(msg) && !blank => Kind::PyDone,
                        Kind::PyDone => Kind::PyChain,
                        Kind::PyChain if !blank => Kind::PyFrames,
                        k => k,
                    };
                    return;
                }
                open.rec.flags |= flags::MULTILINE_SPLIT;
                counts.multiline_splits += 1;
            }
            close_open(state, out);
        }
        // Start a new record with this line.
        let msg: &[u8] = &line.message;
        let kind = if rules.python && py_start(msg) {
            Some(Kind::PyFrames)
        } else if rules.go && go_start(msg) {
            Some(Kind::Go)
        } else if let Some(i) = rules
            .custom
            .iter()
            .position(|(start, _)| start.as_ref().is_some_and(|r| r.is_match(msg)))
        {
            Some(Kind::Custom(i))
        } else if rules.hold_singles {
            Some(Kind::Single)
        } else {
            None
        };
        match kind {
            None => out.push(into_record(line)),
            Some(kind) => {
                // A trace grows line by line: room for a typical one up front saves the
                // reallocations of doubling from one line's size (4 per Python traceback).
                let room = if kind == Kind::Single {
                    0
                } else {
                    MULTILINE_START_BYTES
                };
                let last_time = line.time;
                state.open = Some(Open {
                    rec: into_record_with_room(line, room),
                    kind,
                    blanks: Vec::new(),
                    updated: now,
                    last_time,
                })
            }
        }
    }

    /// Emits records whose last line is older than the flush timeout (or everything when
    /// `all`, for a file that is finished).
    pub(crate) fn flush(
        &mut self,
        rules: &Rules,
        now: Instant,
        all: bool,
        out: &mut Vec<Assembled>,
    ) {
        for s in 0..self.streams.len() {
            let expired =
                |t: Instant| all || now.saturating_duration_since(t) >= rules.flush_timeout;
            if let Some(p) = self.streams[s].partial.as_ref()
                && expired(p.updated)
                && let Some(mut p) = self.streams[s].partial.take()
            {
                p.rec.flags |= flags::PARTIAL_UNTERMINATED;
                let logical = Logical {
                    offset: p.rec.offset,
                    end: p.rec.end,
                    time: p.rec.time,
                    stream: p.rec.stream,
                    message: std::borrow::Cow::Owned(p.rec.message),
                    flags: p.rec.flags,
                    lines: p.rec.lines,
                };
                self.logical(rules, s, logical, now, out);
            }
            let state = &mut self.streams[s];
            if state.open.as_ref().is_some_and(|o| expired(o.updated)) {
                close_open(state, out);
            }
        }
    }
}

/// Emits the open record, then any tentative blank lines as records of their own.
fn close_open(state: &mut StreamState, out: &mut Vec<Assembled>) {
    let Some(open) = state.open.take() else {
        return;
    };
    let stream = open.rec.stream;
    out.push(open.rec);
    for b in open.blanks {
        out.push(Assembled {
            offset: b.offset,
            end: b.end,
            time: b.time,
            stream,
            message: b.message,
            flags: b.flags,
            lines: b.lines,
        });
    }
}

fn into_record(line: Logical<'_>) -> Assembled {
    into_record_with_room(line, 0)
}

/// [`into_record`] with capacity for `room` more message bytes.
fn into_record_with_room(line: Logical<'_>, room: usize) -> Assembled {
    let message = match line.message {
        std::borrow::Cow::Borrowed(m) => {
            let mut v = Vec::with_capacity(m.len() + room);
            v.extend_from_slice(m);
            v
        }
        std::borrow::Cow::Owned(mut v) => {
            v.reserve(room);
            v
        }
    };
    Assembled {
        offset: line.offset,
        end: line.end,
        time: line.time,
        stream: line.stream,
        message,
        flags: line.flags,
        lines: line.lines,
    }
}

fn append_capped(rec: &mut Assembled, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(rec.message.len());
    if bytes.len() > room {
        rec.message.extend_from_slice(&bytes[..room]);
        rec.flags |= flags::TRUNCATED;
    } else {
        rec.message.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MultilineRule;

    /// Feeds `(stream, partial, message)` lines, one byte range per line, then flushes all.
    fn run(cfg: &MultilineConfig, lines: &[(Option<Stream>, bool, &str)]) -> Vec<Assembled> {
        run_max(cfg, 1024, lines)
    }

    fn run_max(
        cfg: &MultilineConfig,
        max_line_bytes: usize,
        lines: &[(Option<Stream>, bool, &str)],
    ) -> Vec<Assembled> {
        let rules = Rules::new(cfg, max_line_bytes);
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        let now = Instant::now();
        let mut offset = 0u64;
        for (stream, partial, msg) in lines {
            let end = offset + msg.len() as u64 + 1;
            asm.push(
                &rules,
                PhysLine {
                    offset,
                    end,
                    time: None,
                    stream: *stream,
                    partial: *partial,
                    message: msg.as_bytes(),
                    flags: 0,
                },
                now,
                &mut out,
            );
            offset = end;
        }
        asm.flush(&rules, now, true, &mut out);
        assert!(asm.is_empty());
        out
    }

    fn messages(out: &[Assembled]) -> Vec<String> {
        out.iter()
            .map(|a| String::from_utf8_lossy(&a.message).into_owned())
            .collect()
    }

    const E: Option<Stream> = Some(Stream::Stderr);
    const O: Option<Stream> = Some(Stream::Stdout);

    #[test]
    fn python_chained_traceback_is_one_record() {
        let lines = [
            (O, false, "INFO started"),
            (E, false, "Traceback (most recent call last):"),
            (E, false, "  File \"app.py\", line 3, in <module>"),
            (E, false, "    d['x']"),
            (E, false, "KeyError: 'x'"),
            (E, false, ""),
            (
                E,
                false,
                "During handling of the above exception, another exception occurred:",
            ),
            (E, false, ""),
            (E, false, "Traceback (most recent call last):"),
            (E, false, "  File \"app.py\", line 5, in <module>"),
            (E, false, "    raise ValueError('bad')"),
            (E, false, "ValueError: bad"),
            (E, false, ""),
            (E, false, "INFO next"),
            (O, false, "INFO after"),
        ];
        let out = run(&MultilineConfig::default(), &lines);
        let m = messages(&out);
        assert_eq!(m.len(), 5, "{m:#?}");
        assert!(m.iter().any(|s| s.starts_with("Traceback")
            && s.ends_with("ValueError: bad")
            && s.lines().count() == 11));
        assert!(
            m.contains(&String::new()),
            "the trailing blank line is its own record"
        );
        let tb = out
            .iter()
            .find(|a| a.lines == 11)
            .map(|a| (a.offset, a.end));
        assert_eq!(
            tb,
            Some((
                13,
                13 + lines[1..12]
                    .iter()
                    .map(|l| l.2.len() as u64 + 1)
                    .sum::<u64>()
            ))
        );
        let total: u32 = out.iter().map(|a| a.lines).sum();
        assert_eq!(
            total as usize,
            lines.len(),
            "every line is in exactly one record"
        );
    }

    #[test]
    fn java_and_go_traces_join_and_plain_lines_pass_one_to_one() {
        let lines = [
            (E, false, "2020 ERROR request failed"),
            (E, false, "java.lang.IllegalStateException: boom"),
            (E, false, "\tat com.x.A.f(A.java:10)"),
            (E, false, "Caused by: java.io.IOException: io"),
            (E, false, "\tat com.x.B.g(B.java:3)"),
            (E, false, "\t... 5 more"),
            (
                E,
                false,
                "panic: runtime error: index out of range [5] with length 3",
            ),
            (E, false, ""),
            (E, false, "goroutine 1 [running]:"),
            (E, false, "main.main()"),
            (E, false, "\t/app/main.go:8 +0x1d"),
            (E, false, "exit status 2"),
            (E, false, "plain one"),
            (E, false, "  at the moment nothing"),
        ];
        let m = messages(&run(&MultilineConfig::default(), &lines));
        assert_eq!(m.len(), 5, "{m:#?}");
        assert_eq!(m[0], "2020 ERROR request failed");
        assert!(m[1].starts_with("java.lang.") && m[1].ends_with("... 5 more"));
        assert!(m[2].starts_with("panic:") && m[2].ends_with("exit status 2"));
        assert_eq!(m[3], "plain one");
        assert_eq!(m[4], "  at the moment nothing");
    }

    #[test]
    fn partials_merge_per_stream_when_interleaved() {
        let lines = [
            (O, true, "out-a "),
            (E, true, "err-a "),
            (O, false, "out-b"),
            (E, true, "err-b "),
            (E, false, "err-c"),
        ];
        let cfg = MultilineConfig {
            enabled: false,
            ..MultilineConfig::default()
        };
        let out = run(&cfg, &lines);
        let m = messages(&out);
        assert_eq!(m, vec!["out-a out-b", "err-a err-b err-c"]);
        assert_eq!((out[0].offset, out[0].lines), (0, 2));
        assert_eq!((out[1].offset, out[1].lines), (7, 3));
    }

    #[test]
    fn limits_truncate_and_split_and_unterminated_partials_are_flagged() -> Result<(), String> {
        let long = "x".repeat(100);
        let cfg = MultilineConfig {
            max_lines: 3,
            ..MultilineConfig::default()
        };
        let lines = [
            (O, false, long.as_str()),
            (E, false, "Traceback (most recent call last):"),
            (E, false, "  a"),
            (E, false, "  b"),
            (E, false, "  c"),
            (O, true, "dangling"),
        ];
        let out = run_max(&cfg, 64, &lines);
        let first = out
            .iter()
            .find(|a| a.offset == 0)
            .ok_or("no first record")?;
        assert_eq!(first.message.len(), 64);
        assert_ne!(first.flags & flags::TRUNCATED, 0);
        let split: Vec<&Assembled> = out
            .iter()
            .filter(|a| a.flags & flags::MULTILINE_SPLIT != 0)
            .collect();
        assert_eq!(split.len(), 1);
        assert_eq!(split[0].lines, 3);
        assert!(
            out.iter()
                .any(|a| a.flags & flags::PARTIAL_UNTERMINATED != 0 && a.message == b"dangling")
        );
        let total: u32 = out.iter().map(|a| a.lines).sum();
        assert_eq!(total as usize, lines.len());
        Ok(())
    }

    #[test]
    fn user_rules_start_and_continue() {
        let cfg = MultilineConfig {
            java: false,
            rules: vec![MultilineRule {
                start_pattern: Some("^BEGIN".into()),
                continue_pattern: "^\\|".into(),
            }],
            ..MultilineConfig::default()
        };
        let lines = [
            (None, false, "BEGIN report"),
            (None, false, "| row 1"),
            (None, false, "| row 2"),
            (None, false, "after"),
            (None, false, "| orphan"),
        ];
        let m = messages(&run(&cfg, &lines));
        assert_eq!(
            m,
            vec!["BEGIN report\n| row 1\n| row 2", "after", "| orphan"]
        );
    }

    #[test]
    fn flush_timeout_emits_an_open_record() {
        let cfg = MultilineConfig::default();
        let rules = Rules::new(&cfg, 1024);
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        let t0 = Instant::now();
        let line = PhysLine {
            offset: 0,
            end: 4,
            time: None,
            stream: O,
            partial: false,
            message: b"abc",
            flags: 0,
        };
        asm.push(&rules, line, t0, &mut out);
        assert!(out.is_empty(), "held for a possible Java continuation");
        assert_eq!(asm.open_start(), Some(0));
        asm.flush(&rules, t0 + Duration::from_millis(10), false, &mut out);
        assert!(out.is_empty());
        asm.flush(
            &rules,
            t0 + Duration::from_millis(cfg.flush_timeout_ms),
            false,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(asm.is_empty());
    }

    #[test]
    fn close_stale_emits_held_records_whose_last_line_is_past_the_timeout() {
        // Default rules hold every line for a possible Java continuation; a backfill reads
        // faster than the wall clock, so the tailer closes holds in log time.
        let cfg = MultilineConfig::default();
        let rules = Rules::new(&cfg, 1024);
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        let now = Instant::now();
        let t0: DateTime<Utc> = "2026-11-30T08:00:00Z".parse().expect("a valid time");
        let at = |n: i64| t0 + chrono::TimeDelta::milliseconds(n);
        let mut offset = 0;
        for (time, stream, msg) in [
            (at(0), E, "java.lang.IllegalStateException: boom"),
            (at(20), O, "GET /health 200"),
            (at(40), E, "\tat com.example.Main.run(Main.java:7)"),
        ] {
            let end = offset + msg.len() as u64 + 1;
            let line = PhysLine {
                offset,
                end,
                time: Some(time),
                stream,
                partial: false,
                message: msg.as_bytes(),
                flags: 0,
            };
            asm.push(&rules, line, now, &mut out);
            offset = end;
        }
        assert!(out.is_empty(), "both streams hold their record");
        // 520 ms after the stdout line, 500 after the trace's last line: only the first is
        // past the timeout (500 ms by default).
        asm.close_stale(&rules, at(540), &mut out);
        assert_eq!(messages(&out), ["GET /health 200"]);
        asm.close_stale(&rules, at(541), &mut out);
        assert_eq!(
            messages(&out),
            [
                "GET /health 200",
                "java.lang.IllegalStateException: boom\n\tat com.example.Main.run(Main.java:7)",
            ]
        );
        assert!(asm.is_empty());
    }
}
