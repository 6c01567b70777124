//! The consumer's tracing output: JSON lines on stdout, one per event, fields at the top
//! level, beside the engine's own lines (which it writes through its `LogSink`).

/// Installs the subscriber for the process; `filter` as `RUST_LOG` would give it.
pub fn init_json_logs(filter: tracing_subscriber::EnvFilter) {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .init();
}
