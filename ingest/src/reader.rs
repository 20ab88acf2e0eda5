//! Reading one file as a sequence of newline-terminated physical lines with their byte
//! offsets, from a plain or gzip-compressed file, with a maximum line length.
//!
//! Offsets are always in the uncompressed content, so a line has the same offset whether it
//! is read from `0.log`, `0.log.<ts>` or `0.log.<ts>.gz`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::MultiGzDecoder;

/// Bytes of framing a physical line may carry beyond `max_line_bytes` (CRI header, docker JSON
/// keys) before the reader truncates it; 4 KiB is ample for both.
pub(crate) const MAX_FRAMING_BYTES: usize = 4096;

#[derive(Debug)]
enum Src {
    Plain(File),
    Gz(Box<MultiGzDecoder<File>>),
}

/// One physical line handed to the caller.
#[derive(Debug)]
pub(crate) struct RawLine<'a> {
    pub offset: u64,
    pub end: u64,
    /// Without the `\n`; truncated to the physical maximum when `truncated`.
    pub bytes: &'a [u8],
    pub truncated: bool,
}

/// Outcome of one [`LineReader::read_lines`] call.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReadOutcome {
    pub bytes: u64,
    pub lines: u64,
    /// The source returned end-of-file.
    pub eof: bool,
}

#[derive(Debug)]
pub(crate) struct LineReader {
    src: Src,
    /// Read buffer. Its length is what was ever zero-filled; only `buf[..filled]` holds file
    /// data. Keeping it initialised means a read does not clear 64 KiB first (a memset was
    /// 3% of the tail profile).
    buf: Vec<u8>,
    /// End of the file data in `buf`.
    filled: usize,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// Where the newline search resumes, so a long partial line is never rescanned.
    scan: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    chunk: usize,
    max_phys: usize,
    /// Head of an over-long line being discarded: (start offset, head bytes).
    long: Option<(u64, Vec<u8>)>,
}

