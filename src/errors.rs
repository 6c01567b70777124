//! Error text for logs and answers: an error and all its sources.

/// An error and its sources, joined by `: `. The AWS SDK's top-level messages ("dispatch
/// failure", "service error") do not say what went wrong; their sources do.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
