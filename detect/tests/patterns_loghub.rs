//! Evaluation of the pattern miner on Loghub-2.0's 2k samples (corrected templates), printed
//! beside Drain's published numbers.
//!
//! Run: `cargo test -p detect --release --test patterns_loghub -- --ignored --nocapture`
//!
//! Metrics (as Loghub-2.0 defines them):
//! - GA: fraction of lines in predicted groups whose line set equals a ground-truth group.
//! - FGA: F1 of group precision (correct groups / predicted groups) and recall (correct groups /
//!   ground-truth groups).
//! - PA: fraction of lines whose predicted template equals the ground truth, after normalising
//!   both sides the same way: whitespace runs collapsed to one space, trimmed, and runs of
//!   `<*>` separated by nothing or by whitespace merged into one `<*>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use detect::patterns::{PatternConfig, PatternMiner};

/// The targets for the mean over [`SYSTEMS`], with one configuration for all.
const TARGET_MEAN_GA: f64 = 0.92;
const TARGET_MEAN_FGA: f64 = 0.88;
const TARGET_MEAN_PA: f64 = 0.70;

/// The systems of Loghub-2.0's 2k sample present in the shared corpora.
const SYSTEMS: &[&str] = &[
    "HDFS",
    "Spark",
    "BGL",
    "Linux",
    "HealthApp",
    "Proxifier",
    "OpenSSH",
];

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora")
}

/// Minimal RFC 4180 reader: quoted fields with `""` escapes, CRLF or LF records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Normalise a template for PA (see the module docs).
fn normalize(t: &str) -> String {
    let mut s = t.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let next = s.replace("<*><*>", "<*>").replace("<*> <*>", "<*>");
        if next == s {
            return s;
        }
        s = next;
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Scores {
    ga: f64,
    fga: f64,
    pa: f64,
}

fn evaluate(
    contents: &[String],
    truth: &[String],
    config: &PatternConfig,
) -> anyhow::Result<Scores> {
    let mut miner = PatternMiner::try_new(config)?;
    for c in contents {
        miner.assign(c);
    }
    // Second pass: every line gets its template's final form, as Drain reports it.
    let mut predicted = Vec::with_capacity(contents.len());
    for c in contents {
        let m = miner.assign(c);
        predicted.push((m.id.to_string(), m.template.to_string()));
    }
    let n = contents.len();
    let mut pred_groups: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut true_groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for i in 0..n {
        pred_groups.entry(&predicted[i].0).or_default().push(i);
        true_groups.entry(&truth[i]).or_default().push(i);
    }
    let mut correct_lines = 0usize;
    let mut correct_groups = 0usize;
    for lines in pred_groups.values() {
        let t = &truth[lines[0]];
        if true_groups.get(t.as_str()).is_some_and(|g| g == lines) {
            correct_lines += lines.len();
            correct_groups += 1;
        }
    }
    let precision = correct_groups as f64 / pred_groups.len() as f64;
    let recall = correct_groups as f64 / true_groups.len() as f64;
    let fga = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let pa_ok = (0..n)
        .filter(|&i| normalize(&predicted[i].1) == normalize(&truth[i]))
        .count();
    Ok(Scores {
        ga: correct_lines as f64 / n as f64,
        fga,
        pa: pa_ok as f64 / n as f64,
    })
}

/// Drain's Loghub-2k numbers (the part before " / ") for `system`.
fn drain_scores(table: &[Vec<String>], system: &str) -> Option<Scores> {
    let header = table.first()?;
    let col = header.iter().position(|h| h == "Drain")?;
    let get = |metric: &str| -> Option<f64> {
        let row = table
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(&format!("{system} {metric}")))?;
        row.get(col)?.split(" / ").next()?.trim().parse().ok()
    };
    Some(Scores {
        ga: get("GA")?,
        fga: get("FGA")?,
        pa: get("PA")?,
    })
}

fn load(system: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let path = corpora()
        .join("loghub2_2k")
        .join(system)
        .join(format!("{system}_2k.log_structured_corrected.csv"));
    let text = std::fs::read_to_string(&path)?;
    let rows = parse_csv(&text);
    let header = rows
        .first()
        .ok_or_else(|| anyhow::anyhow!("empty csv {}", path.display()))?;
    let ci = header
        .iter()
        .position(|h| h == "Content")
        .ok_or_else(|| anyhow::anyhow!("no Content"))?;
    let ti = header
        .iter()
        .position(|h| h == "EventTemplate")
        .ok_or_else(|| anyhow::anyhow!("no EventTemplate"))?;
    let mut contents = Vec::new();
    let mut truth = Vec::new();
    for r in rows.iter().skip(1) {
        if r.len() <= ci.max(ti) {
            continue;
        }
        contents.push(r[ci].clone());
        truth.push(r[ti].clone());
    }
    anyhow::ensure!(
        contents.len() == 2000,
        "{system}: expected 2000 rows, got {}",
        contents.len()
    );
    Ok((contents, truth))
}

