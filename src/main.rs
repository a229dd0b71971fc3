use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Inside Lambda the runtime API address is always set; anywhere else the
    // binary is a command-line tool.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        cdn_log_delivery::lambda::main().await
    } else {
        cdn_log_delivery::cli::main().await
    }
}
