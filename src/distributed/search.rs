//! [`DistributedSearcher`]: reads every partition store the indexers write.

use std::path::{Path, PathBuf};

use anyhow::Context;
use index::{SearchRequest, Searcher};
use schemas::LogEvent;

use super::indexer::partitions_root;

/// Read access to all partition stores under `<data_dir>/partitions/`. Stores that appear after
/// [`DistributedSearcher::open`] are seen after the next `open`.
#[derive(Debug, Clone)]
pub struct DistributedSearcher {
    /// (events partition, searcher), in partition order.
    stores: Vec<(i32, Searcher)>,
}

impl DistributedSearcher {
    /// Opens a searcher on each partition store present.
    ///
    /// # Errors
    /// The partitions dir cannot be read, or a store cannot be opened.
    pub fn open(data_dir: &Path, retention_days: u32) -> anyhow::Result<DistributedSearcher> {
        let root = partitions_root(data_dir);
        let mut stores = Vec::new();
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DistributedSearcher { stores });
            }
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", root.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to read {}", root.display()))?;
            let Some(partition) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let dir: PathBuf = entry.path();
            let searcher = Searcher::open(&dir, retention_days)
                .with_context(|| format!("failed to open the store at {}", dir.display()))?;
            stores.push((partition, searcher));
        }
        stores.sort_by_key(|(p, _)| *p);
        Ok(DistributedSearcher { stores })
    }

    /// The events partitions that have a store.
    pub fn partitions(&self) -> Vec<i32> {
        self.stores.iter().map(|(p, _)| *p).collect()
    }

    /// How many events match `req` over every store.
    ///
    /// # Errors
    /// A store fails the query.
    pub fn count(&self, req: &SearchRequest) -> anyhow::Result<u64> {
        let mut total = 0;
        for (partition, searcher) in &self.stores {
            total += searcher
                .count(req)
                .with_context(|| format!("count failed in partition {partition}"))?;
        }
        Ok(total)
    }

    /// The newest `req.limit` events matching `req` over every store, newest first. Paging
    /// with `search_after` is per store; use [`DistributedSearcher::for_each`] to walk all.
    ///
    /// # Errors
    /// A store fails the query, or `req.search_after` is set.
    pub fn search(&self, req: &SearchRequest) -> anyhow::Result<Vec<LogEvent>> {
        anyhow::ensure!(
            req.search_after.is_none(),
            "search_after is per store; use for_each to page through every store"
        );
        let limit = if req.limit == 0 {
            index::DEFAULT_LIMIT
        } else {
            req.limit
        };
        let mut merged = Vec::new();
        for (partition, searcher) in &self.stores {
            let page = searcher
                .search(req)
                .with_context(|| format!("search failed in partition {partition}"))?;
            merged.extend(page.events);
        }
        merged.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        merged.truncate(limit);
        Ok(merged)
    }

    /// Calls `f` with every event matching `query` in every store (store by store, each newest
    /// first).
    ///
    /// # Errors
    /// A store fails the query.
    pub fn for_each(&self, query: &str, mut f: impl FnMut(&LogEvent)) -> anyhow::Result<()> {
        for (partition, searcher) in &self.stores {
            let mut req = SearchRequest {
                query: query.to_string(),
                limit: index::MAX_LIMIT,
                ..SearchRequest::default()
            };
            loop {
                let page = searcher
                    .search(&req)
                    .with_context(|| format!("search failed in partition {partition}"))?;
                page.events.iter().for_each(&mut f);
                match page.next_cursor {
                    Some(cursor) => req.search_after = Some(cursor),
                    None => break,
                }
            }
        }
        Ok(())
    }
}
