//! The `notes` client's sign-in against moto's Cognito, as an end user with no AWS credentials:
//! `login` (unsigned `InitiateAuth`), tokens kept in the database (mode 0600) and never printed,
//! renewal without the user, a revoked refresh token ("sign in again", every note kept), and a
//! database that belongs to one user.

mod common;

use common::Emulator;
use common::cli::NotesCli;
use common::cognito::Cognito;
use notes_client::outbox::{OpenOptions, Outbox};

/// A user pool with a public app client in a moto of its own.
struct Pool {
    _moto: Emulator,
    cognito: Cognito,
}

impl Pool {
    async fn start() -> Self {
        let moto = Emulator::moto();
        let cognito = Cognito::new(&moto.endpoint()).await;
        Self { _moto: moto, cognito }
    }

    /// A device whose API is at `api_url`.
    fn device(&self, api_url: &str) -> NotesCli {
        NotesCli::end_user(api_url, &self.cognito.endpoint, &self.cognito.client_id)
    }
}

/// An API that cannot be reached: sign-in needs only Cognito.
fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

fn session(cli: &NotesCli) -> notes_client::outbox::StoredSession {
    Outbox::open(&cli.db, &OpenOptions::default()).unwrap().session().unwrap().expect("signed in")
}

/// Makes the stored access token look expired, as it is an hour after sign-in.
fn expire(cli: &NotesCli) {
    rusqlite::Connection::open(&cli.db).unwrap().execute("UPDATE session SET expires_at_ms = 0", []).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_unsigned_needs_no_aws_credentials_and_never_shows_a_token_or_the_password() {
    crate::require_emulators!();
    let pool = Pool::start().await;
    let alice = pool.cognito.user("alice").await;
    let cli = pool.device(&nowhere());

    let run = cli.login("alice", &alice.password);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.trim(), format!("signed in as alice ({})", alice.sub));
    let stored = session(&cli);
    assert_eq!((stored.username.as_str(), stored.sub.as_str()), ("alice", alice.sub.as_str()));
    let whoami = cli.ok(&["whoami", "--json"], 0);
    let status = cli.ok(&["status", "--json"], 0);
    for out in [&run.stdout, &run.stderr, &whoami.stdout, &whoami.stderr, &status.stdout] {
        for secret in [stored.access_token.as_str(), stored.refresh_token.as_str(), alice.password.as_str()] {
            assert!(!out.contains(secret), "a secret was printed: {out}");
        }
    }
    assert_eq!(whoami.json()["username"], "alice");
    assert_eq!(status.json()["remote"]["mode"], "api");
    assert_eq!(status.json()["remote"]["signed_in"], true);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cli.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the tokens' file is the user's alone");

    // A wrong password is refused; a password is never an argument; no terminal, no prompt.
    let wrong = cli.login("alice", "Wrong-horse-9");
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(wrong.stderr.contains("sign-in refused: NotAuthorizedException"), "{}", wrong.stderr);
    assert_eq!(cli.run(&["login", "--username", "alice", "--password", &alice.password]).code, Some(2));
    let run = cli.ok(&["login", "--username", "alice"], 1);
    assert!(run.stderr.contains("no terminal to ask for the password: pipe it with --password-stdin"), "{run:?}");
    assert_eq!(session(&cli), stored, "a failed sign-in changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_renewed_without_the_user() {
    crate::require_emulators!();
    let pool = Pool::start().await;
    let alice = pool.cognito.user("alice").await;
    let cli = pool.device(&nowhere());
    assert_eq!(cli.login("alice", &alice.password).code, Some(0));
    let before = session(&cli);
    cli.ok(&["add", "--title", "t", "--body", "b"], 0);
    expire(&cli);

    // The sync renews the token from the refresh token, then finds the API unreachable.
    let run = cli.ok(&["sync"], 3);
    assert!(run.stdout.contains("API unreachable"), "{run:?}");
    let after = session(&cli);
    assert_ne!(after.access_token, before.access_token, "renewed");
    assert_eq!(after.refresh_token, before.refresh_token);
    assert!(after.expires_at_ms > before.expires_at_ms - 3_600_000 + 60_000, "valid again: {after:?}");
    let why = cli.status()["status"]["last_error"].as_str().unwrap().to_owned();
    assert!(why.contains("push") || why.contains("connect") || why.contains("error sending request"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_says_sign_in_again_with_its_exit_code_and_keeps_every_note() {
    crate::require_emulators!();
    let pool = Pool::start().await;
    let alice = pool.cognito.user("alice").await;
    let cli = pool.device(&nowhere());
    assert_eq!(cli.login("alice", &alice.password).code, Some(0));
    let ids: Vec<String> = (0..2)
        .map(|i| cli.ok(&["add", "--title", &format!("n{i}"), "--body", "b"], 0).stdout.trim().to_owned())
        .collect();
    pool.cognito.sign_out("alice").await;
    expire(&cli);

    let run = cli.ok(&["sync"], 6);
    assert!(run.stderr.contains("sign in again (notes login)"), "{run:?}");
    assert!(run.stderr.contains("Refresh Token has been revoked"), "{run:?}");
    let listed = cli.ok(&["list", "--json"], 0).json();
    let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 2);
    assert!(ids.iter().all(|id| listed.contains(&id.as_str())), "every note kept");
    assert_eq!(cli.status()["status"]["pending"], 2);
    assert_eq!(cli.ok(&["whoami", "--json"], 0).json()["signed_in"], false);
    assert_eq!(cli.ok(&["sync"], 6).code, Some(6), "still signed out");

    // Signing in again brings the sync back (here to an unreachable API: still pending, 3).
    assert_eq!(cli.login("alice", &alice.password).code, Some(0));
    cli.ok(&["sync"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_keeps_the_notes_and_another_user_cannot_take_the_database_over() {
    crate::require_emulators!();
    let pool = Pool::start().await;
    let (alice, bob) = (pool.cognito.user("alice").await, pool.cognito.user("bob").await);
    let cli = pool.device(&nowhere());
    assert_eq!(cli.login("alice", &alice.password).code, Some(0));
    let id = cli.ok(&["add", "--title", "alice's", "--body", "private"], 0).stdout.trim().to_owned();
    let run = cli.ok(&["logout"], 0);
    assert!(run.stdout.contains("signed out; every note is kept here (1 pending"), "{run:?}");
    assert_eq!(cli.ok(&["whoami", "--json"], 0).json()["signed_in"], false);

    let run = cli.login("bob", &bob.password);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains(&format!("this database holds the notes of another user ({})", alice.sub)), "{run:?}");
    assert_eq!(cli.ok(&["whoami", "--json"], 0).json()["signed_in"], false, "bob is not signed in");
    assert_eq!(cli.ok(&["show", &id, "--json"], 0).json()["body"], "private");
}
