//! Table-driven decoder tests: CRI and docker framing, edge cases, and the public samples in
//! `../shared/corpora/k8s`.

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Result;
use ingest::{Format, decode_as, decode_line, detect_format};
use schemas::Stream;

struct Case {
    name: &'static str,
    input: Vec<u8>,
    format: Format,
    stream: Option<Stream>,
    partial: bool,
    message: Vec<u8>,
    error: Option<&'static str>,
    has_time: bool,
}

fn case(
    name: &'static str,
    input: &[u8],
    format: Format,
    stream: Option<Stream>,
    partial: bool,
    message: &[u8],
    error: Option<&'static str>,
) -> Case {
    Case {
        name,
        input: input.to_vec(),
        format,
        stream,
        partial,
        message: message.to_vec(),
        error,
        has_time: error.is_none() && format != Format::Plain,
    }
}

const TS: &str = "2026-12-04T16:30:00.123456789Z";

#[test]
fn decoder_table() {
    use Format::{Cri, Docker, Plain};
    use Stream::{Stderr, Stdout};
    let big = "y".repeat(20 * 1024);
    let cri_big = format!("{TS} stdout P {big}");
    let docker_big = format!(r#"{{"log":"{big}","stream":"stderr","time":"{TS}"}}"#);
    let mut cri_bad_utf8 = format!("{TS} stderr F caf").into_bytes();
    cri_bad_utf8.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    let cases = vec![
        case(
            "cri full",
            format!("{TS} stdout F hello world").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b"hello world",
            None,
        ),
        case(
            "cri partial",
            format!("{TS} stderr P part").as_bytes(),
            Cri,
            Some(Stderr),
            true,
            b"part",
            None,
        ),
        case(
            "cri crlf",
            format!("{TS} stdout F windows\r").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b"windows",
            None,
        ),
        case(
            "cri empty message with space",
            format!("{TS} stdout F ").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b"",
            None,
        ),
        case(
            "cri empty message without space",
            format!("{TS} stdout F").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b"",
            None,
        ),
        case(
            "cri extra tags",
            format!("{TS} stdout F:x:y tagged").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b"tagged",
            None,
        ),
        case(
            "cri keeps inner spaces",
            format!("{TS} stdout F  two  spaces ").as_bytes(),
            Cri,
            Some(Stdout),
            false,
            b" two  spaces ",
            None,
        ),
        case(
            "cri 20 KiB partial",
            cri_big.as_bytes(),
            Cri,
            Some(Stdout),
            true,
            big.as_bytes(),
            None,
        ),
        case(
            "cri invalid utf8 kept as bytes",
            &cri_bad_utf8,
            Cri,
            Some(Stderr),
            false,
            &cri_bad_utf8[TS.len() + 10..],
            None,
        ),
        case(
            "docker full",
            format!(r#"{{"log":"hi\n","stream":"stdout","time":"{TS}"}}"#).as_bytes(),
            Docker,
            Some(Stdout),
            false,
            b"hi",
            None,
        ),
        case(
            "docker 16k split has no newline",
            docker_big.as_bytes(),
            Docker,
            Some(Stderr),
            true,
            big.as_bytes(),
            None,
        ),
        case(
            "docker escapes",
            br#"{"log":"a\"b\\c\u00e9\n","stream":"stdout","time":"2026-12-04T16:30:00Z"}"#,
            Docker,
            Some(Stdout),
            false,
            "a\"b\\c\u{e9}".as_bytes(),
            None,
        ),
        case(
            "docker crlf line",
            format!("{{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"{TS}\"}}\r").as_bytes(),
            Docker,
            Some(Stdout),
            false,
            b"x",
            None,
        ),
        case(
            "plain text",
            b"just text",
            Plain,
            None,
            false,
            b"just text",
            None,
        ),
        case("empty line", b"", Plain, None, false, b"", None),
        case(
            "plain crlf",
            b"dos line\r",
            Plain,
            None,
            false,
            b"dos line",
            None,
        ),
        case(
            "binary garbage",
            &[0x00, 0xFF, 0xFE, b' ', 0x01],
            Plain,
            None,
            false,
            &[0x00, 0xFF, 0xFE, b' ', 0x01],
            None,
        ),
    ];
    for c in &cases {
        let d = decode_line(&c.input);
        assert_eq!(d.format, c.format, "{}: format", c.name);
        assert_eq!(d.stream, c.stream, "{}: stream", c.name);
        assert_eq!(d.partial, c.partial, "{}: partial", c.name);
        assert_eq!(
            d.message.as_ref(),
            c.message.as_slice(),
            "{}: message",
            c.name
        );
        assert_eq!(d.error, c.error, "{}: error", c.name);
        assert_eq!(d.time.is_some(), c.has_time, "{}: time", c.name);
        if c.format == Format::Cri && c.error.is_none() {
            assert!(
                matches!(d.message, Cow::Borrowed(_)),
                "{}: CRI must not copy",
                c.name
            );
        }
    }
}

#[test]
fn malformed_framing_is_flagged_with_the_whole_line() {
    let cases: Vec<(Format, &[u8], &str)> = vec![
        (Format::Cri, b"not a cri line", "malformed_cri"),
        (
            Format::Cri,
            b"2026-12-04T16:30:00Z stdin F x",
            "malformed_cri",
        ),
        (
            Format::Cri,
            b"2026-12-04T16:30:00Z stdout X x",
            "malformed_cri",
        ),
        (
            Format::Cri,
            b"2026-13-04T16:30:00Z stdout F x",
            "malformed_cri",
        ),
        (Format::Cri, b"", "malformed_cri"),
        (
            Format::Docker,
            br#""log":"x\n","stream":"stdout"}"#,
            "malformed_docker_json",
        ),
        (
            Format::Docker,
            br#"{"log":"x\n","stream":"stdweird"}"#,
            "malformed_docker_json",
        ),
        (
            Format::Docker,
            br#"{"stream":"stdout"}"#,
            "malformed_docker_json",
        ),
        (Format::Docker, b"", "malformed_docker_json"),
    ];
    for (format, input, code) in cases {
        let d = decode_as(format, input);
        assert_eq!(d.error, Some(code), "{:?}", String::from_utf8_lossy(input));
        assert_eq!(d.message.as_ref(), input);
        assert!(!d.partial);
    }
}

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/k8s");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: corpora not found at {}", p.display());
        None
    }
}

