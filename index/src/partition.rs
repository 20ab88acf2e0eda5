//! Day partitions: one tantivy index per UTC day in `<data_dir>/index/<YYYY-MM-DD>/`.
//!
//! A partition appears atomically: it is created under a temporary name and renamed into place
//! once its `meta.json` exists, and it is dropped by renaming it away before deleting it, so a
//! reader (or a crash) never meets a half-made or half-deleted partition under a day name.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use tantivy::Index;
use tantivy::directory::MmapDirectory;

use crate::IndexError;
use crate::schema::{LogSchema, register_tokenizers};

/// Sub-directory of the data dir that holds the day partitions (the data dir may hold other
/// Sluice state, such as checkpoints).
pub const INDEX_SUBDIR: &str = "index";
/// Prefix of a partition being created; never read, removed at start-up.
const CREATING_PREFIX: &str = ".creating-";
/// Prefix of a partition being deleted; never read, removed at start-up.
const DELETING_PREFIX: &str = ".deleting-";
/// Format of a partition directory name.
const DAY_FORMAT: &str = "%Y-%m-%d";
/// Whether tantivy compresses the doc store on a thread of its own per segment writer. It does
/// by default; on the two cores we target that thread only competes with the indexing threads,
/// and handing it every 16 KiB block cost more than the lz4 compression itself: compressing in
/// the indexing thread took ~8% less CPU outside merges over 800 000 generated records
/// (`sluice run --until-idle`, perf samples of every thread, three alternating runs). It
/// changes only which thread compresses, not what is written.
const DOCSTORE_COMPRESS_DEDICATED_THREAD: bool = false;

/// The directory holding the partitions of `data_dir`.
pub fn root(data_dir: &Path) -> PathBuf {
    data_dir.join(INDEX_SUBDIR)
}

/// The UTC day an event at `ts` belongs to.
pub fn day_of(ts: DateTime<Utc>) -> NaiveDate {
    ts.date_naive()
}

/// The directory name of `day`.
pub fn day_name(day: NaiveDate) -> String {
    day.format(DAY_FORMAT).to_string()
}

/// The day a partition directory name stands for, if it is one.
pub fn parse_day(name: &str) -> Option<NaiveDate> {
    if name.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(name, DAY_FORMAT).ok()
}

/// The oldest day kept at `now` with `retention_days` of retention: `today - retention_days`.
/// Partitions of earlier days are expired.
pub fn oldest_kept_day(now: DateTime<Utc>, retention_days: u32) -> NaiveDate {
    let today = day_of(now);
    today
        .checked_sub_days(Days::new(u64::from(retention_days)))
        .unwrap_or(NaiveDate::MIN)
}

/// The partitions present under `root`, oldest first. A missing root means no partitions.
///
/// # Errors
/// [`IndexError::Io`] when the directory cannot be read.
pub fn list_days(root: &Path) -> Result<Vec<NaiveDate>, IndexError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(IndexError::io(root, err)),
    };
    let mut days = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IndexError::io(root, e))?;
        if let Some(day) = entry.file_name().to_str().and_then(parse_day) {
            days.push(day);
        }
    }
    days.sort_unstable();
    Ok(days)
}

/// Opens an existing partition for reading or writing.
///
/// # Errors
/// [`IndexError::Tantivy`] when it is not a valid index.
pub fn open(root: &Path, day: NaiveDate) -> Result<Index, IndexError> {
    let name = day_name(day);
    let dir = MmapDirectory::open(root.join(&name))
        .map_err(|e| IndexError::tantivy(&name, tantivy::TantivyError::from(e)))?;
    let mut index = Index::open(dir).map_err(|e| IndexError::tantivy(&name, e))?;
    // Partitions keep their settings in `meta.json`; this one applies to writers opened from
    // here on, whatever the partition was created with.
    index.settings_mut().docstore_compress_dedicated_thread = DOCSTORE_COMPRESS_DEDICATED_THREAD;
    register_tokenizers(&index);
    Ok(index)
}

/// Opens the partition of `day`, creating it (atomically) when absent.
///
/// # Errors
/// [`IndexError::Io`] or [`IndexError::Tantivy`].
pub fn open_or_create(
    root: &Path,
    day: NaiveDate,
    schema: &LogSchema,
) -> Result<Index, IndexError> {
    let name = day_name(day);
    let path = root.join(&name);
    if path.join("meta.json").exists() {
        return open(root, day);
    }
    std::fs::create_dir_all(root).map_err(|e| IndexError::io(root, e))?;
    let tmp = root.join(format!("{CREATING_PREFIX}{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
    let index = Index::create_in_dir(&tmp, schema.schema.clone())
        .map_err(|e| IndexError::tantivy(&name, e))?;
    drop(index);
    std::fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
    sync_dir(root)?;
    open(root, day)
}

/// Removes the partition of `day`: rename away (atomic), then delete.
///
/// # Errors
/// [`IndexError::Io`].
pub fn remove(root: &Path, day: NaiveDate) -> Result<(), IndexError> {
    let name = day_name(day);
    let path = root.join(&name);
    let doomed = root.join(format!("{DELETING_PREFIX}{name}"));
    std::fs::rename(&path, &doomed).map_err(|e| IndexError::io(&path, e))?;
    sync_dir(root)?;
    std::fs::remove_dir_all(&doomed).map_err(|e| IndexError::io(&doomed, e))
}

/// Deletes leftovers of creations and deletions interrupted by a crash.
///
/// # Errors
/// [`IndexError::Io`].
pub fn clean_leftovers(root: &Path) -> Result<(), IndexError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(IndexError::io(root, err)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| IndexError::io(root, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(CREATING_PREFIX) || name.starts_with(DELETING_PREFIX) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| IndexError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| IndexError::io(dir, e))
}

/// Years outside 0..=9999 would not round-trip through the directory name.
pub fn is_nameable(day: NaiveDate) -> bool {
    (0..=9999).contains(&day.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).expect("valid date");
        assert_eq!(day_name(day), "2026-12-04");
        assert_eq!(parse_day("2026-12-04"), Some(day));
        for bad in ["2026-12-4", "2026-13-01", ".creating-2026-12-04", "x", ""] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn oldest_kept_day_is_retention_days_before_today() -> Result<(), Box<dyn std::error::Error>> {
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse()?;
        assert_eq!(
            oldest_kept_day(now, 90),
            NaiveDate::from_ymd_opt(2026, 9, 5).ok_or("date")?
        );
        assert_eq!(
            oldest_kept_day(now, 1),
            NaiveDate::from_ymd_opt(2026, 12, 3).ok_or("date")?
        );
        Ok(())
    }
}
