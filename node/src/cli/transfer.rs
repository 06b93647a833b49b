//! `rustorium import` (JSONL or CSV, in PutBatch batches, every proof
//! verified, a progress bar on stderr when it is a terminal) and `rustorium
//! export` (Scan, page by page, to JSONL or CSV on stdout).
//!
//! Records are `{"key": K, "value": V}` per JSONL line, or CSV with the
//! header `key,value`; keys and values are written in the command's encoding
//! (text, `--hex` or `--field`), so an export reads back with the same flags.

use super::client::{Client, StoreParams, verify_wire_proof, wire_root};
use super::encoding::{Encoding, leaf_field, root_hex};
use super::error::CliError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustorium_core::Fr;
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_proto::v1;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// A file format of import and export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferFormat {
    /// One `{"key": ..., "value": ...}` object per line.
    Jsonl,
    /// A `key,value` header, then one record per entry.
    Csv,
}

/// `rustorium import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The file to import ("-" for stdin).
    pub file: PathBuf,
    /// jsonl or csv (default: from the file extension).
    #[arg(long, value_enum)]
    pub format: Option<TransferFormat>,
    /// Entries per PutBatch (a batch also closes at 4 MiB of keys and values).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Do not ask for (and verify) a proof per entry.
    #[arg(long)]
    pub no_proofs: bool,
}

/// `rustorium export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: TransferFormat,
    /// First key (inclusive), in the command's encoding.
    #[arg(long)]
    pub start: Option<String>,
    /// End key (exclusive), in the command's encoding.
    #[arg(long)]
    pub end: Option<String>,
    /// Entries per Scan call.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub page: u32,
    /// Prove the export whole: recompute the root from the exported entries and require the
    /// server's root (the same version before and after the export).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub verify: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    key: String,
    value: String,
}

/// One parsed input record.
struct Entry {
    line: u64,
    key: Vec<u8>,
    value: Vec<u8>,
    key_field: Fr,
    value_field: Fr,
    /// Input bytes consumed up to the end of this record.
    offset: u64,
}

const BATCH_BYTES: usize = 4 << 20;

fn infer_format(path: &Path) -> Result<TransferFormat, CliError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => Ok(TransferFormat::Csv),
        Some("jsonl" | "ndjson" | "json") => Ok(TransferFormat::Jsonl),
        _ => Err(CliError::Input(format!(
            "cannot tell the format of {}; pass --format jsonl or --format csv",
            path.display()
        ))),
    }
}

type Records = Box<dyn Iterator<Item = Result<(u64, u64, String, String), CliError>>>;

/// (line, offset after the record, key text, value text) for each record.
fn records(format: TransferFormat, input: Box<dyn Read>, name: String) -> Result<Records, CliError> {
    match format {
        TransferFormat::Jsonl => {
            let mut reader = BufReader::new(input);
            let mut line_no = 0u64;
            let mut offset = 0u64;
            Ok(Box::new(std::iter::from_fn(move || {
                loop {
                    let mut line = String::new();
                    line_no += 1;
                    match reader.read_line(&mut line) {
                        Ok(0) => return None,
                        Ok(n) => offset += n as u64,
                        Err(e) => return Some(Err(CliError::Input(format!("{name}:{line_no}: {e}")))),
                    }
                    if line.trim().is_empty() {
                        continue;
                    }
                    return Some(
                        serde_json::from_str::<Record>(&line)
                            .map(|r| (line_no, offset, r.key, r.value))
                            .map_err(|e| {
                                CliError::Input(format!(
                                    "{name}:{line_no}: expected {{\"key\": \"...\", \"value\": \"...\"}}: {e}"
                                ))
                            }),
                    );
                }
            })))
        }
        TransferFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
            let headers = reader
                .headers()
                .map_err(|e| CliError::Input(format!("{name}: {e}")))?
                .clone();
            if headers.iter().collect::<Vec<_>>() != ["key", "value"] {
                return Err(CliError::Input(format!(
                    "{name}:1: the CSV header must be `key,value`, found `{}`",
                    headers.iter().collect::<Vec<_>>().join(",")
                )));
            }
            let mut records = reader.into_records();
            Ok(Box::new(std::iter::from_fn(move || {
                let record = records.next()?;
                let line = records.reader().position().line();
                let offset = records.reader().position().byte();
                Some(match record {
                    Ok(r) => Ok((
                        r.position().map_or(line, |p| p.line()),
                        offset,
                        r[0].to_owned(),
                        r[1].to_owned(),
                    )),
                    Err(e) => Err(CliError::Input(format!("{name}: {e}"))),
                })
            })))
        }
    }
}

