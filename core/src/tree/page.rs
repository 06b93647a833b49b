//! Pages: the unit in which tree nodes are stored.
//!
//! A page holds the [`PAGE_LEVELS`] levels of nodes below one node at a depth
//! that is a multiple of `PAGE_LEVELS`: 2 + 4 + 8 + 16 = 30 slots. A proof path
//! of depth `d` touches `ceil(d / PAGE_LEVELS)` pages, and a write rewrites the
//! same number, instead of one row per binary node. The root node itself lives
//! outside pages, in the tree's root record.
//!
//! **Invariant:** a page is stored if and only if one of its slots is not empty.

use super::node::{KeyPath, Leaf, Node, path_bit};
use crate::field::{FIELD_BYTES, Fr, fr_from_le_bytes, fr_to_le_bytes};
use alloc::vec::Vec;

/// Levels of the tree in one page.
pub const PAGE_LEVELS: usize = 4;
/// Node slots in one page.
pub const PAGE_SLOTS: usize = (1 << (PAGE_LEVELS + 1)) - 2;
const PATH_BYTES: usize = 32;

/// Which page: the depth of the node above it and that node's path bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId {
    depth: u16,
    path: [u8; PATH_BYTES],
}

impl PageId {
    /// The page holding the node at `depth >= 1` on `path`.
    pub fn containing(depth: usize, path: &KeyPath) -> Self {
        debug_assert!(depth >= 1);
        let page_depth = (depth - 1) / PAGE_LEVELS * PAGE_LEVELS;
        // Bit `d` of the path is bit `d % 8` of byte `d / 8` in the limbs'
        // little-endian bytes: copy the bytes the depth uses, then clear the
        // bits at and below the page.
        let mut bytes = [0u8; PATH_BYTES];
        for (limb, chunk) in path.0.iter().zip(bytes.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        let used = page_depth.div_ceil(8);
        bytes[used..].fill(0);
        if !page_depth.is_multiple_of(8) {
            bytes[used - 1] &= (1u8 << (page_depth % 8)) - 1;
        }
        Self {
            depth: page_depth as u16,
            path: bytes,
        }
    }

    /// The depth of the node this page hangs under.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// Storage key: depth (2 bytes, big-endian) then the path bytes that the
    /// depth uses, so pages of one level sort together.
    pub fn to_key(&self) -> Vec<u8> {
        let used = self.depth().div_ceil(8);
        let mut key = Vec::with_capacity(2 + used);
        key.extend_from_slice(&self.depth.to_be_bytes());
        key.extend_from_slice(&self.path[..used]);
        key
    }

    /// Parses a storage key; rejects any key `to_key` cannot produce.
    pub fn from_key(key: &[u8]) -> Result<Self, PageDecodeError> {
        let (depth_bytes, path) = key.split_at_checked(2).ok_or(PageDecodeError::Malformed)?;
        let depth = u16::from_be_bytes([depth_bytes[0], depth_bytes[1]]);
        let used = usize::from(depth).div_ceil(8);
        if usize::from(depth) % PAGE_LEVELS != 0 || usize::from(depth) > 8 * PATH_BYTES || path.len() != used {
            return Err(PageDecodeError::Malformed);
        }
        let mut bytes = [0u8; PATH_BYTES];
        bytes[..used].copy_from_slice(path);
        let id = Self { depth, path: bytes };
        if id.to_key() != key || (usize::from(depth) % 8 != 0 && bytes[used - 1] >> (depth % 8) != 0) {
            return Err(PageDecodeError::Malformed);
        }
        Ok(id)
    }
}

/// Slot of the node at `depth` on `path` inside its page.
pub fn slot(depth: usize, path: &KeyPath) -> usize {
    let page_depth = (depth - 1) / PAGE_LEVELS * PAGE_LEVELS;
    let relative = depth - page_depth;
    let mut index = 0usize;
    for j in 0..relative {
        if path_bit(path, page_depth + j) {
            index |= 1 << j;
        }
    }
    (1 << relative) - 2 + index
}

/// Why stored page bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageDecodeError {
    Malformed,
    UnknownVersion(u8),
    NonCanonicalFieldElement,
}

impl core::fmt::Display for PageDecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed page"),
            Self::UnknownVersion(v) => write!(f, "unknown page format version {v}"),
            Self::NonCanonicalFieldElement => f.write_str("page holds a non-canonical field element"),
        }
    }
}

impl core::error::Error for PageDecodeError {}

/// The nodes of one page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    slots: [Node; PAGE_SLOTS],
}

const FORMAT_VERSION: u8 = 1;

impl Page {
    pub fn node(&self, slot: usize) -> Node {
        self.slots[slot]
    }

