//! The `chronik-server` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = chronik_server::config::Cli::parse();
    let config = match chronik_server::config::Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chronik-server: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match chronik_server::run::run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chronik-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