/// Sends one batch and, unless `no_proofs`, verifies every op's proof
/// against the new root (a key written twice shows its last value).
async fn send_batch(
    client: &mut Client,
    params: &StoreParams,
    batch: &[Entry],
    want_proofs: bool,
) -> Result<(Fr, u64), CliError> {
    let ops = batch
        .iter()
        .map(|e| v1::Op {
            key: e.key.clone(),
            kind: Some(v1::op::Kind::Value(e.value.clone())),
        })
        .collect();
    let request = client.request(v1::PutBatchRequest { ops, want_proofs });
    let answer = client
        .api()
        .await?
        .put_batch(request)
        .await
        .map_err(|s| CliError::rpc("PutBatch", &s))?
        .into_inner();
    let root = wire_root("PutBatch", &answer.root)?;
    if want_proofs {
        if answer.proofs.len() != batch.len() {
            return Err(CliError::verification(format!(
                "PutBatch returned {} proofs for {} ops",
                answer.proofs.len(),
                batch.len()
            )));
        }
        let last: HashMap<&[u8], &Fr> = batch.iter().map(|e| (e.key.as_slice(), &e.value_field)).collect();
        for (entry, proof) in batch.iter().zip(&answer.proofs) {
            verify_wire_proof(
                "PutBatch",
                Some(proof),
                &answer.root,
                &entry.key_field,
                Some(last[entry.key.as_slice()]),
                params.max_levels,
            )
            .map_err(|e| e.context(format!("line {}", entry.line)))?;
        }
    }
    Ok((root, answer.version))
}

/// Imports a file in batches; prints a summary line.
pub async fn import(
    client: &mut Client,
    encoding: Encoding,
    args: &ImportArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let stdin = args.file.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let format = match args.format {
        Some(format) => format,
        None if stdin => return Err(CliError::Input("importing stdin needs --format".into())),
        None => infer_format(&args.file)?,
    };
    let file_error = |e: std::io::Error| CliError::File {
        path: name.clone(),
        reason: e.to_string(),
    };
    let (input, total): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(&args.file).map_err(file_error)?;
        let total = file.metadata().map_err(file_error)?.len();
        (Box::new(file), Some(total))
    };
    let params = client.params().await?;
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} (eta {eta})"
    } else {
        "{spinner} {bytes} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }

    let mut batch: Vec<Entry> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut imported = 0u64;
    let mut batches = 0u64;
    let mut head: Option<(Fr, u64)> = None;
    let mut records = records(format, input, name.clone())?.peekable();
    while let Some(record) = records.next() {
        let (line, offset, key_text, value_text) = record?;
        let at = |e: CliError| e.context(format!("{name}:{line}"));
        let key = encoding.decode("key", &key_text).map_err(at)?;
        let value = encoding.decode("value", &value_text).map_err(at)?;
        let key_field = leaf_field(params.key_mode, "key", &key).map_err(at)?;
        let value_field = leaf_field(params.key_mode, "value", &value).map_err(at)?;
        batch_bytes += key.len() + value.len();
        batch.push(Entry {
            line,
            key,
            value,
            key_field,
            value_field,
            offset,
        });
        let full = batch.len() >= args.batch as usize || batch_bytes >= BATCH_BYTES;
        if full || records.peek().is_none() {
            let first_line = batch[0].line;
            head = Some(
                send_batch(client, &params, &batch, !args.no_proofs)
                    .await
                    .map_err(|e| {
                        bar.abandon();
                        e.context(format!(
                            "{name}: batch from line {first_line} ({imported} entries before it are committed)"
                        ))
                    })?,
            );
            imported += batch.len() as u64;
            batches += 1;
            bar.set_position(batch.last().map_or(0, |e| e.offset));
            bar.set_message(format!("{imported} entries"));
            batch.clear();
            batch_bytes = 0;
        }
    }
    bar.finish_and_clear();
    match head {
        None => writeln!(out, "imported 0 entries (the input is empty)")?,
        Some((root, version)) => {
            let entries = if imported == 1 { "entry" } else { "entries" };
            let batch_word = if batches == 1 { "batch" } else { "batches" };
            writeln!(out, "imported {imported} {entries} in {batches} {batch_word}")?;
            writeln!(out, "version: {version}")?;
            writeln!(out, "root: {}", root_hex(&root))?;
            if !args.no_proofs {
                writeln!(out, "verified: a membership proof for every entry")?;
            }
        }
    }
    Ok(())
}

