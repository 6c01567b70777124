//! A fake of the whole server side behind the [`Transport`] trait, for the two-device tests: the
//! API takes changes (validated with the consumer's own parser), a queue holds them until the
//! test delivers them, the consumer applies them in the table's order or rejects them, and the
//! pull returns the owner's notes and rejections since a cursor, repeating the last `overlap`
//! of them as the real pull repeats its last W seconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use notes_sync::notes::{NoteMessage, Op};

use crate::changes::{Change, Page, ServerNote, ServerRejection, order};
use crate::sender::{EntryResult, Limits, Outgoing, PullResult, Transport, TransportError};

#[derive(Default)]
struct Table {
    /// Accepted, not yet applied: what the queue holds.
    queue: Vec<String>,
    /// The stored notes, with the stamp of the write that stored them.
    notes: BTreeMap<String, (u64, ServerNote)>,
    rejections: Vec<(u64, ServerRejection)>,
    clock: u64,
    /// Note ids whose changes the consumer dead-letters.
    poisoned: Vec<String>,
    down: bool,
}

/// The server: shared by the devices of one user.
#[derive(Clone, Default)]
pub struct Server {
    table: Arc<Mutex<Table>>,
    /// Items a pull repeats before the cursor.
    pub overlap: u64,
    /// Items per page.
    pub page: usize,
}

impl Server {
    pub fn new() -> Self {
        Self { overlap: 2, page: 3, ..Self::default() }
    }

    /// A device of this server's user.
    pub fn device(&self) -> Device {
        Device { server: self.clone() }
    }

    /// The consumer applies everything queued, in the order given (`None`: as queued).
    pub fn deliver(&self) {
        let mut t = self.table.lock().unwrap();
        let queue = std::mem::take(&mut t.queue);
        for body in queue {
            let m = NoteMessage::parse(&body).expect("the API validated it");
            t.clock += 1;
            let stamp = t.clock;
            if t.poisoned.iter().any(|p| *p == m.note.id) {
                t.rejections.push((
                    stamp,
                    ServerRejection {
                        id: m.note.id.to_string(),
                        version: m.note.version,
                        client_id: m.client_id.to_string(),
                        kind: "invalid_field".into(),
                        reason: "note.body is poisoned in this test".into(),
                    },
                ));
                continue;
            }
            let newer = t.notes.get(&*m.note.id).is_none_or(|(_, s)| {
                order(m.note.version, &m.note.updated_at, &m.client_id) > order(s.version, &s.updated_at, &s.client_id)
            });
            if newer {
                let deleted = m.op == Op::Delete;
                let note = ServerNote {
                    id: m.note.id.to_string(),
                    version: m.note.version,
                    updated_at: m.note.updated_at.to_string(),
                    client_id: m.client_id.to_string(),
                    deleted,
                    title: (!deleted).then(|| m.note.title.as_deref().unwrap_or_default().to_owned()),
                    body: (!deleted).then(|| m.note.body.as_deref().unwrap_or_default().to_owned()),
                };
                t.notes.insert(note.id.clone(), (stamp, note));
            }
        }
    }

    /// Swaps the queue's order (two devices' changes arriving the other way round).
    pub fn reverse_queue(&self) {
        self.table.lock().unwrap().queue.reverse();
    }

    pub fn poison(&self, note_id: &str) {
        self.table.lock().unwrap().poisoned.push(note_id.to_owned());
    }

    pub fn set_down(&self, down: bool) {
        self.table.lock().unwrap().down = down;
    }

    /// The stored note, as the table has it.
    pub fn stored(&self, id: &str) -> Option<ServerNote> {
        self.table.lock().unwrap().notes.get(id).map(|(_, n)| n.clone())
    }

    fn page(&self, since: Option<&str>) -> Result<Page, TransportError> {
        let t = self.table.lock().unwrap();
        if t.down {
            return Err(TransportError::unreachable("connection refused"));
        }
        let since: u64 = since.map_or(0, |c| c.trim_start_matches('c').parse().unwrap());
        let mut items: Vec<(u64, Change)> = t
            .notes
            .values()
            .map(|(s, n)| (*s, Change::Note(n.clone())))
            .chain(t.rejections.iter().map(|(s, r)| (*s, Change::Rejection(r.clone()))))
            .filter(|(s, _)| *s > since)
            .collect();
        items.sort_by_key(|(s, _)| *s);
        let more = items.len() > self.page;
        items.truncate(self.page);
        let last = items.last().map_or(since, |(s, _)| *s);
        // Like the real safe point: the next pull starts a little before what was read.
        let cursor = if more { last } else { last.saturating_sub(self.overlap).max(since) };
        Ok(Page { changes: items.into_iter().map(|(_, c)| c).collect(), cursor: format!("c{cursor}"), more })
    }
}

/// One device's view of the API.
pub struct Device {
    server: Server,
}

impl Transport for Device {
    fn limits(&self) -> Limits {
        Limits { max_entries: 4, max_bytes: 1 << 20 }
    }

    fn pull_origin(&self) -> Option<String> {
        Some("fake api as user".into())
    }

    fn pull(&self, since: Option<&str>) -> Option<impl std::future::Future<Output = PullResult> + Send> {
        let page = self.server.page(since);
        Some(async move { page })
    }

    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<Vec<EntryResult>, TransportError> {
        let mut t = self.server.table.lock().unwrap();
        if t.down {
            return Err(TransportError::unreachable("connection refused"));
        }
        Ok(batch
            .iter()
            .map(|m| match NoteMessage::parse(m.body) {
                Ok(_) => {
                    t.queue.push(m.body.to_owned());
                    EntryResult::Accepted
                }
                Err(e) => EntryResult::Rejected { kind: e.kind().into(), reason: e.to_string() },
            })
            .collect())
    }
}
