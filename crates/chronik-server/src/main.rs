//! The `chronik-server` binary.

use chronik_server::config::{Cli, Command, Config};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::Check { data_dir }) = cli.command.take() {
        return check(&data_dir);
    }
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chronik-server: {e:#}");
            return ExitCode::from(2);
        }
    };
    match chronik_server::run::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chronik-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(data_dir: &std::path::Path) -> ExitCode {
    if !data_dir.is_dir() {
        eprintln!(
            "chronik-server check: {} is not a directory",
            data_dir.display()
        );
        return ExitCode::from(2);
    }
    let report = chronik_storage::check::check_data_dir(data_dir);
    for f in &report.findings {
        println!("{}: {}", f.path.display(), f.problem);
    }
    println!(
        "checked {} partitions, {} segments, {} batches: {} problem(s)",
        report.partitions,
        report.segments,
        report.batches,
        report.findings.len()
    );
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
