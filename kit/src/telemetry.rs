//! Logging: readable by default, JSON with `LOG_FORMAT=json`, level by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls, as in tests, are no-ops).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _already_set = if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