    pub fn set(&mut self, slot: usize, node: Node) {
        self.slots[slot] = node;
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Node::is_empty)
    }

    /// Non-empty nodes, for statistics and integrity checks.
    pub fn occupied(&self) -> usize {
        self.slots.iter().filter(|n| !n.is_empty()).count()
    }

    /// `[version][present: u32 LE][leaves: u32 LE]` then, per present slot in
    /// order, a middle hash (32 bytes) or a leaf's key, value, hash (96 bytes),
    /// all little-endian field elements.
    pub fn encode(&self) -> Vec<u8> {
        let mut present = 0u32;
        let mut leaves = 0u32;
        for (i, node) in self.slots.iter().enumerate() {
            match node {
                Node::Empty => {}
                Node::Leaf(_) => {
                    present |= 1 << i;
                    leaves |= 1 << i;
                }
                Node::Middle(_) => present |= 1 << i,
            }
        }
        let mut out = Vec::with_capacity(9 + PAGE_SLOTS * FIELD_BYTES);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&present.to_le_bytes());
        out.extend_from_slice(&leaves.to_le_bytes());
        for node in &self.slots {
            match node {
                Node::Empty => {}
                Node::Leaf(leaf) => {
                    out.extend_from_slice(&fr_to_le_bytes(&leaf.key));
                    out.extend_from_slice(&fr_to_le_bytes(&leaf.value));
                    out.extend_from_slice(&fr_to_le_bytes(&leaf.hash));
                }
                Node::Middle(hash) => out.extend_from_slice(&fr_to_le_bytes(hash)),
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, PageDecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(PageDecodeError::Malformed)?;
        if version != FORMAT_VERSION {
            return Err(PageDecodeError::UnknownVersion(version));
        }
        let (present, rest) = read_u32(rest)?;
        let (leaves, mut rest) = read_u32(rest)?;
        if present >> PAGE_SLOTS != 0 || leaves & !present != 0 {
            return Err(PageDecodeError::Malformed);
        }
        let mut page = Self::default();
        for (i, slot) in page.slots.iter_mut().enumerate() {
            if present & (1 << i) == 0 {
                continue;
            }
            if leaves & (1 << i) != 0 {
                let (key, r) = read_fr(rest)?;
                let (value, r) = read_fr(r)?;
                let (hash, r) = read_fr(r)?;
                rest = r;
                *slot = Node::Leaf(Leaf { key, value, hash });
            } else {
                let (hash, r) = read_fr(rest)?;
                rest = r;
                *slot = Node::Middle(hash);
            }
        }
        if !rest.is_empty() || page.is_empty() {
            return Err(PageDecodeError::Malformed);
        }
        Ok(page)
    }
}

fn read_u32(bytes: &[u8]) -> Result<(u32, &[u8]), PageDecodeError> {
    let (head, rest) = bytes.split_at_checked(4).ok_or(PageDecodeError::Malformed)?;
    Ok((u32::from_le_bytes([head[0], head[1], head[2], head[3]]), rest))
}

fn read_fr(bytes: &[u8]) -> Result<(Fr, &[u8]), PageDecodeError> {
    let (head, rest) = bytes.split_at_checked(FIELD_BYTES).ok_or(PageDecodeError::Malformed)?;
    let value = fr_from_le_bytes(head).map_err(|_| PageDecodeError::NonCanonicalFieldElement)?;
    Ok((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition `containing` implements with byte copies: bit `d` of
    /// the id is bit `d` of the path, for every `d` above the page.
    fn containing_bit_by_bit(depth: usize, path: &KeyPath) -> PageId {
        let page_depth = (depth - 1) / PAGE_LEVELS * PAGE_LEVELS;
        let mut bytes = [0u8; PATH_BYTES];
        for d in 0..page_depth {
            if path_bit(path, d) {
                bytes[d / 8] |= 1 << (d % 8);
            }
        }
        PageId {
            depth: page_depth as u16,
            path: bytes,
        }
    }

    #[test]
    fn containing_keeps_exactly_the_bits_above_the_page() {
        let paths = [
            KeyPath::new([u64::MAX; 4]),
            KeyPath::new([
                0x0123_4567_89ab_cdef,
                0xfedc_ba98_7654_3210,
                0xa5a5_5a5a_f00f_0ff0,
                0x1357_9bdf_2468_ace0,
            ]),
            KeyPath::new([1, 0, 0, 1 << 63]),
        ];
        for path in &paths {
            for depth in 1..256 {
                let id = PageId::containing(depth, path);
                assert_eq!(id, containing_bit_by_bit(depth, path), "depth {depth}");
                assert_eq!(PageId::from_key(&id.to_key()), Ok(id));
            }
        }
    }
}
