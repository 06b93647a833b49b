//! What the client checks in each response before handing it to the caller.
//!
//! The proof itself is checked by core's one routine, [`Proof::verify`]; this
//! module only turns wire messages into its arguments (the tree elements of
//! the key and value in the store's key mode, the root, the decoded proof)
//! and adds the checks around it that are not about the tree: the root is a
//! field element, the trusted root and version are the ones answered, a batch
//! has one proof per op, a root stream does not go backwards.
//!
//! Nothing here touches JavaScript, so it is tested natively.

use crate::hash::bytes_to_field;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use rustorium_core::Fr;
use rustorium_core::field::{FieldError, fr_from_le_bytes};
use rustorium_core::proof::{Proof, VerifyError};
use rustorium_proto::{ConvertError, v1};

/// How a store maps keys and values to tree elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// Any byte string, hashed by [`bytes_to_field`].
    Bytes,
    /// A canonical field element, 32 bytes little-endian, used as is.
    Field,
}

impl KeyMode {
    /// The mode a `GetRootResponse` states; `None` for unset or unknown.
    pub fn from_proto(mode: i32) -> Option<Self> {
        match v1::KeyMode::try_from(mode) {
            Ok(v1::KeyMode::Bytes) => Some(Self::Bytes),
            Ok(v1::KeyMode::Field) => Some(Self::Field),
            _ => None,
        }
    }

    /// `"bytes"` or `"field"`, the names the JavaScript API uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Field => "field",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "bytes" => Some(Self::Bytes),
            "field" => Some(Self::Field),
            _ => None,
        }
    }

    /// The tree element of a key or value given in its wire form.
    pub fn element(self, wire: &[u8]) -> Result<Fr, FieldError> {
        match self {
            Self::Bytes => Ok(bytes_to_field(wire)),
            Self::Field => fr_from_le_bytes(wire),
        }
    }
}

/// Why a response was refused: the `reason` of a `VerificationError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Core's verifier refused the proof.
    Proof(VerifyError),
    /// The proof message is not a valid proof.
    Decode(ConvertError),
    /// A root in the response is not a canonical 32-byte field element.
    Root(FieldError),
    /// A returned value is not a canonical field element (field mode).
    Value(FieldError),
    /// The response carries no proof where one was asked for.
    MissingProof,
    /// The response's root is not the root the client trusts.
    UntrustedRoot,
    /// The response is for another version than the one asked for.
    WrongVersion { expected: u64, got: u64 },
    /// A not-found answer carries a value.
    ValueWithoutFound,
    /// A batch answer has a proof count other than the op count.
    ProofCount { expected: usize, got: usize },
    /// A root stream went backwards or repeated a version.
    VersionBackwards { previous: u64, got: u64 },
    /// A root stream skipped versions.
    VersionGap { previous: u64, got: u64 },
    /// A root stream started elsewhere than the version asked for.
    WrongFirstVersion { expected: u64, got: u64 },
    /// The server states tree parameters other than the ones the client was
    /// told to expect (`what`: `max_levels` or `key_mode`), or ones it cannot
    /// use.
    Parameters { what: &'static str },
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Proof(e) => write!(f, "{e}"),
            Self::Decode(e) => write!(f, "malformed proof: {e}"),
            Self::Root(e) => write!(f, "malformed root: {e}"),
            Self::Value(e) => write!(f, "malformed value: {e}"),
            Self::MissingProof => f.write_str("the server sent no proof"),
            Self::UntrustedRoot => f.write_str("the server answered against a root other than the trusted root"),
            Self::WrongVersion { expected, got } => {
                write!(f, "asked for version {expected}, the server answered for version {got}")
            }
            Self::ValueWithoutFound => f.write_str("a not-found answer carries a value"),
            Self::ProofCount { expected, got } => {
                write!(f, "batch of {expected} ops answered with {got} proofs")
            }
            Self::VersionBackwards { previous, got } => {
                write!(f, "root stream went backwards: version {got} after version {previous}")
            }
            Self::VersionGap { previous, got } => {
                write!(
                    f,
                    "root stream skipped versions: version {got} after version {previous}"
                )
            }
            Self::WrongFirstVersion { expected, got } => {
                write!(f, "root stream asked from version {expected} started at version {got}")
            }
            Self::Parameters { what } => write!(f, "the server's {what} is not the expected or a supported one"),
        }
    }
}

impl core::error::Error for Rejection {}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self::Proof(e)
    }
}

