//! `cargo xtask soak --minutes N`: the contact-center pipeline for N
//! minutes with random faults, then checks for losses, duplicates and
//! leaks (see `contact_center::soak`). Exits non-zero when a check fails.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = contact_center::soak::SoakArgs::parse();
    match contact_center::soak::run(args).await {
        Ok(report) if report.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