#[test]
#[ignore = "evaluation over the shared Loghub corpus; run with --ignored --nocapture"]
fn loghub2_2k_accuracy_vs_drain() -> anyhow::Result<()> {
    let root = corpora();
    if !root.join("loghub2_2k").is_dir() {
        println!("skipping: corpora not found at {}", root.display());
        return Ok(());
    }
    let table = parse_csv(&std::fs::read_to_string(
        root.join("benchmarks/loghub2_RQ2_effectiveness_results.csv"),
    )?);
    let mut config = PatternConfig::default();
    // Tuning aid only: the reported numbers use the default configuration.
    if let Some(st) = std::env::var("SLUICE_PATTERN_ST")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.similarity_threshold = st;
    }
    println!(
        "{:<10} {:>6} {:>6} {:>6}   | Drain {:>6} {:>6} {:>6}",
        "system", "GA", "FGA", "PA", "GA", "FGA", "PA"
    );
    let mut sum = Scores::default();
    let mut drain_sum = Scores::default();
    let mut behind = Vec::new();
    for system in SYSTEMS {
        let (contents, truth) = load(system)?;
        let s = evaluate(&contents, &truth, &config)?;
        let d = drain_scores(&table, system)
            .ok_or_else(|| anyhow::anyhow!("no Drain row for {system}"))?;
        println!(
            "{:<10} {:>6.3} {:>6.3} {:>6.3}   |       {:>6.3} {:>6.3} {:>6.3}",
            system, s.ga, s.fga, s.pa, d.ga, d.fga, d.pa
        );
        for (metric, ours, drain) in [
            ("GA", s.ga, d.ga),
            ("FGA", s.fga, d.fga),
            ("PA", s.pa, d.pa),
        ] {
            if ours <= drain {
                behind.push(format!("{system} {metric} {ours:.3} <= Drain {drain:.3}"));
            }
        }
        sum.ga += s.ga;
        sum.fga += s.fga;
        sum.pa += s.pa;
        drain_sum.ga += d.ga;
        drain_sum.fga += d.fga;
        drain_sum.pa += d.pa;
    }
    let k = SYSTEMS.len() as f64;
    println!(
        "{:<10} {:>6.3} {:>6.3} {:>6.3}   |       {:>6.3} {:>6.3} {:>6.3}",
        "mean",
        sum.ga / k,
        sum.fga / k,
        sum.pa / k,
        drain_sum.ga / k,
        drain_sum.fga / k,
        drain_sum.pa / k
    );
    // Every system beats Drain on every metric, and the means meet the targets.
    assert!(behind.is_empty(), "not ahead of Drain: {behind:?}");
    let mean = Scores {
        ga: sum.ga / k,
        fga: sum.fga / k,
        pa: sum.pa / k,
    };
    assert!(
        mean.ga >= TARGET_MEAN_GA && mean.fga >= TARGET_MEAN_FGA && mean.pa >= TARGET_MEAN_PA,
        "mean {mean:?} below the targets GA {TARGET_MEAN_GA} FGA {TARGET_MEAN_FGA} PA {TARGET_MEAN_PA}"
    );
    Ok(())
}

/// Diagnostic: print the ground-truth groups a system gets wrong. Run with
/// `LOGHUB_SYSTEM=Linux cargo test ... -- --ignored loghub2_2k_diagnose --nocapture`.
#[test]
#[ignore = "diagnostic output for tuning"]
fn loghub2_2k_diagnose() -> anyhow::Result<()> {
    if !corpora().join("loghub2_2k").is_dir() {
        println!("skipping: corpora not found at {}", corpora().display());
        return Ok(());
    }
    let system = std::env::var("LOGHUB_SYSTEM").unwrap_or_else(|_| "Linux".to_string());
    let (contents, truth) = load(&system)?;
    let mut config = PatternConfig::default();
    if let Some(st) = std::env::var("SLUICE_PATTERN_ST")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.similarity_threshold = st;
    }
    let mut miner = PatternMiner::try_new(&config)?;
    for c in &contents {
        miner.assign(c);
    }
    let mut by_truth: HashMap<&str, HashMap<String, (usize, String)>> = HashMap::new();
    for (c, t) in contents.iter().zip(&truth) {
        let m = miner.assign(c);
        let e = by_truth
            .entry(t)
            .or_default()
            .entry(m.template.to_string())
            .or_insert((0, c.clone()));
        e.0 += 1;
    }
    let mut by_pred: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for (t, preds) in &by_truth {
        for (p, (n, _)) in preds {
            *by_pred.entry(p.as_str()).or_default().entry(t).or_default() += n;
        }
    }
    for (p, truths) in &by_pred {
        if truths.len() > 1 {
            println!("MERGED {p}");
            for (t, n) in truths {
                println!("   {n:>5} {t}");
            }
        }
    }
    for (t, preds) in &by_truth {
        let wrong = preds.len() > 1 || preds.keys().any(|p| normalize(p) != normalize(t));
        if wrong {
            println!("TRUTH {t}");
            for (p, (n, sample)) in preds {
                println!("   {n:>5} {p}\n         e.g. {sample}");
            }
        }
    }
    Ok(())
}