impl From<ConvertError> for Rejection {
    fn from(e: ConvertError) -> Self {
        Self::Decode(e)
    }
}

/// A proof checked against a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub root: Fr,
    pub proof: Proof,
}

/// The parameters proofs are checked with: the store's key mode and
/// `max_levels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verifier {
    pub mode: KeyMode,
    pub max_levels: u16,
}

/// A response's root, strictly decoded.
pub fn root(bytes: &[u8]) -> Result<Fr, Rejection> {
    fr_from_le_bytes(bytes).map_err(Rejection::Root)
}

impl Verifier {
    /// Decodes `proof` and verifies, with core's routine, that it shows
    /// `key` holding `value` (`Some`, wire forms) or absent (`None`) under
    /// `root`.
    pub fn check(
        &self,
        root_bytes: &[u8],
        key: &[u8],
        value: Option<&[u8]>,
        proof: Option<&v1::Proof>,
    ) -> Result<Checked, Rejection> {
        let root = root(root_bytes)?;
        let proof = Proof::try_from(proof.ok_or(Rejection::MissingProof)?)?;
        // The key was encoded by this client, so it is a valid wire key; a
        // value comes from the server and is checked.
        let key = self.mode.element(key).map_err(Rejection::Value)?;
        let value = value
            .map(|value| self.mode.element(value).map_err(Rejection::Value))
            .transpose()?;
        proof.verify(&root, &key, value.as_ref(), self.max_levels)?;
        Ok(Checked { root, proof })
    }

    /// A `Get` answer for `key`: the proof of the stated value or absence;
    /// the version asked for, when one was; the trusted root, when there is
    /// one.
    pub fn get(
        &self,
        key: &[u8],
        response: &v1::GetResponse,
        trusted_root: Option<&Fr>,
        expected_version: Option<u64>,
    ) -> Result<Checked, Rejection> {
        if !response.found && !response.value.is_empty() {
            return Err(Rejection::ValueWithoutFound);
        }
        if let Some(expected) = expected_version
            && response.version != expected
        {
            return Err(Rejection::WrongVersion {
                expected,
                got: response.version,
            });
        }
        let value = response.found.then_some(response.value.as_slice());
        let checked = self.check(&response.root, key, value, response.proof.as_ref())?;
        if trusted_root.is_some_and(|trusted| *trusted != checked.root) {
            return Err(Rejection::UntrustedRoot);
        }
        Ok(checked)
    }

    /// A `Put` answer: (key, value) is in the new root.
    pub fn put(&self, key: &[u8], value: &[u8], response: &v1::PutResponse) -> Result<Checked, Rejection> {
        self.check(&response.root, key, Some(value), response.proof.as_ref())
    }

    /// A `Delete` answer: key is absent from the new root.
    pub fn delete(&self, key: &[u8], response: &v1::DeleteResponse) -> Result<Checked, Rejection> {
        self.check(&response.root, key, None, response.proof.as_ref())
    }

    /// A `PutBatch` answer: one proof per op, each showing its key's state
    /// after the whole batch (the last op on a key wins).
    pub fn batch(&self, ops: &[v1::Op], response: &v1::PutBatchResponse) -> Result<(Fr, Vec<Proof>), Rejection> {
        if response.proofs.len() != ops.len() {
            return Err(Rejection::ProofCount {
                expected: ops.len(),
                got: response.proofs.len(),
            });
        }
        let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for op in ops {
            let value = match &op.kind {
                Some(v1::op::Kind::Value(value)) => Some(value.as_slice()),
                _ => None,
            };
            last.insert(op.key.as_slice(), value);
        }
        let root = root(&response.root)?;
        let mut proofs = Vec::with_capacity(ops.len());
        for (op, proof) in ops.iter().zip(&response.proofs) {
            let value = last.get(op.key.as_slice()).copied().flatten();
            proofs.push(self.check(&response.root, &op.key, value, Some(proof))?.proof);
        }
        Ok((root, proofs))
    }
}

/// Checks that a root stream moves forward one version at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootOrder {
    last: Option<u64>,
    first: Option<u64>,
}

impl RootOrder {
    /// A stream asked to start at `from_version` (or at the current version
    /// when `None`).
    pub fn new(from_version: Option<u64>) -> Self {
        Self {
            last: None,
            first: from_version,
        }
    }

