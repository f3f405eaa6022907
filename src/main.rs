use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = invite_bot::cli::Cli::parse();
    invite_bot::app::telemetry::init(cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(invite_bot::cli::run(cli))
}
