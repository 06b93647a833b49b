//! `rustorium watch`: one line per committed version, as WatchRoots streams
//! them. Fails closed: a version that goes backwards, repeats or skips ahead,
//! or a stream that does not start at `--from`, is a verification failure.
//! A watcher the server drops for falling behind (RESOURCE_EXHAUSTED) resumes
//! from the version after the last one printed.

use super::client::{Client, wire_root};
use super::encoding::root_hex;
use super::error::CliError;
use rustorium_proto::v1;
use std::io::Write;

/// `rustorium watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// First version to print, replaying the retained history from it (default: the current version).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<u64>,
    /// Exit after printing this many versions.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Checks that `version` may follow `last` (or, first, start at `from`).
pub fn check_order(last: Option<u64>, from: Option<u64>, version: u64) -> Result<(), CliError> {
    match (last, from) {
        (Some(last), _) if version <= last => Err(CliError::verification(format!(
            "WatchRoots went backwards: version {version} after version {last}"
        ))),
        (Some(last), _) if version != last + 1 => Err(CliError::verification(format!(
            "WatchRoots skipped versions: version {version} after version {last}"
        ))),
        (None, Some(from)) if version != from => Err(CliError::verification(format!(
            "asked to start at version {from}, WatchRoots started at version {version}"
        ))),
        _ => Ok(()),
    }
}

/// Prints `version=V root=HEX ops=N committed_unix_nanos=T` per version until
/// `--count` versions are printed or the stream fails.
pub async fn watch(client: &mut Client, args: &WatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut last: Option<u64> = None;
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let request = v1::WatchRootsRequest {
            from_version: last.map(|v| v + 1).or(args.from),
        };
        let mut stream = client
            .api()
            .await?
            .watch_roots(request)
            .await
            .map_err(|s| CliError::rpc("WatchRoots", &s))?
            .into_inner();
        loop {
            match stream.message().await {
                Ok(Some(event)) => {
                    check_order(last, args.from, event.version)?;
                    let root = wire_root("WatchRoots", &event.root)?;
                    writeln!(
                        out,
                        "version={} root={} ops={} committed_unix_nanos={}",
                        event.version,
                        root_hex(&root),
                        event.op_count,
                        event.timestamp_unix_nanos
                    )?;
                    out.flush()?;
                    last = Some(event.version);
                    printed += 1;
                    if args.count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
                Ok(None) => return Err(CliError::Stream("the server ended the WatchRoots stream".into())),
                // Dropped for lagging: resume after the last version printed.
                Err(status) if status.code() == tonic::Code::ResourceExhausted && last.is_some() => break,
                Err(status) => return Err(CliError::rpc("WatchRoots", &status)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_checked() {
        assert!(check_order(None, None, 7).is_ok());
        assert!(check_order(None, Some(3), 3).is_ok());
        assert_eq!(check_order(None, Some(3), 4).unwrap_err().exit_code(), 3);
        assert!(check_order(Some(3), None, 4).is_ok());
        assert_eq!(check_order(Some(3), None, 3).unwrap_err().exit_code(), 3);
        assert_eq!(check_order(Some(3), None, 2).unwrap_err().exit_code(), 3);
        assert_eq!(check_order(Some(3), None, 5).unwrap_err().exit_code(), 3);
    }
}
