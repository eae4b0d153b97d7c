//! `cargo run --release -p contact-center`: runs a day of the contact center
//! and prints its report.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = contact_center::Args::parse();
    match contact_center::run(args).await {
        Ok(report) if report.lost == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
