//! The command line: `serve` (the default), `migrate`, and the operator groups.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ConfigArgs;

/// tessera: a standalone token-issuing authorization server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, applying pending migrations first (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
}

/// Runs the CLI; errors print one line and exit non-zero.
pub fn main(cli: Cli) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.config.into_settings()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let pool = crate::store::connect(&settings.database, 1)?;
            let mut conn = pool.get()?;
            let applied = crate::store::migrate(&mut conn)?;
            println!("{}", serde_json::json!({ "applied": applied }));
            Ok(())
        }
    }
}

fn serve(settings: crate::config::Settings) -> anyhow::Result<()> {
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let app = crate::app::Application::build(settings)?;
        log::info!("tessera listening on port {}", app.port());
        app.run_until_stopped().await?;
        Ok(())
    })
}
