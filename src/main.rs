use std::process::ExitCode;

// One thread: the worker handles one batch at a time and waits on the
// network or the rate limiter almost always, so a second thread only adds
// cross-thread wake-ups, which cost CPU on every AWS call.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Inside Lambda the runtime API address is always set; anywhere else the
    // binary is a command-line tool.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        cdn_log_delivery::lambda::main().await
    } else {
        cdn_log_delivery::cli::main().await
    }
}
