//! `rustorium`: the command-line client.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rustorium_node::cli::smt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rustorium", version, about = "Rustorium command-line client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a field-mode sparse Merkle tree offline and print its root and proofs as JSON.
    Smt {
        /// Leaves sit at depth <= max-levels - 1 (circom SMTVerifier nLevels).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=255))]
        max_levels: u16,
        /// JSON array of {"key": "<decimal>", "value": "<decimal>"}.
        #[arg(long)]
        entries: PathBuf,
        /// A key (decimal) to prove; repeat for several.
        #[arg(long = "prove", value_name = "KEY")]
        prove: Vec<String>,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Smt {
            max_levels,
            entries,
            prove,
        } => {
            let text = std::fs::read_to_string(&entries).with_context(|| format!("reading {}", entries.display()))?;
            let output = smt::run(max_levels, &text, &prove)?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
