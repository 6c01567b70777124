//! The notes domain: what a note message is, when it is valid, whose it is, how it is stored
//! and read back. It knows nothing about Lambda; [`NotesHandler`] plugs it into the batch
//! engine, and the sync API (`crate::api`) reads through [`Feed`].

mod feed;
mod handler;
mod message;
mod owner;
mod queue;
mod store;

pub use feed::{BadCursor, Change, Cursor, Feed, MAX_PAGE, Page, StoredNote, StoredRejection};
pub use handler::NotesHandler;
pub use message::{
    Identity, Invalid, MAX_BODY_BYTES, MAX_CLIENT_ID_BYTES, MAX_ID_BYTES, MAX_TITLE_BYTES, Note, NoteMessage, Op,
    SCHEMA_VERSION,
};
pub use owner::{MAX_OWNER_BYTES, OWNER_ATTRIBUTE, Owner};
pub use queue::{
    MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, Outgoing, QueueSender, Sent, batches, fifo_deduplication_id, fifo_group_id,
};
pub use store::{
    DEFAULT_REJECTION_TTL, DynamoNoteStore, NoteStore, Rejection, StoreError, Written, change_order, note_key,
    rejection_key, table,
};
