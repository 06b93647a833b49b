//! `rustorium`: the command-line client.

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use rustorium_node::cli::client::{Client, ConnectArgs};
use rustorium_node::cli::encoding::EncodingArgs;
use rustorium_node::cli::error::{CliError, one_line};
use rustorium_node::cli::kv::{DelArgs, GetArgs, PutArgs};
use rustorium_node::cli::proofs::{ProofArgs, VerifyArgs};
use rustorium_node::cli::transfer::{ExportArgs, ImportArgs};
use rustorium_node::cli::watch::WatchArgs;
use rustorium_node::cli::{kv, proofs, smt, transfer, watch};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Keys and values are UTF-8 text unless --hex (hex bytes) or --field (decimal field elements) is given.
Roots print as 64 hex digits (32 bytes little-endian, iden3's form); --root and --trusted-root also take decimal.

Exit codes: 0 success, 1 error, 3 verification failure (a proof, root or version order that does not check).";

#[derive(Parser)]
#[command(
    name = "rustorium",
    version,
    about = "Rustorium command-line client: proven reads and writes against a rustorium-node",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    encoding: EncodingArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a key; the membership proof of the new value is verified against the new root.
    Put(PutArgs),
    /// Read a key; its membership (or absence) proof is verified before the value is printed.
    Get(GetArgs),
    /// Delete a key; the proof of its absence is verified against the new root.
    Del(DelArgs),
    /// Print the current root, version, max_levels and key mode.
    Root,
    /// Print a key's verified proof as iden3 JSON, iden3 compact hex or circom SMTVerifier inputs.
    Proof(ProofArgs),
    /// Check a saved proof file against a root you trust (offline; exit 0 or 3).
    Verify(VerifyArgs),
    /// Print one line per committed version (fails closed, exit 3, if versions go backwards).
    Watch(WatchArgs),
    /// Write the entries of a JSONL or CSV file in batches, verifying every proof.
    Import(ImportArgs),
    /// Write every entry (or a key range) as JSONL or CSV to stdout.
    Export(ExportArgs),
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

fn run_smt(max_levels: u16, entries: PathBuf, prove: Vec<String>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&entries).with_context(|| format!("reading {}", entries.display()))?;
    let output = smt::run(max_levels, &text, &prove)?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

async fn run_client(connect: ConnectArgs, encoding: EncodingArgs, command: Command) -> Result<(), CliError> {
    let encoding = encoding.encoding();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut note = std::io::stderr();
    if let Command::Verify(args) = &command {
        return proofs::verify(encoding, args, &mut out);
    }
    let mut client = Client::new(&connect)?;
    match command {
        Command::Put(args) => kv::put(&mut client, encoding, &args, &mut out).await,
        Command::Get(args) => kv::get(&mut client, encoding, &args, &mut out).await,
        Command::Del(args) => kv::del(&mut client, encoding, &args, &mut out).await,
        Command::Root => kv::root(&mut client, &mut out).await,
        Command::Proof(args) => proofs::proof(&mut client, encoding, &args, &mut out, &mut note).await,
        Command::Watch(args) => watch::watch(&mut client, &args, &mut out).await,
        Command::Import(args) => transfer::import(&mut client, encoding, &args, &mut out).await,
        Command::Export(args) => transfer::export(&mut client, encoding, &args, &mut out, &mut note).await,
        Command::Verify(_) | Command::Smt { .. } => unreachable!("handled before connecting"),
    }
}

/// A clap usage error as one line: its message without the usage block.
fn usage_error(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let message = text.split("\n\nUsage:").next().unwrap_or(&text);
    let message = message.split("\n\nFor more information").next().unwrap_or(message);
    format!("{} (see --help)", one_line(message))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = error.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = error.print();
                    ExitCode::FAILURE
                }
                _ => {
                    eprintln!("{}", usage_error(&error));
                    ExitCode::FAILURE
                }
            };
        }
    };
    if let Command::Smt {
        max_levels,
        entries,
        prove,
    } = cli.command
    {
        return match run_smt(max_levels, entries, prove) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {}", one_line(&format!("{error:#}")));
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_client(cli.connect, cli.encoding, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}