/// Streams the store (or a key range) to `out`. With `--verify`, recomputes
/// the root from everything exported and requires the server's root; a note
/// goes to `note`.
pub async fn export(
    client: &mut Client,
    encoding: Encoding,
    args: &ExportArgs,
    out: &mut dyn Write,
    note: &mut dyn Write,
) -> Result<(), CliError> {
    let mut start = match &args.start {
        Some(text) => encoding.decode("--start", text)?,
        None => Vec::new(),
    };
    let end = match &args.end {
        Some(text) => encoding.decode("--end", text)?,
        None => Vec::new(),
    };
    let before = if args.verify {
        Some(client.params().await?)
    } else {
        None
    };
    let mut ops = Vec::new();
    let mut sink = match args.format {
        TransferFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(["key", "value"]).map_err(csv_error)?;
            Sink::Csv(Box::new(writer))
        }
        TransferFormat::Jsonl => Sink::Jsonl(out),
    };
    let mut count = 0u64;
    // A verified export reads every page at the version it checks; a
    // sharded node has no single history to pin, so there it reads the
    // latest rows and the root they give must be the one read before.
    let mut pinned = before.is_some();
    // Pages until an empty one: a server may cap a page below the limit.
    loop {
        let request = v1::ScanRequest {
            shard: String::new(),
            start: start.clone(),
            end: end.clone(),
            limit: args.page,
            at_version: before.as_ref().filter(|_| pinned).map(|params| params.version),
        };
        let answer = client.api().await?.scan(request.clone()).await;
        let answer = match answer {
            Err(status) if pinned && count == 0 && status.code() == tonic::Code::FailedPrecondition => {
                pinned = false;
                let latest = v1::ScanRequest {
                    at_version: None,
                    ..request
                };
                client.api().await?.scan(latest).await
            }
            answer => answer,
        };
        let mut stream = answer.map_err(|s| CliError::rpc("Scan", &s))?.into_inner();
        let mut last_key = None;
        while let Some(row) = stream.message().await.map_err(|s| CliError::rpc("Scan", &s))? {
            let key = encoding.encode("key", &row.key)?;
            let value = encoding
                .encode("value", &row.value)
                .map_err(|e| e.context(format!("key {key:?}")))?;
            sink.write(key, value)?;
            if let Some(params) = &before {
                ops.push(Op::put(
                    leaf_field(params.key_mode, "key", &row.key)?,
                    leaf_field(params.key_mode, "value", &row.value)?,
                ));
            }
            count += 1;
            last_key = Some(row.key);
        }
        match last_key {
            None => break,
            Some(mut key) => {
                key.push(0);
                start = key;
            }
        }
    }
    sink.flush()?;
    if let Some(before) = before {
        let mut tree = MemoryTree::new(before.max_levels)
            .map_err(|e| CliError::verification(format!("max_levels {}: {e}", before.max_levels)))?;
        tree.apply(&ops)
            .map_err(|e| CliError::verification(format!("the exported entries do not form a tree: {e}")))?;
        if tree.root() != before.root {
            let unpinned = if pinned {
                ""
            } else {
                " (a sharded node's export reads the latest rows: a write during the export also gives this; \
                 export again while writes pause)"
            };
            return Err(CliError::verification(format!(
                "the {count} exported entries give root {}, the server's root at version {} is {}{unpinned}",
                root_hex(&tree.root()),
                before.version,
                root_hex(&before.root)
            )));
        }
        writeln!(
            note,
            "verified: the {count} exported entries are the whole store at version {} (root {})",
            before.version,
            root_hex(&before.root)
        )?;
    }
    Ok(())
}

enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Jsonl(&'a mut dyn Write),
}

impl Sink<'_> {
    fn write(&mut self, key: String, value: String) -> Result<(), CliError> {
        match self {
            Self::Csv(writer) => writer.write_record([key, value]).map_err(csv_error),
            Self::Jsonl(out) => {
                let line = serde_json::to_string(&Record { key, value })
                    .map_err(|e| CliError::Input(format!("encoding JSON: {e}")))?;
                Ok(writeln!(out, "{line}")?)
            }
        }
    }

    fn flush(&mut self) -> Result<(), CliError> {
        match self {
            Self::Csv(writer) => Ok(writer.flush()?),
            Self::Jsonl(out) => Ok(out.flush()?),
        }
    }
}

fn csv_error(e: csv::Error) -> CliError {
    let text = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => CliError::Output(io),
        _ => CliError::Input(format!("writing CSV: {text}")),
    }
}
