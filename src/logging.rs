//! Log set-up for both entry points.
//!
//! The worker's own events follow the requested level, while dependencies are
//! held at WARN: the SDK's and HTTP stack's DEBUG output holds request
//! internals such as access key ids, ARNs and endpoints, which must not
//! reach the logs. `RUST_LOG`, when set, replaces the whole filter; it is
//! meant for debugging on a workstation.

use tracing_subscriber::EnvFilter;

/// Lambda: level from `AWS_LAMBDA_LOG_LEVEL` (default INFO), JSON lines when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, otherwise text without timestamps (Lambda
/// adds its own). Everything goes to stdout, which Lambda ships to
/// CloudWatch Logs.
pub fn init_lambda() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map_or("info", |l| level_name(&l));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| worker_filter(level));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.without_time().init();
    }
}

/// Command line: text on stderr (stdout carries results), INFO by default.
pub fn init_cli() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| worker_filter("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// The worker's own events (and the Lambda runtime's) at `level`, every
/// dependency at WARN.
pub fn worker_filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("warn,cdn_log_delivery={level},lambda_runtime={level}"))
}

/// Lambda's level names in tracing's terms; FATAL has no equal and maps to
/// ERROR, anything unknown to INFO.
fn level_name(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::level_name;

    #[test]
    fn lambda_levels_map_to_tracing_levels() {
        assert_eq!(level_name("DEBUG"), "debug");
        assert_eq!(level_name("fatal"), "error");
        assert_eq!(level_name("verbose"), "info");
    }
}
