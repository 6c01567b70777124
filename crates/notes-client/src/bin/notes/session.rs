//! `notes login`, `logout`, `whoami`, and the sign-in part of `status`. No token and no password
//! is ever printed; the password comes from a prompt without echo or from stdin, never from an
//! argument.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use notes_client::auth::{self, AuthError};
use notes_client::outbox::Outbox;

use super::App;
use super::app::{API_URL, REGION, USER_POOL_CLIENT_ID};
use super::output::duration;

/// The sign-in and the remote, as `status` and `whoami` show them.
#[derive(Debug, serde::Serialize)]
pub struct RemoteSummary {
    /// `api` (the signed-in user), `sqs` (a trusted service) or `none`.
    mode: &'static str,
    api_url: Option<String>,
    queue_url: Option<String>,
    /// Whom the database's notes belong to.
    owner: Option<String>,
    username: Option<String>,
    signed_in: bool,
    /// Seconds the access token has left (it is renewed when it nears expiry).
    token_expires_in_s: Option<i64>,
    last_pull_at_ms: Option<i64>,
    last_pull_error: Option<String>,
}

pub fn remote_summary(app: &App, outbox: &Outbox) -> anyhow::Result<RemoteSummary> {
    let api_url = app.setting(outbox, app.cli.api_url.as_ref(), API_URL)?;
    let session = outbox.session()?;
    let mode = match (&api_url, &app.cli.queue_url) {
        (Some(_), _) => "api",
        (None, Some(_)) => "sqs",
        _ => "none",
    };
    Ok(RemoteSummary {
        mode,
        api_url,
        queue_url: app.cli.queue_url.clone(),
        owner: outbox.owner()?,
        username: session.as_ref().map(|s| s.username.clone()),
        signed_in: session.is_some(),
        token_expires_in_s: session.as_ref().map(|s| (s.expires_at_ms - now_ms()) / 1000),
        last_pull_at_ms: outbox.meta("last_pull_at_ms")?.and_then(|t| t.parse().ok()),
        last_pull_error: outbox.meta("last_pull_error")?.filter(|e| !e.is_empty()),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Lines for `status`.
pub fn print_summary(remote: &RemoteSummary) {
    match remote.mode {
        "api" => {
            let api = remote.api_url.as_deref().unwrap_or_default();
            match (&remote.username, remote.signed_in) {
                (Some(user), true) => println!("sync      API {api}, signed in as {user}"),
                _ => println!("sync      API {api}, signed out: run notes login"),
            }
        }
        "sqs" => println!(
            "sync      queue {} as owner {}",
            remote.queue_url.as_deref().unwrap_or_default(),
            remote.owner.as_deref().unwrap_or("(none: --owner)")
        ),
        _ => println!("sync      none configured (notes login, or --queue-url and --owner)"),
    }
    if let Some(at) = remote.last_pull_at_ms {
        let ago = duration(((now_ms() - at).max(0) / 1000) as u64);
        match &remote.last_pull_error {
            Some(error) => println!("pulled    {ago} ago, failed: {error}"),
            None => println!("pulled    {ago} ago"),
        }
    }
}

fn prompt(question: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no terminal to ask for the {question}: pass it (see notes login --help)"
    );
    eprint!("{question}: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_owned())
}

/// `notes login`: signs in, stores the tokens and the settings it used.
pub async fn login(app: &App, username: Option<&str>, password_stdin: bool) -> anyhow::Result<()> {
    let mut outbox = app.open()?;
    let username = match username {
        Some(u) => u.to_owned(),
        None => prompt("user name")?,
    };
    anyhow::ensure!(!username.is_empty(), "no user name");
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "no terminal to ask for the password: pipe it with --password-stdin"
        );
        rpassword::prompt_password("password: ").context("cannot read the password")?
    };
    anyhow::ensure!(!password.is_empty(), "no password");
    let idp = app.cognito(&outbox).await?;
    let session = match auth::sign_in(&idp, &mut outbox, &username, &password).await {
        Err(AuthError::SignInAgain { reason }) => anyhow::bail!("sign-in refused: {reason}"),
        other => other?,
    };
    // What the later commands need, so they need no flags.
    for (key, value) in [
        (API_URL, app.cli.api_url.clone()),
        (USER_POOL_CLIENT_ID, app.cli.user_pool_client_id.clone()),
        (REGION, Some(app.region(&outbox)?)),
    ] {
        if let Some(value) = value {
            outbox.set_meta(key, &value)?;
        }
    }
    println!("signed in as {} ({})", session.username, session.sub);
    if app.setting(&outbox, app.cli.api_url.as_ref(), API_URL)?.is_none() {
        eprintln!("notes: no API yet: pass --api-url (the stack's ApiUrl output) to sync");
    }
    Ok(())
}

/// `notes logout`: revokes the refresh token (best effort) and forgets the tokens.
pub async fn logout(app: &App) -> anyhow::Result<()> {
    let outbox = app.open()?;
    let Some(session) = outbox.session()? else {
        println!("not signed in");
        return Ok(());
    };
    if let Ok(idp) = app.cognito(&outbox).await
        && let Err(e) = idp.revoke(&session.refresh_token).await
    {
        eprintln!("notes: warning: the refresh token was not revoked ({e}); it is forgotten here");
    }
    outbox.clear_session()?;
    let status = outbox.status()?;
    println!("signed out; every note is kept here ({} pending: sent after the next notes login)", status.pending);
    Ok(())
}

/// `notes whoami`.
pub fn whoami(app: &App, json: bool) -> anyhow::Result<()> {
    let outbox = app.open()?;
    let summary = remote_summary(app, &outbox)?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    match (&summary.username, outbox.session()?) {
        (Some(user), Some(session)) => {
            println!("{user} ({})", session.sub);
            if let Some(api) = &summary.api_url {
                println!("api       {api}");
            }
            let left = summary.token_expires_in_s.unwrap_or(0);
            if left > 0 {
                println!("token     valid for {} (renewed before it expires)", duration(left as u64));
            } else {
                println!("token     expired (renewed at the next sync)");
            }
        }
        _ => {
            println!("not signed in");
            if let Some(owner) = &summary.owner {
                println!("notes of  {owner}");
            }
        }
    }
    Ok(())
}
