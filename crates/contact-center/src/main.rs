//! `cargo run --release -p contact-center`: runs a day of the contact center
//! (or, with `--scenarios`, the seed's three cases) and prints its report.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = contact_center::Args::parse();
    let lost = if args.scenarios {
        contact_center::scenarios::run(args)
            .await
            .map(|days| days.iter().map(|d| d.report.lost).sum::<u64>())
    } else {
        contact_center::run(args).await.map(|report| report.lost)
    };
    match lost {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
