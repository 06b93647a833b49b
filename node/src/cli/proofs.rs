//! `rustorium proof` (a verified proof in iden3 JSON, iden3 compact hex or
//! circom `SMTVerifier` inputs) and `rustorium verify` (a saved proof file
//! against a root the user trusts, offline).

use super::client::{Client, WireRead, verify_read};
use super::encoding::{Encoding, leaf_field, parse_root, root_hex};
use super::error::CliError;
use crate::store::KeyMode;
use rustorium_core::proof::Proof;
use rustorium_core::proof::json::{Iden3ProofJson, SmtVerifierInputsJson};
use rustorium_proto::v1;
use std::io::Write;
use std::path::PathBuf;

/// The output forms of `rustorium proof`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProofFormat {
    /// `{"existence", "siblings", "node_aux"}` as @iden3/js-merkletree writes it.
    #[value(name = "iden3-json")]
    Iden3Json,
    /// The iden3 compact bytes, as hex.
    #[value(name = "iden3-hex")]
    Iden3Hex,
    /// circomlib SMTVerifier(nLevels) input JSON, siblings padded to --levels.
    Circom,
}

/// `rustorium proof`.
#[derive(clap::Args, Debug)]
pub struct ProofArgs {
    /// The key.
    pub key: String,
    /// Output form.
    #[arg(long, value_enum, default_value = "iden3-json")]
    pub format: ProofFormat,
    /// For --format circom: SMTVerifier's nLevels (default: the store's max_levels).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=255))]
    pub levels: Option<u16>,
    /// Prove against this retained version instead of the current one.
    #[arg(long, value_name = "VERSION")]
    pub at_version: Option<u64>,
    /// Also require the server's root to be this one (64 hex digits or decimal).
    #[arg(long, value_name = "ROOT")]
    pub trusted_root: Option<String>,
}

/// A key mode named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyModeArg {
    Bytes,
    Field,
}

/// `rustorium verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The trusted root: 64 hex digits (32 bytes little-endian) or a decimal field element.
    #[arg(long, value_name = "ROOT")]
    pub root: String,
    /// The key the proof is about.
    #[arg(long)]
    pub key: String,
    /// The value the proof shows the key holding.
    #[arg(long, required_unless_present = "absent", conflicts_with = "absent")]
    pub value: Option<String>,
    /// The proof shows the key absent.
    #[arg(long)]
    pub absent: bool,
    /// The proof file: iden3 JSON, or the compact form as hex (or raw bytes); "-" for stdin.
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    /// The store's max_levels (GetRoot and `rustorium root` print it).
    #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u16).range(1..=255))]
    pub max_levels: u16,
    /// How the store maps keys and values to field elements (default: field with --field, else bytes).
    #[arg(long, value_enum)]
    pub key_mode: Option<KeyModeArg>,
}