#[test]
fn corpus_cri_samples_decode_as_their_assertions_say() -> Result<()> {
    let Some(dir) = corpora() else { return Ok(()) };
    let text = std::fs::read(dir.join("crowdsec_hub/cri-logs/cri-logs.log"))?;
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3);
    let want = [
        (
            Stream::Stdout,
            false,
            "c99400a4db42e32187a3cbda00920e41",
            "2022-01-28T16:04:05.413656027Z",
        ),
        (
            Stream::Stderr,
            true,
            "1817d7f2d3167a39badb6c3ea3a9072c",
            "2022-01-28T16:04:05.673552828Z",
        ),
        (
            Stream::Stdout,
            false,
            "6dcb7f7507726de0279495d7ade442ca",
            "2022-01-28T16:04:05.919698406Z",
        ),
    ];
    for (line, (stream, partial, tail, ts)) in lines.iter().zip(want) {
        assert_eq!(detect_format(line), Format::Cri);
        let d = decode_line(line);
        assert_eq!(d.stream, Some(stream));
        assert_eq!(d.partial, partial);
        assert!(
            d.message
                .starts_with(b"172.18.0.1 - - [28/Jan/2022:16:04:05 +0000] \"GET / HTTP/1.1\"")
        );
        assert!(d.message.ends_with(tail.as_bytes()));
        assert_eq!(
            d.time
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
            Some(ts.to_string())
        );
    }
    let java = std::fs::read(dir.join("fluent-bit_cri_multiline/cri_java_stacktrace.log"))?;
    let mut n = 0;
    for line in java.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let d = decode_as(Format::Cri, line);
        assert_eq!(d.error, None);
        assert_eq!(d.stream, Some(Stream::Stderr));
        n += 1;
    }
    assert_eq!(n, 19);
    Ok(())
}

