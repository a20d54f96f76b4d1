//! A worker's open WebSocket connections, by the serial number of their ids: what the
//! `@connections` API reads (`GET`), sends to (`POST`) and closes (`DELETE`). Per worker
//! (thread-local, like everything of a core): a message for a connection of another core is
//! carried there first (see [`crate::websocket::registry::deliver`]'s callers).
//!
//! An entry is small: its outbox is empty but while a message waits to be written.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    rc::Rc,
    task::Waker,
};

use rustc_hash::FxHashMap;

/// What the management API can ask of a connection.
pub enum Outgoing {
    /// A message to send (a text frame when it is UTF-8, else binary).
    Message(Vec<u8>),
    /// Close the connection (`DELETE @connections/{id}`).
    Close,
}

/// One open connection, as its session and the management API share it.
pub struct Entry {
    /// The API the connection belongs to: the gateway's `@connections` of another API does
    /// not reach it (its callback URL is its own API's, as on AWS).
    pub api: std::sync::Arc<str>,
    /// Milliseconds since the epoch.
    pub connected_at: u64,
    /// Milliseconds since the epoch of the last message either way.
    pub last_active: Cell<u64>,
    pub source_ip: Box<str>,
    pub user_agent: Box<str>,
    outbox: RefCell<VecDeque<Outgoing>>,
    waker: Cell<Option<Waker>>,
}

impl Entry {
    pub fn new(
        api: std::sync::Arc<str>,
        connected_at: u64,
        source_ip: Box<str>,
        user_agent: Box<str>,
    ) -> Entry {
        Entry {
            api,
            connected_at,
            last_active: Cell::new(connected_at),
            source_ip,
            user_agent,
            outbox: RefCell::new(VecDeque::new()),
            waker: Cell::new(None),
        }
    }

    /// Queues `out` and wakes the session.
    pub fn push(&self, out: Outgoing) {
        self.outbox.borrow_mut().push_back(out);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The next queued item, if any.
    pub fn pop(&self) -> Option<Outgoing> {
        self.outbox.borrow_mut().pop_front()
    }

    pub fn has_outgoing(&self) -> bool {
        !self.outbox.borrow().is_empty()
    }

    /// Wakes `w` when something is queued.
    pub fn register(&self, w: &Waker) {
        self.waker.set(Some(w.clone()));
    }
}

thread_local! {
    static OPEN: RefCell<FxHashMap<u64, Rc<Entry>>> = RefCell::new(FxHashMap::default());
}

/// Adds a connection; it stays until [`remove`].
pub fn insert(serial: u64, entry: Rc<Entry>) {
    OPEN.with(|m| m.borrow_mut().insert(serial, entry));
}

pub fn remove(serial: u64) {
    OPEN.with(|m| m.borrow_mut().remove(&serial));
}

/// The connection `serial` of this worker.
pub fn get(serial: u64) -> Option<Rc<Entry>> {
    OPEN.with(|m| m.borrow().get(&serial).cloned())
}

/// How many connections this worker holds.
pub fn count() -> usize {
    OPEN.with(|m| m.borrow().len())
}