/// Fetches the key's proof, verifies it, then prints it in the chosen form.
/// A one-line note (version, root, found) goes to `note`.
pub async fn proof(
    client: &mut Client,
    encoding: Encoding,
    args: &ProofArgs,
    out: &mut dyn Write,
    note: &mut dyn Write,
) -> Result<(), CliError> {
    if args.levels.is_some() && args.format != ProofFormat::Circom {
        return Err(CliError::Input("--levels applies only to --format circom".into()));
    }
    let key = encoding.decode("key", &args.key)?;
    let trusted = args
        .trusted_root
        .as_deref()
        .map(|text| parse_root("--trusted-root", text))
        .transpose()?;
    let params = client.params().await?;
    let key_field = leaf_field(params.key_mode, "key", &key)?;
    let version = args.at_version.unwrap_or(params.version);
    let request = client.request(v1::GetProofRequest {
        key,
        version,
        shard: String::new(),
    });
    let answer = client
        .api()
        .await?
        .get_proof(request)
        .await
        .map_err(|s| CliError::rpc("GetProof", &s))?
        .into_inner();
    let read = WireRead {
        call: "GetProof",
        found: answer.found,
        value: &answer.value,
        proof: answer.proof.as_ref(),
        root: &answer.root,
        version: answer.version,
    };
    let (root, proof, value_field) = verify_read(read, Some(version), &key_field, &params, trusted.as_ref())?;
    match args.format {
        ProofFormat::Iden3Json => {
            let json = serde_json::to_string_pretty(&Iden3ProofJson::from(&proof))
                .map_err(|e| CliError::Input(format!("encoding the proof: {e}")))?;
            writeln!(out, "{json}")?;
        }
        ProofFormat::Iden3Hex => {
            let bytes = proof
                .to_compact()
                .map_err(|e| CliError::Input(format!("iden3-hex: {e}; use --format iden3-json")))?;
            writeln!(out, "{}", hex::encode(bytes))?;
        }
        ProofFormat::Circom => {
            let levels = args.levels.unwrap_or(params.max_levels);
            let inputs = proof
                .to_circom(&root, &key_field, value_field.as_ref(), usize::from(levels))
                .map_err(|e| CliError::Input(format!("--format circom: {e}")))?;
            let json = serde_json::to_string_pretty(&SmtVerifierInputsJson::from(&inputs))
                .map_err(|e| CliError::Input(format!("encoding the circom inputs: {e}")))?;
            writeln!(out, "{json}")?;
        }
    }
    writeln!(
        note,
        "verified {} proof at version {} under root {} (max_levels {})",
        if answer.found { "membership" } else { "absence" },
        answer.version,
        root_hex(&root),
        params.max_levels
    )?;
    Ok(())
}

/// Parses a proof file: iden3 JSON, compact hex, or compact raw bytes. A file
/// that is none of them is a verification failure.
pub fn parse_proof_file(bytes: &[u8]) -> Result<Proof, CliError> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    match text {
        Some(text) if text.starts_with('{') => {
            let json: Iden3ProofJson = serde_json::from_str(text)
                .map_err(|e| CliError::verification(format!("proof file is not iden3 proof JSON: {e}")))?;
            Proof::try_from(&json).map_err(|e| CliError::verification(format!("proof file: {e}")))
        }
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let compact =
                hex::decode(text).map_err(|e| CliError::verification(format!("proof file is not compact hex: {e}")))?;
            Proof::from_compact(&compact).map_err(|e| CliError::verification(format!("proof file: {e}")))
        }
        _ => Proof::from_compact(bytes).map_err(|e| {
            CliError::verification(format!(
                "proof file is neither iden3 JSON, compact hex nor compact bytes: {e}"
            ))
        }),
    }
}

/// Checks a saved proof against a trusted root. Prints one line on success.
pub fn verify(encoding: Encoding, args: &VerifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let root = parse_root("--root", &args.root)?;
    let mode = match args.key_mode {
        Some(KeyModeArg::Bytes) => KeyMode::Bytes,
        Some(KeyModeArg::Field) => KeyMode::Field,
        None if encoding == Encoding::Field => KeyMode::Field,
        None => KeyMode::Bytes,
    };
    let key = leaf_field(mode, "key", &encoding.decode("--key", &args.key)?)?;
    let value = match &args.value {
        Some(text) => Some(leaf_field(mode, "value", &encoding.decode("--value", text)?)?),
        None => None,
    };
    let bytes = if args.proof.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
    } else {
        std::fs::read(&args.proof)
    }
    .map_err(|e| CliError::File {
        path: args.proof.display().to_string(),
        reason: e.to_string(),
    })?;
    let proof = parse_proof_file(&bytes)?;
    proof
        .verify(&root, &key, value.as_ref(), args.max_levels)
        .map_err(CliError::verification)?;
    let claim = if value.is_some() {
        "the key holds the value"
    } else {
        "the key is absent"
    };
    writeln!(out, "verified: {claim} under root {}", root_hex(&root))?;
    Ok(())
}
