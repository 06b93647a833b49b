//! `rustorium put | get | del | root`: single-key reads and writes, each
//! verified against the root the server returns before anything is printed.

use super::client::{Client, WireRead, verify_read, verify_wire_proof};
use super::encoding::{Encoding, key_mode_name, leaf_field, parse_root, root_hex};
use super::error::CliError;
use rustorium_core::Fr;
use rustorium_core::field::fr_to_decimal;
use rustorium_proto::v1;
use std::io::Write;
use std::path::PathBuf;

/// `rustorium put`.
#[derive(clap::Args, Debug)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value (or use --value-file).
    #[arg(required_unless_present = "value_file")]
    pub value: Option<String>,
    /// Read the value's raw bytes from this file ("-" for stdin) instead.
    #[arg(long, conflicts_with = "value", value_name = "FILE")]
    pub value_file: Option<PathBuf>,
}

/// `rustorium get`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The key.
    pub key: String,
    /// Read at this retained version instead of the current one.
    #[arg(long, value_name = "VERSION")]
    pub at_version: Option<u64>,
    /// Also require the server's root to be this one (64 hex digits or decimal).
    #[arg(long, value_name = "ROOT")]
    pub trusted_root: Option<String>,
}

/// `rustorium del`.
#[derive(clap::Args, Debug)]
pub struct DelArgs {
    /// The key.
    pub key: String,
}

fn read_value_file(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    let result = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|e| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes the key, verifies the membership proof of (key, value) under the
/// new root, prints the new version and root.
pub async fn put(client: &mut Client, encoding: Encoding, args: &PutArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = encoding.decode("key", &args.key)?;
    let value = match (&args.value, &args.value_file) {
        (_, Some(path)) => read_value_file(path)?,
        (Some(text), None) => encoding.decode("value", text)?,
        (None, None) => return Err(CliError::Input("put needs a value or --value-file".into())),
    };
    let params = client.params().await?;
    let key_field = leaf_field(params.key_mode, "key", &key)?;
    let value_field = leaf_field(params.key_mode, "value", &value)?;
    let request = client.request(v1::PutRequest {
        key,
        value,
        want_proof: true,
    });
    let answer = client
        .api()
        .await?
        .put(request)
        .await
        .map_err(|s| CliError::rpc("Put", &s))?
        .into_inner();
    let (root, _) = verify_wire_proof(
        "Put",
        answer.proof.as_ref(),
        &answer.root,
        &key_field,
        Some(&value_field),
        params.max_levels,
    )?;
    writeln!(out, "version: {}", answer.version)?;
    writeln!(out, "root: {}", root_hex(&root))?;
    writeln!(out, "verified: membership of the new value under the new root")?;
    Ok(())
}

/// Reads the key and verifies the proof (membership or absence) under the
/// returned root, and the trusted root when given; prints value, root,
/// version.
pub async fn get(client: &mut Client, encoding: Encoding, args: &GetArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = encoding.decode("key", &args.key)?;
    let trusted = args
        .trusted_root
        .as_deref()
        .map(|text| parse_root("--trusted-root", text))
        .transpose()?;
    let params = client.params().await?;
    let key_field = leaf_field(params.key_mode, "key", &key)?;
    let request = client.request(v1::GetRequest {
        key,
        at_version: args.at_version,
    });
    let answer = client
        .api()
        .await?
        .get(request)
        .await
        .map_err(|s| CliError::rpc("Get", &s))?
        .into_inner();
    let read = WireRead {
        call: "Get",
        found: answer.found,
        value: &answer.value,
        proof: answer.proof.as_ref(),
        root: &answer.root,
        version: answer.version,
    };
    let (root, _, _) = verify_read(read, args.at_version, &key_field, &params, trusted.as_ref())?;
    if answer.found {
        writeln!(out, "value: {}", encoding.encode("value", &answer.value)?)?;
    } else {
        writeln!(out, "not found")?;
    }
    writeln!(out, "version: {}", answer.version)?;
    writeln!(out, "root: {}", root_hex(&root))?;
    let what = match (answer.found, trusted.is_some()) {
        (true, false) => "membership proof checked against the returned root",
        (true, true) => "membership proof checked against the trusted root",
        (false, false) => "absence proven against the returned root",
        (false, true) => "absence proven against the trusted root",
    };
    writeln!(out, "verified: {what}")?;
    Ok(())
}

/// Deletes the key and verifies the proof of its absence under the new root.
pub async fn del(client: &mut Client, encoding: Encoding, args: &DelArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = encoding.decode("key", &args.key)?;
    let params = client.params().await?;
    let key_field = leaf_field(params.key_mode, "key", &key)?;
    let request = client.request(v1::DeleteRequest { key });
    let answer = client
        .api()
        .await?
        .delete(request)
        .await
        .map_err(|s| CliError::rpc("Delete", &s))?
        .into_inner();
    let (root, _) = verify_wire_proof(
        "Delete",
        answer.proof.as_ref(),
        &answer.root,
        &key_field,
        None,
        params.max_levels,
    )?;
    writeln!(out, "existed: {}", answer.existed)?;
    writeln!(out, "version: {}", answer.version)?;
    writeln!(out, "root: {}", root_hex(&root))?;
    writeln!(out, "verified: absence of the key under the new root")?;
    Ok(())
}

/// Prints the current root, version and the tree parameters.
pub async fn root(client: &mut Client, out: &mut dyn Write) -> Result<(), CliError> {
    let params = client.params().await?;
    write_root(out, &params.root, params.version)?;
    writeln!(out, "committed_unix_nanos: {}", params.timestamp_unix_nanos)?;
    writeln!(out, "max_levels: {}", params.max_levels)?;
    writeln!(out, "key_mode: {}", key_mode_name(params.key_mode))?;
    Ok(())
}

fn write_root(out: &mut dyn Write, root: &Fr, version: u64) -> Result<(), CliError> {
    writeln!(out, "version: {version}")?;
    writeln!(out, "root: {}", root_hex(root))?;
    writeln!(out, "root_decimal: {}", fr_to_decimal(root))?;
    Ok(())
}
