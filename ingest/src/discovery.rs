//! Finding the files to tail: the kubelet's `/var/log/pods` tree (live `<n>.log` and rotated
//! `<n>.log.<timestamp>[.gz]`), plus plain glob patterns, and computing each file's identity.
//!
//! A file's id is xxh3 of its directory key (`<namespace>_<pod>_<uid>/<container>` under the
//! pods dir, the parent path otherwise) and its *fingerprint*: its first line, or its first
//! [`FINGERPRINT_MAX_BYTES`] when that line is longer. It depends only on content and place,
//! so `0.log`, its rename `0.log.<ts>` and the compressed `0.log.<ts>.gz` share one id (the
//! fingerprint of a `.gz` is taken from its decompressed bytes), while a reused inode with new
//! content (a new first line, whose CRI timestamp has nanoseconds) gets a new one.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Fingerprint length cap: a first line longer than 1 KiB is identified by its first 1 KiB.
pub const FINGERPRINT_MAX_BYTES: usize = 1024;

/// Whether a file is the one being written or an older, finished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The live file (`0.log`, or a plain include).
    Live,
    /// A rotated file: renamed or compressed; nothing is appended to it any more (modulo a
    /// writer that has not yet reopened, which the tailer covers by releasing it only after it
    /// has been quiet for a moment).
    Rotated,
}

/// Kubernetes metadata carried by a pod-log path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PathMeta {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
}

/// One file found by a scan.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    /// Files of one group are read strictly one after the other, oldest first: the live
    /// `<n>.log` of one container instance and its rotated files (a container restart starts
    /// `<n+1>.log`, a new group, while the kubelet keeps the old instance's file).
    pub group: PathBuf,
    /// Directory key mixed into the file id.
    pub dir_key: String,
    pub role: Role,
    pub gz: bool,
    /// Order inside the group: (restart count, rotated before live, rotation suffix).
    pub order: (u64, u8, String),
    pub meta: Option<PathMeta>,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Splits `<namespace>_<pod>_<uid>`. Namespaces and pod names are DNS labels without `_`;
/// should a name hold one anyway, the first part is the namespace and the last the uid.
pub(crate) fn parse_pod_dir(name: &str) -> Option<(String, String, String)> {
    let first = name.find('_')?;
    let last = name.rfind('_')?;
    if first == last || first == 0 || last + 1 == name.len() {
        return None;
    }
    Some((
        name[..first].to_string(),
        name[first + 1..last].to_string(),
        name[last + 1..].to_string(),
    ))
}

/// Classifies a file name in a container dir: `(restart count, role, suffix, gz)`.
pub(crate) fn parse_log_name(name: &str) -> Option<(u64, Role, String, bool)> {
    if name.ends_with(".tmp") {
        return None;
    }
    let dot = name.find(".log")?;
    let n: u64 = name[..dot].parse().ok()?;
    let rest = &name[dot + 4..];
    if rest.is_empty() {
        return Some((n, Role::Live, String::new(), false));
    }
    let suffix = rest.strip_prefix('.')?;
    let (suffix, gz) = match suffix.strip_suffix(".gz") {
        Some(s) => (s, true),
        None => (suffix, false),
    };
    if suffix.is_empty() {
        return None;
    }
    Some((n, Role::Rotated, suffix.to_string(), gz))
}

fn stat_candidate(
    path: PathBuf,
    group: PathBuf,
    dir_key: String,
    role: Role,
    gz: bool,
    order: (u64, u8, String),
    meta: Option<PathMeta>,
) -> Option<Candidate> {
    let md = fs::metadata(&path).ok()?;
    if !md.is_file() {
        return None;
    }
    Some(Candidate {
        path,
        group,
        dir_key,
        role,
        gz,
        order,
        meta,
        dev: md.dev(),
        ino: md.ino(),
        size: md.len(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
    })
}

/// Scans the pods dir: every `<pod dir>/<container>/<log file>`.
pub(crate) fn scan_pods(root: &Path, out: &mut Vec<Candidate>) -> io::Result<()> {
    for pod in fs::read_dir(root)? {
        let Ok(pod) = pod else { continue };
        let pod_name = pod.file_name().to_string_lossy().into_owned();
        let Some((namespace, pod_n, uid)) = parse_pod_dir(&pod_name) else {
            continue;
        };
        let Ok(containers) = fs::read_dir(pod.path()) else {
            continue;
        };
        for container in containers {
            let Ok(container) = container else { continue };
            let cname = container.file_name().to_string_lossy().into_owned();
            let cdir = container.path();
            let Ok(files) = fs::read_dir(&cdir) else {
                continue;
            };
            let meta = PathMeta {
                namespace: namespace.clone(),
                pod: pod_n.clone(),
                uid: uid.clone(),
                container: cname.clone(),
            };
            let dir_key = format!("{pod_name}/{cname}");
            for file in files {
                let Ok(file) = file else { continue };
                let fname = file.file_name().to_string_lossy().into_owned();
                let Some((n, role, suffix, gz)) = parse_log_name(&fname) else {
                    continue;
                };
                let rank = if role == Role::Rotated { 0 } else { 1 };
                if let Some(c) = stat_candidate(
                    file.path(),
                    cdir.join(format!("{n}.log")),
                    dir_key.clone(),
                    role,
                    gz,
                    (n, rank, suffix),
                    Some(meta.clone()),
                ) {
                    out.push(c);
                }
            }
        }
    }
    Ok(())
}

/// Scans one absolute glob pattern (`*` and `?` within a component).
pub(crate) fn scan_glob(pattern: &str, out: &mut Vec<Candidate>) {
    let mut paths = Vec::new();
    glob_paths(pattern, &mut paths);
    for path in paths {
        let dir_key = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let gz = path.extension().is_some_and(|e| e == "gz");
        let role = if gz { Role::Rotated } else { Role::Live };
        if let Some(c) = stat_candidate(
            path.clone(),
            path,
            dir_key,
            role,
            gz,
            (0, 1, String::new()),
            None,
        ) {
            out.push(c);
        }
    }
}

/// Expands an absolute glob into existing paths.
pub(crate) fn glob_paths(pattern: &str, out: &mut Vec<PathBuf>) {
    let mut current = vec![PathBuf::from("/")];
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            if !part.contains(['*', '?']) {
                let p = dir.join(part);
                if p.exists() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| wildcard_match(part.as_bytes(), e.file_name().as_encoded_bytes()))
                .map(|e| e.path())
                .collect();
            names.sort();
            next.extend(names);
        }
        if !last {
            next.retain(|p| p.is_dir());
        }
        current = next;
    }
    out.extend(current.into_iter().filter(|p| p.is_file()));
}

