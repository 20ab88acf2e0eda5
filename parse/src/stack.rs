//! Stack traces in a (multi-line) message: Python tracebacks, Java/.NET/Node `at ...` frames
//! and Go panics, mapped to `error.type`, `error.message` and `error.stack_trace`.

const PY_TRACEBACK: &str = "Traceback (most recent call last):";
const GO_GOROUTINE: &str = "goroutine ";

/// What was found in a text holding a stack trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackInfo<'a> {
    /// Text before the trace (the log line that announced it), trimmed; may be empty.
    pub(crate) head: &'a str,
    /// The exception class, e.g. `ValueError`, `java.lang.NullPointerException`, `panic`.
    pub(crate) kind: Option<String>,
    /// The exception message.
    pub(crate) message: Option<String>,
    /// The trace itself, from its first line to the end.
    pub(crate) trace: &'a str,
}

/// Finds a stack trace in `text`, if there is one.
pub(crate) fn extract(text: &str) -> Option<StackInfo<'_>> {
    if let Some(at) = text.find(PY_TRACEBACK) {
        return Some(python(text, at));
    }
    if let Some(info) = frames_at(text) {
        return Some(info);
    }
    go_panic(text)
}

fn python(text: &str, at: usize) -> StackInfo<'_> {
    let trace = text[at..].trim_end();
    // The exception is the last line that is not indented (frames and source are).
    let last = trace
        .lines()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with(char::is_whitespace) && *l != PY_TRACEBACK);
    let (kind, message) = last.map_or((None, None), split_exception_line);
    StackInfo {
        head: text[..at].trim(),
        kind,
        message,
        trace,
    }
}

/// `pkg.ValueError: bad value` → (`pkg.ValueError`, `bad value`); `KeyError` → (`KeyError`,
/// none). The type must be one identifier-ish token.
fn split_exception_line(line: &str) -> (Option<String>, Option<String>) {
    let line = line.trim();
    let line = strip_thread_prefix(line);
    let line = line.strip_prefix("Caused by: ").unwrap_or(line);
    let (ty, msg) = match line.split_once(": ") {
        Some((t, m)) => (t, Some(m.trim())),
        None => (line.strip_suffix(':').unwrap_or(line), None),
    };
    let ident = !ty.is_empty()
        && ty
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$' | b'`'));
    if !ident {
        return (None, Some(line.to_owned()));
    }
    (
        Some(ty.to_owned()),
        msg.filter(|m| !m.is_empty()).map(str::to_owned),
    )
}

/// `Exception in thread "main" java.lang.X: m` → `java.lang.X: m`.
fn strip_thread_prefix(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("Exception in thread \"")
        && let Some((_, after)) = rest.split_once("\" ")
    {
        return after;
    }
    line
}

/// Java, .NET, Node: the first line that is a frame (`at ...` after indentation); the
/// exception is the line just before it.
fn frames_at(text: &str) -> Option<StackInfo<'_>> {
    let mut prev: Option<(usize, &str)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        let is_frame = content.len() != trimmed.len()
            && (trimmed.starts_with("at ") || trimmed.starts_with("... "));
        if is_frame {
            let (ex_start, ex_line) = prev?;
            let (kind, message) = split_exception_line(ex_line);
            kind.as_ref()?;
            return Some(StackInfo {
                head: text[..ex_start].trim(),
                kind,
                message,
                trace: text[ex_start..].trim_end(),
            });
        }
        if !content.trim().is_empty() {
            prev = Some((offset, content));
        }
        offset += line.len();
    }
    None
}

/// Go: `panic: message` followed by `goroutine N [running]:`.
fn go_panic(text: &str) -> Option<StackInfo<'_>> {
    let g = text.find(GO_GOROUTINE)?;
    let after = &text[g + GO_GOROUTINE.len()..];
    let n = after.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || !after[n..].starts_with(" [") {
        return None;
    }
    let (start, message) = match text[..g].rfind("panic: ") {
        Some(p) => {
            let line = text[p + 7..].lines().next().unwrap_or("").trim();
            (p, Some(line.to_owned()).filter(|m| !m.is_empty()))
        }
        None => (g, None),
    };
    Some(StackInfo {
        head: text[..start].trim(),
        kind: Some("panic".to_owned()),
        message,
        trace: text[start..].trim_end(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_traceback() -> Result<(), String> {
        let t = "ERROR:app:request failed\nTraceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    f()\nValueError: bad value\n";
        let info = extract(t).ok_or("no trace")?;
        assert_eq!(info.head, "ERROR:app:request failed");
        assert_eq!(info.kind.as_deref(), Some("ValueError"));
        assert_eq!(info.message.as_deref(), Some("bad value"));
        assert!(info.trace.starts_with("Traceback") && info.trace.ends_with("bad value"));
        Ok(())
    }

    #[test]
    fn java_trace() -> Result<(), String> {
        let t = "Failed to process request\njava.lang.NullPointerException: x is null\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)";
        let info = extract(t).ok_or("no trace")?;
        assert_eq!(info.head, "Failed to process request");
        assert_eq!(info.kind.as_deref(), Some("java.lang.NullPointerException"));
        assert_eq!(info.message.as_deref(), Some("x is null"));
        let t = "Exception in thread \"main\" java.lang.IllegalStateException\n    at Main.main(Main.java:5)";
        let info = extract(t).ok_or("no trace")?;
        assert_eq!(
            info.kind.as_deref(),
            Some("java.lang.IllegalStateException")
        );
        Ok(())
    }

    #[test]
    fn node_and_go() -> Result<(), String> {
        let t = "TypeError: undefined is not a function\n    at Object.<anonymous> (/app/x.js:1:1)";
        let info = extract(t).ok_or("no trace")?;
        assert_eq!(info.kind.as_deref(), Some("TypeError"));
        let t = "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5";
        let info = extract(t).ok_or("no trace")?;
        assert_eq!(info.kind.as_deref(), Some("panic"));
        assert_eq!(
            info.message.as_deref(),
            Some("runtime error: index out of range")
        );
        Ok(())
    }

    #[test]
    fn prose_is_not_a_trace() {
        assert_eq!(extract("look at this\n  at the end"), None);
        assert_eq!(extract("one line"), None);
    }
}