#[test]
fn corpus_docker_samples_including_the_corrupted_line() -> Result<()> {
    let Some(dir) = corpora() else { return Ok(()) };
    let text = std::fs::read(dir.join("elastic_beats/docker_corrupted.log"))?;
    let mut bad = Vec::new();
    let mut total = 0;
    for (i, line) in text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let d = decode_as(Format::Docker, line);
        total += 1;
        if let Some(code) = d.error {
            assert_eq!(code, "malformed_docker_json");
            bad.push(i + 1);
        } else {
            assert!(!d.partial, "line {} should end with \\n", i + 1);
            assert_eq!(d.stream, Some(Stream::Stdout));
        }
    }
    assert_eq!(bad, vec![7], "the corpus notes say line 7 is corrupted");
    assert!(total > 7);
    let text = std::fs::read(dir.join("crowdsec_hub/docker-logs/docker-logs.log"))?;
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert_eq!(detect_format(line), Format::Docker);
        let d = decode_line(line);
        assert!(d.message.starts_with(b"192.168.61.205 - - [24/Aug/2021"));
        assert!(!d.message.ends_with(b"\n"));
    }
    // Fluent Bit's fixtures: every line is docker JSON, escaped JSON inside `log` included.
    let mut files = 0;
    for entry in walk(&dir.join("fluent-bit_kubernetes/log"))? {
        let text = std::fs::read(&entry)?;
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let d = decode_line(line);
            assert_eq!(d.format, Format::Docker, "{}", entry.display());
            assert_eq!(d.error, None, "{}", entry.display());
        }
        files += 1;
    }
    assert!(files > 20);
    Ok(())
}

fn walk(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

mod properties {
    use ingest::{Format, decode_as, decode_line};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let d = decode_line(&line);
            prop_assert!(d.message.len() <= line.len() || d.format == Format::Docker);
            for f in [Format::Cri, Format::Docker, Format::Plain] {
                let d = decode_as(f, &line);
                if d.error.is_some() {
                    prop_assert_eq!(d.message.as_ref(), line.strip_suffix(b"\r").unwrap_or(&line));
                }
            }
        }

        #[test]
        fn cri_lines_round_trip(
            nanos in 0u32..1_000_000_000,
            stderr in any::<bool>(),
            partial in any::<bool>(),
            msg in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..200),
        ) {
            let mut line = format!(
                "2026-12-04T16:30:00.{nanos:09}Z {} {} ",
                if stderr { "stderr" } else { "stdout" },
                if partial { "P" } else { "F" }
            )
            .into_bytes();
            line.extend_from_slice(&msg);
            let d = decode_as(Format::Cri, &line);
            prop_assert_eq!(d.error, None);
            prop_assert_eq!(d.partial, partial);
            let want = msg.strip_suffix(b"\r").unwrap_or(&msg);
            prop_assert_eq!(d.message.as_ref(), want);
            prop_assert_eq!(d.time.map(|t| t.timestamp_subsec_nanos()), Some(nanos));
        }

        #[test]
        fn docker_lines_round_trip(msg in "[^\u{0}]{0,100}", partial in any::<bool>()) {
            let log = if partial { msg.clone() } else { format!("{msg}\n") };
            let line = serde_json::json!({"log": log, "stream": "stdout", "time": "2026-12-04T16:30:00.5Z"}).to_string();
            let d = decode_line(line.as_bytes());
            prop_assert_eq!(d.format, Format::Docker);
            prop_assert_eq!(d.partial, partial && !msg.ends_with('\n'));
            let want = if partial { msg.strip_suffix('\n').unwrap_or(&msg) } else { msg.as_str() };
            prop_assert_eq!(d.message.as_ref(), want.as_bytes());
        }
    }
}