impl LineReader {
    /// Opens `file` positioned at `offset` of its (uncompressed) content.
    pub(crate) fn new(
        mut file: File,
        gz: bool,
        offset: u64,
        chunk: usize,
        max_line_bytes: usize,
    ) -> io::Result<LineReader> {
        let src = if gz {
            let mut dec = MultiGzDecoder::new(file);
            let skipped = io::copy(&mut (&mut dec).take(offset), &mut io::sink())?;
            if skipped < offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("compressed file holds {skipped} bytes, checkpoint is at {offset}"),
                ));
            }
            Src::Gz(Box::new(dec))
        } else {
            file.seek(SeekFrom::Start(offset))?;
            Src::Plain(file)
        };
        Ok(LineReader {
            src,
            buf: Vec::new(),
            filled: 0,
            start: 0,
            scan: 0,
            offset,
            chunk,
            max_phys: max_line_bytes + MAX_FRAMING_BYTES,
            long: None,
        })
    }

    /// Offset just past the last line handed out: where reading would resume.
    pub(crate) fn position(&self) -> u64 {
        match &self.long {
            Some((start, _)) => *start,
            None => self.offset,
        }
    }

    /// Bytes read past the last complete line (an unterminated tail).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.filled - self.start + self.long.as_ref().map_or(0, |(_, h)| h.len())
    }

    /// Size of the underlying plain file, for truncation checks; `None` for gzip.
    pub(crate) fn file_len(&self) -> io::Result<Option<u64>> {
        match &self.src {
            Src::Plain(f) => Ok(Some(f.metadata()?.len())),
            Src::Gz(_) => Ok(None),
        }
    }

    /// Fills `buf` from offset 0 of the underlying plain file without moving the read
    /// position. False when the file is shorter than `buf` or gzip.
    pub(crate) fn read_head(&self, buf: &mut [u8]) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        match &self.src {
            Src::Plain(f) => match f.read_exact_at(buf, 0) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
                Err(e) => Err(e),
            },
            Src::Gz(_) => Ok(false),
        }
    }

    /// Time since the underlying plain file was last modified; `None` for gzip or when the
    /// clock or file system cannot tell.
    pub(crate) fn modified_age(&self) -> Option<std::time::Duration> {
        match &self.src {
            Src::Plain(f) => f.metadata().ok()?.modified().ok()?.elapsed().ok(),
            Src::Gz(_) => None,
        }
    }

    /// Reads up to about `budget` bytes and calls `f` for every complete line, at most
    /// `line_budget` of them (the rest stays buffered). `f` returns whether it took the line:
    /// `false` leaves that line and everything after it for the next call and ends this one
    /// (not at EOF). When `drain` is set and the source is at EOF, an unterminated last line is
    /// handed out too.
    pub(crate) fn read_lines(
        &mut self,
        budget: usize,
        line_budget: usize,
        drain: bool,
        mut f: impl FnMut(RawLine<'_>) -> bool,
    ) -> io::Result<ReadOutcome> {
        let mut out = ReadOutcome::default();
        loop {
            // Cut every complete line already buffered.
            while let Some(i) = memchr::memchr(b'\n', &self.buf[self.scan..self.filled]) {
                if out.lines as usize >= line_budget {
                    return Ok(out);
                }
                let nl = self.scan + i;
                let end = self.offset + (nl + 1 - self.start) as u64;
                let long = self.long.take();
                let taken = match &long {
                    Some((start, head)) => f(RawLine {
                        offset: *start,
                        end,
                        bytes: head,
                        truncated: true,
                    }),
                    None => f(RawLine {
                        offset: self.offset,
                        end,
                        bytes: &self.buf[self.start..nl],
                        truncated: false,
                    }),
                };
                if !taken {
                    // `scan` still points before this newline: the next call finds it again.
                    self.long = long;
                    return Ok(out);
                }
                out.lines += 1;
                self.offset = end;
                self.start = nl + 1;
                self.scan = self.start;
            }
            self.scan = self.filled;
            // An over-long line: keep its head, drop the rest until its newline.
            let pending = self.filled - self.start;
            if self.long.is_none() && pending > self.max_phys {
                let head = self.buf[self.start..self.start + self.max_phys].to_vec();
                self.long = Some((self.offset, head));
            }
            if self.long.is_some() {
                self.offset += (self.filled - self.start) as u64;
                self.filled = 0;
                self.start = 0;
                self.scan = 0;
            }
            if out.bytes as usize >= budget {
                return Ok(out);
            }
            // Compact, then read another chunk.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.scan -= self.start;
                self.start = 0;
            }
            let len = self.filled;
            if self.buf.len() < len + self.chunk {
                self.buf.resize(len + self.chunk, 0);
            }
            let n = match &mut self.src {
                Src::Plain(file) => file.read(&mut self.buf[len..len + self.chunk]),
                Src::Gz(dec) => dec.read(&mut self.buf[len..len + self.chunk]),
            }?;
            self.filled = len + n;
            out.bytes += n as u64;
            if n == 0 {
                out.eof = true;
                if drain && !self.drain_tail(&mut f, &mut out) {
                    // The unterminated last line was left: the file is not read to its end.
                    out.eof = false;
                    return Ok(out);
                }
                // Release the chunk-sized buffer of an idle file.
                if self.filled == 0 {
                    self.buf = Vec::new();
                }
                return Ok(out);
            }
        }
    }

    /// Hands out the unterminated last line, if any; false when `f` left it.
    fn drain_tail(
        &mut self,
        f: &mut impl FnMut(RawLine<'_>) -> bool,
        out: &mut ReadOutcome,
    ) -> bool {
        let tail_len = self.filled - self.start;
        let end = self.offset + tail_len as u64;
        if let Some((start, head)) = self.long.take() {
            let line = RawLine {
                offset: start,
                end,
                bytes: &head,
                truncated: true,
            };
            if !f(line) {
                self.long = Some((start, head));
                return false;
            }
        } else if tail_len > 0 {
            let line = RawLine {
                offset: self.offset,
                end,
                bytes: &self.buf[self.start..self.filled],
                truncated: false,
            };
            if !f(line) {
                return false;
            }
        } else {
            return true;
        }
        self.offset = end;
        out.lines += 1;
        self.filled = 0;
        self.start = 0;
        self.scan = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Line = (u64, u64, Vec<u8>, bool);

    fn collect(r: &mut LineReader, drain: bool) -> io::Result<Vec<Line>> {
        let mut v = Vec::new();
        r.read_lines(usize::MAX, usize::MAX, drain, |l| {
            v.push((l.offset, l.end, l.bytes.to_vec(), l.truncated));
            true
        })?;
        Ok(v)
    }

    #[test]
    fn cuts_lines_resumes_and_truncates_long_ones() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f.log");
        let mut w = File::create(&p)?;
        let long = vec![b'x'; 20 + MAX_FRAMING_BYTES + 5000];
        w.write_all(b"ab\n\ncd")?;
        let mut r = LineReader::new(File::open(&p)?, false, 0, 4096, 16)?;
        let v = collect(&mut r, false)?;
        assert_eq!(
            v,
            vec![(0, 3, b"ab".to_vec(), false), (3, 4, vec![], false)]
        );
        assert_eq!(r.position(), 4);
        w.write_all(b"e\n")?;
        w.write_all(&long)?;
        w.write_all(b"\nz\n")?;
        let v = collect(&mut r, false)?;
        assert_eq!(v[0], (4, 8, b"cde".to_vec(), false));
        assert_eq!(v[1].0, 8);
        assert_eq!(v[1].1, 8 + long.len() as u64 + 1);
        assert_eq!(v[1].2.len(), 16 + MAX_FRAMING_BYTES);
        assert!(v[1].3);
        assert_eq!(v[2].2, b"z".to_vec());
        w.write_all(b"tail")?;
        assert!(collect(&mut r, false)?.is_empty());
        let v = collect(&mut r, true)?;
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].2, b"tail".to_vec());
        Ok(())
    }

    #[test]
    fn gzip_offsets_match_the_plain_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f.log.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&p)?, flate2::Compression::fast());
        enc.write_all(b"one\ntwo\nthree\n")?;
        enc.finish()?;
        let mut r = LineReader::new(File::open(&p)?, true, 4, 4096, 1024)?;
        let v = collect(&mut r, true)?;
        assert_eq!(
            v,
            vec![
                (4, 8, b"two".to_vec(), false),
                (8, 14, b"three".to_vec(), false)
            ]
        );
        assert!(LineReader::new(File::open(&p)?, true, 100, 4096, 1024).is_err());
        Ok(())
    }

    #[test]
    fn a_line_left_by_the_caller_is_handed_out_again() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f.log");
        // Longer than a read chunk, so the reader keeps only its head.
        let long = vec![b'x'; 10_000];
        let mut content = b"a\nbb\nlater\n".to_vec();
        content.extend_from_slice(&long);
        content.extend_from_slice(b"\nend");
        std::fs::write(&p, &content)?;
        let mut r = LineReader::new(File::open(&p)?, false, 0, 4096, 1024)?;
        let mut seen = Vec::new();
        let out = r.read_lines(usize::MAX, usize::MAX, true, |l| {
            if l.bytes == b"later" {
                return false;
            }
            seen.push(l.bytes.to_vec());
            true
        })?;
        assert_eq!(seen, [b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(out.lines, 2);
        assert!(
            !out.eof,
            "a read that left a line is not at the end of the file"
        );
        assert_eq!(r.position(), 5);
        // An over-long line and an unterminated last line can be left as well.
        let out = r.read_lines(usize::MAX, usize::MAX, true, |l| !l.truncated)?;
        assert_eq!((out.lines, out.eof, r.position()), (1, false, 11));
        let out = r.read_lines(usize::MAX, usize::MAX, true, |l| l.bytes != b"end")?;
        assert_eq!((out.lines, out.eof, r.position()), (1, false, 11 + 10_001));
        let v = collect(&mut r, true)?;
        assert_eq!(v, vec![(10_012, 10_015, b"end".to_vec(), false)]);
        Ok(())
    }
}
