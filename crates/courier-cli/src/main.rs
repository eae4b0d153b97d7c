//! The `courier` operator binary: parses arguments and hands them to
//! [`courier_cli::run`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = courier_cli::Cli::parse();
    let mut out = std::io::stdout();
    match courier_cli::run(cli, &mut out).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
