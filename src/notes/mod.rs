//! The notes domain: what a note message is, when it is valid, and how it is stored.
//! It knows nothing about Lambda; [`NotesHandler`] plugs it into the batch engine.

mod handler;
mod message;
mod owner;
mod store;

pub use handler::NotesHandler;
pub use message::{
    Invalid, MAX_BODY_BYTES, MAX_CLIENT_ID_BYTES, MAX_ID_BYTES, MAX_TITLE_BYTES, Note, NoteMessage, Op, SCHEMA_VERSION,
};
pub use owner::{MAX_OWNER_BYTES, OWNER_ATTRIBUTE, Owner};
pub use store::{DynamoNoteStore, NoteStore, StoreError, Written, change_order};
