//! Sign-in and renewal against a scripted identity provider.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::jwt::token;
use super::*;
use crate::outbox::OpenOptions;

/// Issues tokens for `sub` that expire `lifetime_s` from now; refreshes fail with `refresh_error`.
struct FakeIdp {
    sub: String,
    lifetime_s: i64,
    refreshes: AtomicU32,
    refresh_error: Mutex<Option<fn() -> AuthError>>,
}

impl FakeIdp {
    fn new(sub: &str, lifetime_s: i64) -> Self {
        Self { sub: sub.into(), lifetime_s, refreshes: AtomicU32::new(0), refresh_error: Mutex::new(None) }
    }

    fn tokens(&self, refresh: Option<&str>) -> Tokens {
        let exp = now_ms() / 1000 + self.lifetime_s;
        Tokens {
            access_token: token(&self.sub, exp),
            refresh_token: refresh.map(str::to_owned),
            expires_in_s: self.lifetime_s.max(0) as u64,
        }
    }
}

impl IdentityProvider for FakeIdp {
    async fn sign_in(&self, username: &str, password: &str) -> Result<Tokens, AuthError> {
        if password != "correct horse" {
            return Err(AuthError::SignInAgain { reason: format!("NotAuthorizedException: {username}: incorrect") });
        }
        Ok(self.tokens(Some("refresh-1")))
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        assert_eq!(refresh_token, "refresh-1");
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        if let Some(error) = *self.refresh_error.lock().unwrap() {
            return Err(error());
        }
        Ok(self.tokens(None))
    }
}

fn open(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap()
}

#[tokio::test]
async fn sign_in_keeps_the_tokens_in_the_database_and_never_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let idp = FakeIdp::new("sub-a", 3600);
    let err = sign_in(&idp, &mut outbox, "alice", "wrong").await.unwrap_err();
    assert!(matches!(err, AuthError::SignInAgain { .. }), "{err}");
    assert!(outbox.session().unwrap().is_none(), "nothing stored for a refused sign-in");

    let session = sign_in(&idp, &mut outbox, "alice", "correct horse").await.unwrap();
    assert_eq!((session.sub.as_str(), session.username.as_str()), ("sub-a", "u-sub-a"));
    assert_eq!(open(&dir).session().unwrap(), Some(session.clone()), "kept across processes");
    assert_eq!(outbox.owner().unwrap().as_deref(), Some("sub-a"), "the database is the user's");
    let shown = format!("{session:?} {:?}", idp.tokens(Some("refresh-1")));
    assert!(!shown.contains(&session.access_token) && !shown.contains("refresh-1"), "{shown}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["notes.db", "notes.db-wal", "notes.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }
}

#[tokio::test]
async fn another_user_cannot_sign_in_to_a_database_holding_the_first_ones_notes() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    sign_in(&FakeIdp::new("sub-a", 3600), &mut outbox, "alice", "correct horse").await.unwrap();
    outbox.add("alice's", "pending").unwrap();
    outbox.clear_session().unwrap();
    let err = sign_in(&FakeIdp::new("sub-b", 3600), &mut outbox, "bob", "correct horse").await.unwrap_err();
    assert!(err.to_string().contains("holds the notes of another user (sub-a)"), "{err}");
    assert!(outbox.session().unwrap().is_none(), "bob's tokens were not stored");

    // An empty database may change hands.
    let empty = tempfile::tempdir().unwrap();
    let mut fresh = open(&empty);
    sign_in(&FakeIdp::new("sub-a", 3600), &mut fresh, "alice", "correct horse").await.unwrap();
    sign_in(&FakeIdp::new("sub-b", 3600), &mut fresh, "bob", "correct horse").await.unwrap();
    assert_eq!(fresh.owner().unwrap().as_deref(), Some("sub-b"));
}

#[tokio::test]
async fn an_access_token_near_its_expiry_is_renewed_without_the_user_and_a_fresh_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let fresh = FakeIdp::new("sub-a", 3600);
    sign_in(&fresh, &mut outbox, "alice", "correct horse").await.unwrap();
    let auth = Authenticator::new(fresh, open(&dir)).unwrap();
    let token = auth.access_token().await.unwrap();
    assert_eq!(auth.idp.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(token, outbox.session().unwrap().unwrap().access_token);

    // Tokens that live 60 s: inside the renewal margin from the start.
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let short = FakeIdp::new("sub-a", 60);
    let before = sign_in(&short, &mut outbox, "alice", "correct horse").await.unwrap();
    let auth = Authenticator::new(short, open(&dir)).unwrap();
    let token = auth.access_token().await.unwrap();
    assert_eq!(auth.idp.refreshes.load(Ordering::SeqCst), 1);
    let after = outbox.session().unwrap().unwrap();
    assert_eq!(after.access_token, token, "the renewed token is stored");
    assert_eq!(after.refresh_token, before.refresh_token, "the refresh token is kept");
    auth.refresh().await.unwrap();
    assert_eq!(auth.idp.refreshes.load(Ordering::SeqCst), 2, "a 401 renews at once");
}

#[tokio::test]
async fn a_refresh_refused_for_good_says_sign_in_again_and_keeps_every_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let idp = FakeIdp::new("sub-a", 60);
    sign_in(&idp, &mut outbox, "alice", "correct horse").await.unwrap();
    let note = outbox.add("kept", "always").unwrap();

    // Unavailable: try again later, the session stays.
    *idp.refresh_error.lock().unwrap() = Some(|| AuthError::Unavailable { reason: "timeout".into() });
    let auth = Authenticator::new(idp, open(&dir)).unwrap();
    assert!(matches!(auth.access_token().await, Err(AuthError::Unavailable { .. })));
    assert!(outbox.session().unwrap().is_some());

    // Revoked: sign in again; the tokens are forgotten, the notes are not.
    *auth.idp.refresh_error.lock().unwrap() =
        Some(|| AuthError::SignInAgain { reason: "NotAuthorizedException: Refresh Token has been revoked".into() });
    let err = auth.access_token().await.unwrap_err();
    assert!(err.to_string().starts_with("sign in again (notes login): NotAuthorizedException"), "{err}");
    assert!(outbox.session().unwrap().is_none());
    assert!(matches!(auth.access_token().await, Err(AuthError::NotSignedIn)));
    assert_eq!(outbox.note(&note.id).unwrap().unwrap().body, "always");
    assert_eq!(outbox.pending().unwrap().len(), 1, "still queued for after the next sign-in");
}
