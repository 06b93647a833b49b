//! The connection every server command shares: the global flags (`--server`,
//! `--token`, `--timeout`, `--ca-cert`), the bearer token, per-request
//! deadlines, the store's parameters (GetRoot) and proof verification.

use super::encoding::{key_mode_from_wire, parse_duration, root_hex};
use super::error::{CliError, error_chain};
use crate::store::KeyMode;
use rustorium_core::Fr;
use rustorium_core::proof::Proof;
use rustorium_proto::v1;
use rustorium_proto::v1::store_client::StoreClient;
use std::path::PathBuf;
use std::time::Duration;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The global connection flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Server URL (http:// or https://).
    #[arg(
        long,
        global = true,
        env = "RUSTORIUM_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
    /// Bearer token, sent as `authorization: Bearer <token>`.
    #[arg(long, global = true, env = "RUSTORIUM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Deadline for connecting and for each request (e.g. 10s, 500ms, 2m); streams are not cut.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// PEM CA certificate to trust for an https:// server.
    #[arg(long, global = true, env = "RUSTORIUM_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// Adds the bearer token to every call.
#[derive(Clone, Debug)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The generated client with the token interceptor.
pub type StoreApi = StoreClient<InterceptedService<Channel, BearerToken>>;

/// The store's parameters and current head, from GetRoot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreParams {
    pub root: Fr,
    pub version: u64,
    pub timestamp_unix_nanos: u64,
    pub max_levels: u16,
    pub key_mode: KeyMode,
}

/// A client that connects on first use, so bad arguments are reported
/// before an unreachable server.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    token: BearerToken,
    api: Option<StoreApi>,
    timeout: Duration,
}

impl Client {
    /// Checks the flags; does not connect yet.
    pub fn new(args: &ConnectArgs) -> Result<Self, CliError> {
        let server = args.server.clone();
        let bad = |reason: String| CliError::BadServer {
            server: server.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(server.clone())
            .map_err(|e| bad(error_chain(&e)))?
            .connect_timeout(args.timeout)
            .tcp_nodelay(true);
        match endpoint.uri().scheme_str() {
            Some("http") => {}
            Some("https") => {
                let mut tls = ClientTlsConfig::new();
                if let Some(path) = &args.ca_cert {
                    let pem = std::fs::read(path).map_err(|e| CliError::File {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                endpoint = endpoint.tls_config(tls).map_err(|e| bad(error_chain(&e)))?;
            }
            _ => return Err(bad("the URL must start with http:// or https://".into())),
        }
        let token = match &args.token {
            None => None,
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| CliError::Input("--token has characters that cannot go in an HTTP header".into()))?,
            ),
        };
        Ok(Self {
            endpoint,
            token: BearerToken(token),
            api: None,
            timeout: args.timeout,
        })
    }

    /// The generated client, connecting on the first call.
    pub async fn api(&mut self) -> Result<&mut StoreApi, CliError> {
        if self.api.is_none() {
            let channel = self.endpoint.connect().await.map_err(|e| CliError::Connect {
                server: self.endpoint.uri().to_string().trim_end_matches('/').to_owned(),
                reason: error_chain(&e).trim_start_matches("transport error: ").to_owned(),
            })?;
            self.api = Some(
                StoreClient::with_interceptor(channel, self.token.clone())
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            );
        }
        Ok(self.api.as_mut().expect("connected above"))
    }

    /// A unary request with the deadline set.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// The store's parameters and current head.
    pub async fn params(&mut self) -> Result<StoreParams, CliError> {
        let request = self.request(v1::GetRootRequest::default());
        let answer = self
            .api()
            .await?
            .get_root(request)
            .await
            .map_err(|s| CliError::rpc("GetRoot", &s))?
            .into_inner();
        let max_levels = u16::try_from(answer.max_levels)
            .ok()
            .filter(|levels| (1..=255).contains(levels))
            .ok_or_else(|| {
                CliError::verification(format!(
                    "the server reports max_levels {}, outside 1..=255",
                    answer.max_levels
                ))
            })?;
        Ok(StoreParams {
            root: wire_root("GetRoot", &answer.root)?,
            version: answer.version,
            timestamp_unix_nanos: answer.timestamp_unix_nanos,
            max_levels,
            key_mode: key_mode_from_wire(answer.key_mode)?,
        })
    }
}

/// A root from the wire; a malformed one is a verification failure.
pub fn wire_root(call: &str, bytes: &[u8]) -> Result<Fr, CliError> {
    rustorium_proto::fr_from_bytes(bytes)
        .map_err(|e| CliError::verification(format!("{call} returned a root that is not a field element: {e}")))
}

/// Checks a proof from the server: it is present, well formed, and shows
/// `key` holding `value` (`Some`) or absent (`None`) under `root` (wire
/// bytes). Returns the root and the decoded proof.
pub fn verify_wire_proof(
    call: &str,
    proof: Option<&v1::Proof>,
    root: &[u8],
    key: &Fr,
    value: Option<&Fr>,
    max_levels: u16,
) -> Result<(Fr, Proof), CliError> {
    let root = wire_root(call, root)?;
    let proof = proof.ok_or_else(|| CliError::verification(format!("{call} returned no proof")))?;
    let proof = Proof::try_from(proof)
        .map_err(|e| CliError::verification(format!("{call} returned a malformed proof: {e}")))?;
    proof.verify(&root, key, value, max_levels).map_err(|e| {
        let claim = if value.is_some() { "membership" } else { "absence" };
        CliError::verification(format!(
            "{call}: the {claim} proof does not check against root {}: {e}",
            root_hex(&root)
        ))
    })?;
    Ok((root, proof))
}

/// A read answer (Get or GetProof) as the wire states it.
#[derive(Debug)]
pub struct WireRead<'a> {
    pub call: &'static str,
    pub found: bool,
    pub value: &'a [u8],
    pub proof: Option<&'a v1::Proof>,
    pub root: &'a [u8],
    pub version: u64,
}

/// Checks a read answer: it is for the version asked (when one was), its
/// value is a leaf element, its proof verifies under its root, and that root
/// is the trusted one (when given). Returns the root, the proof and the
/// value's leaf element.
pub fn verify_read(
    read: WireRead<'_>,
    asked_version: Option<u64>,
    key: &Fr,
    params: &StoreParams,
    trusted: Option<&Fr>,
) -> Result<(Fr, Proof, Option<Fr>), CliError> {
    let call = read.call;
    if let Some(asked) = asked_version
        && read.version != asked
    {
        return Err(CliError::verification(format!(
            "asked for version {asked}, the server answered for version {}",
            read.version
        )));
    }
    // A server claiming a value that is not a leaf element (field mode)
    // cannot be proven, so that is a verification failure too.
    let value = if read.found {
        Some(
            crate::cli::encoding::leaf_field(params.key_mode, "value", read.value)
                .map_err(|_| CliError::verification(format!("{call} returned a value that is not a field element")))?,
        )
    } else {
        None
    };
    let (root, proof) = verify_wire_proof(call, read.proof, read.root, key, value.as_ref(), params.max_levels)?;
    require_trusted_root(&root, trusted)?;
    Ok((root, proof, value))
}

/// Requires `root` to be the trusted root, when one is given.
pub fn require_trusted_root(root: &Fr, trusted: Option<&Fr>) -> Result<(), CliError> {
    match trusted {
        Some(trusted) if trusted != root => Err(CliError::verification(format!(
            "the server's root {} is not the trusted root {}",
            root_hex(root),
            root_hex(trusted)
        ))),
        _ => Ok(()),
    }
}
