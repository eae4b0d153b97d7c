//! `cargo xtask bench` (or `cargo run --release -p courier-bench`): courier
//! against two hand-written Redis baselines (same-work and pipelined) and,
//! with `--peers`, BullMQ, scenario by scenario.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = courier_bench::Args::parse();
    match courier_bench::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
