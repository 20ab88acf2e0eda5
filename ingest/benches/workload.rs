//! A deterministic, realistic CRI pod log for the benchmark and the RSS example: JSON access
//! logs on stdout (70 % of records), text app logs on stderr (26 %), long JSON lines split by
//! the runtime into 16 KiB `P` segments (0.3 %), and Python tracebacks (3.7 %).

use std::io::{BufWriter, Write};
use std::path::Path;

/// The runtime's partial-line split size (containerd and docker both use 16 KiB).
const RUNTIME_SPLIT_BYTES: usize = 16 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and fast; quality is irrelevant here.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub bytes: u64,
    pub lines: u64,
    /// Records a correct tailer yields (partials merged, tracebacks joined).
    pub records: u64,
}

fn ts(seq: u64) -> String {
    format!(
        "2026-12-04T{:02}:{:02}:{:02}.{:09}Z",
        (seq / 3_600_000_000) % 24,
        (seq / 60_000_000) % 60,
        (seq / 1_000_000) % 60,
        (seq % 1_000_000) * 1000 + 7
    )
}

/// Writes about `target_bytes` of CRI lines to `path`.
pub fn write_cri_log(path: &Path, target_bytes: u64) -> std::io::Result<Written> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut w = Written {
        bytes: 0,
        lines: 0,
        records: 0,
    };
    let mut seq = 0u64;
    let mut line = String::with_capacity(64 * 1024);
    let paths = [
        "/api/v1/items",
        "/api/v1/orders",
        "/healthz",
        "/api/v1/chat/completions",
        "/login",
    ];
    while w.bytes < target_bytes {
        seq += 1;
        let roll = rng.below(1000);
        line.clear();
        if roll < 700 {
            let status = [200, 200, 200, 201, 204, 302, 404, 500][rng.below(8) as usize];
            line.push_str(&format!(
                "{} stdout F {{\"timestamp\":\"{}\",\"level\":\"info\",\"logger\":\"uvicorn.access\",\"client_addr\":\"10.{}.{}.{}:{}\",\"method\":\"GET\",\"path\":\"{}/{}\",\"status_code\":{},\"duration_ms\":{}.{},\"trace_id\":\"{:032x}\"}}\n",
                ts(seq), ts(seq), rng.below(256), rng.below(256), rng.below(256), 1024 + rng.below(60000),
                paths[rng.below(5) as usize], rng.below(100_000), status, rng.below(900), rng.below(10),
                u128::from(rng.next()) << 64 | u128::from(rng.next())
            ));
            w.lines += 1;
            w.records += 1;
        } else if roll < 960 {
            line.push_str(&format!(
                "{} stderr F 2026-12-04 16:30:{:02},{:03} INFO app.worker: processed job {} for tenant t-{} in {} ms\n",
                ts(seq), rng.below(60), rng.below(1000), rng.next() % 10_000_000, rng.below(500), rng.below(5000)
            ));
            w.lines += 1;
            w.records += 1;
        } else if roll < 963 {
            // A long JSON line the runtime split into 16 KiB partials (rare, as in real logs).
            let len = RUNTIME_SPLIT_BYTES + rng.below(2 * RUNTIME_SPLIT_BYTES as u64) as usize;
            let body: String =
                std::iter::repeat_n("{\"k\":\"vvvvvvvvvvvvvvvv\"},", len / 24 + 1).collect();
            let body = &body[..len];
            let mut rest = body;
            while rest.len() > RUNTIME_SPLIT_BYTES {
                let (seg, tail) = rest.split_at(RUNTIME_SPLIT_BYTES);
                line.push_str(&format!("{} stdout P {seg}\n", ts(seq)));
                w.lines += 1;
                rest = tail;
            }
            line.push_str(&format!("{} stdout F {rest}\n", ts(seq)));
            w.lines += 1;
            w.records += 1;
        } else {
            for l in [
                "Traceback (most recent call last):",
                "  File \"/app/service/handlers.py\", line 88, in create_order",
                "    result = await db.execute(query)",
                "  File \"/usr/lib/python3.12/site-packages/asyncpg/pool.py\", line 1013, in execute",
                "    return await con.execute(query, *args)",
                "asyncpg.exceptions.ConnectionDoesNotExistError: connection was closed in the middle of operation",
            ] {
                line.push_str(&format!("{} stderr F {l}\n", ts(seq)));
                w.lines += 1;
            }
            w.records += 1;
        }
        out.write_all(line.as_bytes())?;
        w.bytes += line.len() as u64;
    }
    out.flush()?;
    Ok(w)
}

/// On-CPU time of this process's thread named `name`, from the scheduler's nanosecond
/// accounting (`/proc/self/task/<tid>/schedstat`, first field), so a figure does not depend
/// on how busy the machine's other cores are. `None` off Linux or when no such thread runs.
#[allow(dead_code)]
pub fn thread_cpu(name: &str) -> Option<std::time::Duration> {
    thread_stat(name).map(|s| s.cpu)
}

/// Scheduler figures of one thread.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub struct ThreadStat {
    /// On-CPU time.
    pub cpu: std::time::Duration,
    /// Times the thread blocked (futex waits, reads that slept).
    pub voluntary_switches: u64,
    /// Times the scheduler preempted it.
    pub involuntary_switches: u64,
    /// Page faults served without I/O (first touches of fresh memory).
    pub minor_faults: u64,
}

/// [`ThreadStat`] of this process's thread named `name`; `None` off Linux or when no such
/// thread runs.
#[allow(dead_code)]
pub fn thread_stat(name: &str) -> Option<ThreadStat> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() == name {
            return task_stat(&dir);
        }
    }
    None
}

/// [`ThreadStat`] of this process's main thread.
#[allow(dead_code)]
pub fn main_thread_stat() -> Option<ThreadStat> {
    task_stat(&std::path::Path::new("/proc/self/task").join(std::process::id().to_string()))
}

fn task_stat(dir: &std::path::Path) -> Option<ThreadStat> {
    let schedstat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
    let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let field = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .parse()
            .ok()
    };
    // `stat`: the 10th field, counted after the parenthesised command name.
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let minor_faults = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()?;
    Some(ThreadStat {
        cpu: std::time::Duration::from_nanos(ns),
        voluntary_switches: field("voluntary_ctxt_switches:")?,
        involuntary_switches: field("nonvoluntary_ctxt_switches:")?,
        minor_faults,
    })
}