/// `*` matches any run of bytes, `?` one byte; everything else literally.
pub(crate) fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Reads the fingerprint bytes of a file: its first line including the `\n`, capped at
/// [`FINGERPRINT_MAX_BYTES`]. `None` while the first line is still incomplete, unless the file
/// is `finished` (rotated), when whatever it holds is the fingerprint. Empty files have none.
pub(crate) fn fingerprint_bytes(
    path: &Path,
    gz: bool,
    finished: bool,
) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut buf = Vec::with_capacity(FINGERPRINT_MAX_BYTES);
    if gz {
        let dec = MultiGzDecoder::new(file);
        match dec.take(FINGERPRINT_MAX_BYTES as u64).read_to_end(&mut buf) {
            Ok(_) => {}
            // A truncated gzip (still being written) is not ready yet.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        file.take(FINGERPRINT_MAX_BYTES as u64)
            .read_to_end(&mut buf)?;
    }
    Ok(fingerprint_of(&buf, finished || gz).map(<[u8]>::to_vec))
}

/// The fingerprint within the first bytes of a file (see [`fingerprint_bytes`]).
pub(crate) fn fingerprint_of(head: &[u8], finished: bool) -> Option<&[u8]> {
    if let Some(i) = memchr::memchr(b'\n', head) {
        return Some(&head[..=i]);
    }
    if head.len() >= FINGERPRINT_MAX_BYTES || (finished && !head.is_empty()) {
        return Some(&head[..head.len().min(FINGERPRINT_MAX_BYTES)]);
    }
    None
}

/// The file id of a fingerprint in a directory.
pub(crate) fn file_id(dir_key: &str, fingerprint: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(dir_key.as_bytes());
    h.update(&[0]);
    h.update(fingerprint);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_pod_dirs_parse() {
        assert_eq!(
            parse_log_name("0.log"),
            Some((0, Role::Live, String::new(), false))
        );
        assert_eq!(
            parse_log_name("3.log.20261204-163000.gz"),
            Some((3, Role::Rotated, "20261204-163000".into(), true))
        );
        assert_eq!(parse_log_name("0.log.20261204-163000.gz.tmp"), None);
        assert_eq!(parse_log_name("x.log"), None);
        assert_eq!(parse_log_name("0.log."), None);
        assert_eq!(
            parse_pod_dir("shop_api-7d9f_0b6c-11"),
            Some(("shop".into(), "api-7d9f".into(), "0b6c-11".into()))
        );
        assert_eq!(parse_pod_dir("nounderscore"), None);
        assert_eq!(parse_pod_dir("a_b"), None);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.log", b"app.log"));
        assert!(wildcard_match(b"a?p*", b"app.log.1"));
        assert!(!wildcard_match(b"*.log", b"app.log.1"));
        assert!(wildcard_match(b"*", b""));
        assert!(!wildcard_match(b"?", b""));
    }

    #[test]
    fn fingerprint_waits_for_the_first_line() {
        assert_eq!(fingerprint_of(b"abc", false), None);
        assert_eq!(fingerprint_of(b"abc", true), Some(&b"abc"[..]));
        assert_eq!(fingerprint_of(b"ab\ncd", false), Some(&b"ab\n"[..]));
        assert_eq!(fingerprint_of(b"", true), None);
        assert_ne!(file_id("a/b", b"x\n"), file_id("a/c", b"x\n"));
    }
}