    /// The last version accepted.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Accepts the next event's version, or says why the stream is refused.
    pub fn accept(&mut self, version: u64) -> Result<(), Rejection> {
        match (self.last, self.first) {
            (None, Some(expected)) if version != expected => {
                return Err(Rejection::WrongFirstVersion { expected, got: version });
            }
            (Some(previous), _) if version <= previous => {
                return Err(Rejection::VersionBackwards { previous, got: version });
            }
            (Some(previous), _) if version != previous + 1 => {
                return Err(Rejection::VersionGap { previous, got: version });
            }
            _ => {}
        }
        self.last = Some(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustorium_core::field::fr_to_le_bytes;
    use rustorium_core::tree::{MemoryTree, Op};
    use rustorium_proto::{fr_to_bytes, proof_to_proto};

    const LEVELS: u16 = 64;
    const BYTES: Verifier = Verifier {
        mode: KeyMode::Bytes,
        max_levels: LEVELS,
    };

    fn tree(entries: &[(&[u8], &[u8])]) -> MemoryTree {
        let mut tree = MemoryTree::new(LEVELS).unwrap();
        let ops: Vec<Op> = entries
            .iter()
            .map(|(k, v)| Op::put(bytes_to_field(k), bytes_to_field(v)))
            .collect();
        tree.apply(&ops).unwrap();
        tree
    }

    fn get(tree: &MemoryTree, key: &[u8], value: Option<&[u8]>) -> v1::GetResponse {
        let lookup = tree.prove(&bytes_to_field(key)).unwrap();
        v1::GetResponse {
            found: value.is_some(),
            value: value.unwrap_or_default().to_vec(),
            proof: Some(proof_to_proto(&lookup.proof, LEVELS)),
            root: fr_to_bytes(&tree.root()),
            version: 7,
            timestamp_unix_nanos: 1,
        }
    }

    fn entries() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..40u32)
            .map(|i| {
                (
                    alloc::format!("key-{i}").into_bytes(),
                    alloc::format!("value-{i}").into_bytes(),
                )
            })
            .collect()
    }

    fn big_tree() -> MemoryTree {
        let entries = entries();
        let refs: Vec<(&[u8], &[u8])> = entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        tree(&refs)
    }

    #[test]
    fn accepts_membership_and_absence() {
        let tree = big_tree();
        let found = get(&tree, b"key-3", Some(b"value-3"));
        let checked = BYTES.get(b"key-3", &found, None, None).unwrap();
        assert!(checked.proof.existence);
        assert_eq!(checked.root, tree.root());
        let absent = get(&tree, b"nope", None);
        assert!(!BYTES.get(b"nope", &absent, None, None).unwrap().proof.existence);
    }

    #[test]
    fn refuses_wrong_claims() {
        let tree = big_tree();
        let found = get(&tree, b"key-3", Some(b"value-3"));
        let mut wrong_value = found.clone();
        wrong_value.value = b"value-4".to_vec();
        assert_eq!(
            BYTES.get(b"key-3", &wrong_value, None, None),
            Err(Rejection::Proof(VerifyError::RootMismatch))
        );
        let mut denied = found.clone();
        denied.found = false;
        denied.value.clear();
        assert!(BYTES.get(b"key-3", &denied, None, None).is_err());
        let mut value_without_found = denied.clone();
        value_without_found.value = b"x".to_vec();
        assert_eq!(
            BYTES.get(b"key-3", &value_without_found, None, None),
            Err(Rejection::ValueWithoutFound)
        );
        assert!(BYTES.get(b"key-4", &found, None, None).is_err(), "proof of another key");
        let mut no_proof = found.clone();
        no_proof.proof = None;
        assert_eq!(BYTES.get(b"key-3", &no_proof, None, None), Err(Rejection::MissingProof));
    }

    #[test]
    fn refuses_any_tampered_sibling_or_root() {
        let tree = big_tree();
        let found = get(&tree, b"key-3", Some(b"value-3"));
        let depth = found.proof.as_ref().unwrap().siblings.len();
        assert!(depth > 2);
        for index in 0..depth {
            for bit in [0, 77, 200] {
                let mut tampered = found.clone();
                let proof = tampered.proof.as_mut().unwrap();
                proof.siblings[index][bit / 8] ^= 1 << (bit % 8);
                // Keep `compact` consistent, or the mismatch check alone would catch it.
                proof.compact.clear();
                assert!(
                    BYTES.get(b"key-3", &tampered, None, None).is_err(),
                    "sibling {index} bit {bit}"
                );
            }
        }
        let mut tampered = found.clone();
        tampered.root[0] ^= 1;
        assert!(BYTES.get(b"key-3", &tampered, None, None).is_err());
        let mut mismatched = found.clone();
        mismatched.proof.as_mut().unwrap().siblings[0][0] ^= 1;
        assert!(matches!(
            BYTES.get(b"key-3", &mismatched, None, None),
            Err(Rejection::Decode(_)) | Err(Rejection::Proof(_))
        ));
    }

