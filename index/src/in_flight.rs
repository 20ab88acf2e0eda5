//! Backpressure between [`crate::Store::add`] and tantivy's indexing threads.
//!
//! The store hands documents over in batches ([`tantivy::IndexWriter::run`]); tantivy's queue is
//! bounded in *batches*, not documents, so on its own it would let a fast caller park up to
//! `commit_max_docs` built documents in memory while the indexing threads fall behind. Each
//! handed-over document carries a [`Ticket`] that is returned when tantivy drops the document
//! (indexed, or discarded with its writer), and the store waits before handing over more than
//! [`MAX_IN_FLIGHT_DOCS`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tantivy::TantivyDocument;
use tantivy::schema::document::CompactDocValue;
use tantivy::schema::{Document, Field};

/// Documents handed to the indexing threads and not yet indexed, across all open writers. At
/// ~2 KB per built document this bounds the queue to ~16 MB, and it is ~30 batches: enough to
/// keep two indexing threads busy through a scheduling hiccup of the caller.
pub const MAX_IN_FLIGHT_DOCS: usize = 8_192;
/// How long the caller sleeps between checks while the queue is full. One batch takes the
/// indexing threads a few milliseconds, so 200 µs adds no measurable idle time.
const WAIT_STEP: Duration = Duration::from_micros(200);

/// Counts the documents in tantivy's queue; shared by the store and every ticket.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Waits until at most [`MAX_IN_FLIGHT_DOCS`] ticketed documents exist (the batch about to
    /// be handed over holds its tickets already). Returns whether it had to wait.
    pub fn wait_for_room(&self) -> bool {
        let mut waited = false;
        while self.0.load(Ordering::Acquire) > MAX_IN_FLIGHT_DOCS {
            std::thread::sleep(WAIT_STEP);
            waited = true;
        }
        waited
    }

    /// A ticket for one document about to be handed over.
    pub fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::AcqRel);
        Ticket(Arc::clone(&self.0))
    }

    /// Documents queued right now.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One queued document's place in [`InFlight`]; given back on drop.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A tantivy document with its [`Ticket`]: indexes exactly like the document it wraps.
#[derive(Debug)]
pub struct StagedDoc {
    doc: TantivyDocument,
    _ticket: Ticket,
}

impl StagedDoc {
    pub fn new(doc: TantivyDocument, ticket: Ticket) -> StagedDoc {
        StagedDoc {
            doc,
            _ticket: ticket,
        }
    }
}

impl Document for StagedDoc {
    type Value<'a> = CompactDocValue<'a>;
    // tantivy does not export the iterator type of `TantivyDocument`; the box is one small
    // allocation per document and pass, next to dozens for the document itself.
    type FieldsValuesIter<'a> = Box<dyn Iterator<Item = (Field, CompactDocValue<'a>)> + 'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        Box::new(self.doc.iter_fields_and_values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_until_dropped() {
        let in_flight = InFlight::default();
        let a = in_flight.ticket();
        let b = StagedDoc::new(TantivyDocument::new(), in_flight.ticket());
        assert_eq!(in_flight.queued(), 2);
        drop(a);
        assert_eq!(in_flight.queued(), 1);
        drop(b);
        assert_eq!(in_flight.queued(), 0);
        assert!(!in_flight.wait_for_room());
    }

    #[test]
    fn a_full_queue_waits_until_a_ticket_returns() {
        let in_flight = InFlight::default();
        let tickets: Vec<Ticket> = (0..=MAX_IN_FLIGHT_DOCS)
            .map(|_| in_flight.ticket())
            .collect();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(tickets);
        });
        assert!(in_flight.wait_for_room(), "a full queue must wait");
        assert_eq!(in_flight.queued(), 0);
        assert!(releaser.join().is_ok());
    }
}
