//! [`ParseStats`]: per-format, per-problem and per-secret-kind counters, read by tests and
//! rendered for `/metrics`.

use std::fmt::Write;

use crate::Format;
use crate::error::Problem;
use crate::redact::KIND_NAMES;

/// Counters of one [`crate::Parser`]. Plain integers: the parser is single-threaded and the
/// caller publishes them per batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Records parsed.
    pub records: u64,
    /// Bytes of record text parsed.
    pub bytes: u64,
    /// Records that had at least one secret redacted.
    pub redacted_records: u64,
    by_format: [u64; Format::ALL.len()],
    by_problem: [u64; Problem::ALL.len()],
    by_secret: [u64; KIND_NAMES.len()],
}

impl ParseStats {
    /// Records parsed as `format`.
    pub fn format_count(&self, format: Format) -> u64 {
        self.by_format[format as usize]
    }

    /// Records that had `problem`.
    pub fn problem_count(&self, problem: Problem) -> u64 {
        self.by_problem[problem.index()]
    }

    /// Redactions of the secret kind named `kind` (`jwt`, `password`, ...), 0 if unknown.
    pub fn redaction_count(&self, kind: &str) -> u64 {
        KIND_NAMES
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.by_secret[i])
    }

    pub(crate) fn count_format(&mut self, format: Format) {
        self.by_format[format as usize] += 1;
    }

    pub(crate) fn count_problem(&mut self, problem: Problem) {
        self.by_problem[problem.index()] += 1;
    }

    pub(crate) fn count_secret(&mut self, kind_index: usize) {
        self.by_secret[kind_index] += 1;
    }

    /// Appends the counters in the Prometheus text format (`sluice_parse_*`).
    pub fn render_prometheus(&self, out: &mut String) {
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(
            out,
            "# HELP sluice_parse_records_total Records parsed, by detected format."
        );
        let _ = writeln!(out, "# TYPE sluice_parse_records_total counter");
        for f in Format::ALL {
            let _ = writeln!(
                out,
                "sluice_parse_records_total{{format=\"{}\"}} {}",
                f.as_str(),
                self.format_count(f)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_parse_bytes_total Bytes of record text parsed."
        );
        let _ = writeln!(out, "# TYPE sluice_parse_bytes_total counter");
        let _ = writeln!(out, "sluice_parse_bytes_total {}", self.bytes);
        let _ = writeln!(
            out,
            "# HELP sluice_parse_errors_total Records with a parse problem, by error code."
        );
        let _ = writeln!(out, "# TYPE sluice_parse_errors_total counter");
        for p in Problem::ALL {
            let _ = writeln!(
                out,
                "sluice_parse_errors_total{{code=\"{}\"}} {}",
                p.code(),
                self.problem_count(p)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_parse_redactions_total Secrets redacted, by kind."
        );
        let _ = writeln!(out, "# TYPE sluice_parse_redactions_total counter");
        for (i, k) in KIND_NAMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "sluice_parse_redactions_total{{kind=\"{k}\"}} {}",
                self.by_secret[i]
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_parse_redacted_records_total Records with at least one secret redacted."
        );
        let _ = writeln!(out, "# TYPE sluice_parse_redacted_records_total counter");
        let _ = writeln!(
            out,
            "sluice_parse_redacted_records_total {}",
            self.redacted_records
        );
    }
}