    #[test]
    fn trusted_root_and_version() {
        let tree = big_tree();
        let found = get(&tree, b"key-3", Some(b"value-3"));
        assert!(BYTES.get(b"key-3", &found, Some(&tree.root()), Some(7)).is_ok());
        assert_eq!(
            BYTES.get(b"key-3", &found, Some(&Fr::from(5u64)), None),
            Err(Rejection::UntrustedRoot)
        );
        assert_eq!(
            BYTES.get(b"key-3", &found, None, Some(6)),
            Err(Rejection::WrongVersion { expected: 6, got: 7 })
        );
    }

    #[test]
    fn field_mode() {
        let verifier = Verifier {
            mode: KeyMode::Field,
            max_levels: LEVELS,
        };
        let mut tree = MemoryTree::new(LEVELS).unwrap();
        tree.insert(Fr::from(9u64), Fr::from(90u64)).unwrap();
        tree.insert(Fr::from(10u64), Fr::from(100u64)).unwrap();
        let lookup = tree.prove(&Fr::from(9u64)).unwrap();
        let response = v1::GetResponse {
            found: true,
            value: fr_to_bytes(&Fr::from(90u64)),
            proof: Some(proof_to_proto(&lookup.proof, LEVELS)),
            root: fr_to_bytes(&tree.root()),
            version: 2,
            timestamp_unix_nanos: 0,
        };
        let key = fr_to_le_bytes(&Fr::from(9u64));
        assert!(verifier.get(&key, &response, None, None).is_ok());
        let mut bad_value = response.clone();
        bad_value.value = alloc::vec![0xff; 32];
        assert!(matches!(
            verifier.get(&key, &bad_value, None, None),
            Err(Rejection::Value(FieldError::NotCanonical))
        ));
    }

    #[test]
    fn batch_proofs_show_the_last_op() {
        let mut tree = big_tree();
        let ops = alloc::vec![
            v1::Op {
                key: b"a".to_vec(),
                kind: Some(v1::op::Kind::Value(b"1".to_vec())),
            },
            v1::Op {
                key: b"key-1".to_vec(),
                kind: Some(v1::op::Kind::Delete(v1::op::Delete {})),
            },
            v1::Op {
                key: b"a".to_vec(),
                kind: Some(v1::op::Kind::Value(b"2".to_vec())),
            },
        ];
        tree.apply(&[
            Op::put(bytes_to_field(b"a"), bytes_to_field(b"2")),
            Op::delete(bytes_to_field(b"key-1")),
        ])
        .unwrap();
        let prove = |key: &[u8]| proof_to_proto(&tree.prove(&bytes_to_field(key)).unwrap().proof, LEVELS);
        let mut response = v1::PutBatchResponse {
            root: fr_to_bytes(&tree.root()),
            version: 2,
            timestamp_unix_nanos: 0,
            proofs: alloc::vec![prove(b"a"), prove(b"key-1"), prove(b"a")],
        };
        let (root, proofs) = BYTES.batch(&ops, &response).unwrap();
        assert_eq!(root, tree.root());
        assert_eq!(proofs.len(), 3);
        response.proofs.swap(0, 1);
        assert!(BYTES.batch(&ops, &response).is_err());
        response.proofs.pop();
        assert_eq!(
            BYTES.batch(&ops, &response),
            Err(Rejection::ProofCount { expected: 3, got: 2 })
        );
    }

    #[test]
    fn root_order() {
        let mut order = RootOrder::new(None);
        order.accept(5).unwrap();
        order.accept(6).unwrap();
        assert_eq!(
            order.accept(6),
            Err(Rejection::VersionBackwards { previous: 6, got: 6 })
        );
        assert_eq!(
            order.accept(4),
            Err(Rejection::VersionBackwards { previous: 6, got: 4 })
        );
        assert_eq!(order.accept(9), Err(Rejection::VersionGap { previous: 6, got: 9 }));
        assert_eq!(order.last(), Some(6));
        let mut from = RootOrder::new(Some(3));
        assert_eq!(
            from.accept(4),
            Err(Rejection::WrongFirstVersion { expected: 3, got: 4 })
        );
        from.accept(3).unwrap();
    }
}
