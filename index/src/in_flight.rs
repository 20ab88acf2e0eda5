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

use tantivy::schema::Document;

use crate::schema::{EventDoc, EventFields, EventValue};

/// Documents handed to the indexing threads and not yet indexed, across all open writers. At
/// ~2 KB per built document this bounds the queue to ~16 MB, and it is ~30 batches: enough to
/// keep two indexing threads busy through a scheduling hiccup of the caller.
pub const MAX_IN_FLIGHT_DOCS: usize = 8_192;
/// How long the caller sleeps between checks while the queue is full. One batch takes the
/// indexing threads a few milliseconds, so 200 µs adds no measurable idle time.
const WAIT_STEP: Duration = Duration::from_micros(200);
/// Longest wait without any queued document being indexed. Past it the caller hands over
/// anyway: if the indexing threads died (disk full) the hand-over returns their error instead
/// of the caller waiting forever, and if they are merely starved tantivy's own queue bound
/// still applies. A healthy thread indexes a document in tens of microseconds.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts the documents in tantivy's queue; shared by the store and every ticket.
#[derive(Debug, Clone)]
pub struct InFlight {
    queued: Arc<AtomicUsize>,
    stall_timeout: Duration,
}

impl Default for InFlight {
    fn default() -> InFlight {
        InFlight {
            queued: Arc::default(),
            stall_timeout: STALL_TIMEOUT,
        }
    }
}

/// How [`InFlight::wait_for_room`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// There was room at once.
    Immediate,
    /// There was room after waiting.
    Waited,
    /// Nothing was indexed for the stall timeout; the caller hands over anyway.
    Stalled,
}

impl InFlight {
    /// Waits until at most [`MAX_IN_FLIGHT_DOCS`] ticketed documents exist (the batch about to
    /// be handed over holds its tickets already), or until nothing was indexed for the stall
    /// timeout.
    pub fn wait_for_room(&self) -> Wait {
        let mut outcome = Wait::Immediate;
        let mut last = self.queued.load(Ordering::Acquire);
        let mut progress_at = std::time::Instant::now();
        while last > MAX_IN_FLIGHT_DOCS {
            if progress_at.elapsed() >= self.stall_timeout {
                return Wait::Stalled;
            }
            std::thread::sleep(WAIT_STEP);
            outcome = Wait::Waited;
            let now = self.queued.load(Ordering::Acquire);
            if now < last {
                progress_at = std::time::Instant::now();
            }
            last = now;
        }
        outcome
    }

    /// A ticket for one document about to be handed over.
    pub fn ticket(&self) -> Ticket {
        self.queued.fetch_add(1, Ordering::AcqRel);
        Ticket(Arc::clone(&self.queued))
    }

    /// Documents queued right now.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
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

/// An event document with its [`Ticket`]: indexes exactly like the document it wraps.
#[derive(Debug)]
pub struct StagedDoc {
    doc: EventDoc,
    _ticket: Ticket,
}

impl StagedDoc {
    pub fn new(doc: EventDoc, ticket: Ticket) -> StagedDoc {
        StagedDoc {
            doc,
            _ticket: ticket,
        }
    }
}

impl Document for StagedDoc {
    type Value<'a> = EventValue<'a>;
    type FieldsValuesIter<'a> = EventFields<'a>;

    fn iter_fields_and_values(&self) -> EventFields<'_> {
        self.doc.iter_fields_and_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_until_dropped() {
        let in_flight = InFlight::default();
        let a = in_flight.ticket();
        let b = StagedDoc::new(EventDoc::default(), in_flight.ticket());
        assert_eq!(in_flight.queued(), 2);
        drop(a);
        assert_eq!(in_flight.queued(), 1);
        drop(b);
        assert_eq!(in_flight.queued(), 0);
        assert_eq!(in_flight.wait_for_room(), Wait::Immediate);
    }

    #[test]
    fn a_full_queue_waits_until_a_ticket_returns() {
        let in_flight = InFlight::default();
        let tickets: Vec<Ticket> = (0..=MAX_IN_FLIGHT_DOCS)
            .map(|_| in_flight.ticket())
            .collect();
        let ready = Arc::new(std::sync::Barrier::new(2));
        let releaser_ready = Arc::clone(&ready);
        let releaser = std::thread::spawn(move || {
            releaser_ready.wait();
            // Long enough that the waiting side is surely in its loop on a loaded machine.
            std::thread::sleep(Duration::from_millis(200));
            drop(tickets);
        });
        ready.wait();
        assert_eq!(
            in_flight.wait_for_room(),
            Wait::Waited,
            "a full queue must wait"
        );
        // Room as soon as the first ticket returned; the rest follow.
        assert!(in_flight.queued() <= MAX_IN_FLIGHT_DOCS);
        assert!(releaser.join().is_ok());
        assert_eq!(in_flight.queued(), 0);
    }

    /// Regression guard: indexing threads that died with documents queued must not hang the
    /// caller; it hands over and gets their error.
    #[test]
    fn a_queue_that_never_drains_stops_waiting_after_the_stall_timeout() {
        let in_flight = InFlight {
            stall_timeout: Duration::from_millis(50),
            ..InFlight::default()
        };
        let _stuck: Vec<Ticket> = (0..=MAX_IN_FLIGHT_DOCS)
            .map(|_| in_flight.ticket())
            .collect();
        let t0 = std::time::Instant::now();
        assert_eq!(in_flight.wait_for_room(), Wait::Stalled);
        assert!(t0.elapsed() >= Duration::from_millis(50));
    }
}
