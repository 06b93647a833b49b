//! Poseidon parameters computed at run time by the code the build script runs
//! for the static tables (`grain.rs`, `optimize.rs`): the same values, bit for
//! bit, for the widths a build keeps no table for.

use super::arith::{Limbs, from_fr};
use super::grain::{self, FULL_ROUNDS, PARTIAL_ROUNDS};
use super::optimize;
use super::permutation::Parameters;
use super::{MAX_INPUTS, PoseidonError, hash_with};
use crate::field::Fr;
use alloc::vec::Vec;

/// The optimized-form round constants and matrices of Poseidon for one input
/// count, derived from the Grain LFSR when asked for.
///
/// Deriving the widest (16 inputs) takes a few milliseconds natively and tens
/// of milliseconds in WebAssembly, and the result holds about 100 KB: derive
/// once and keep it (see [`PoseidonCache`](super::PoseidonCache)).
pub struct DerivedParameters {
    width: usize,
    /// Rows of `width` limbs, in this order: the 4 first full rounds'
    /// constants, `pre_sparse` (`width` rows), `mds` (`width` rows), the 4
    /// last full rounds' constants, each partial round's row, each partial
    /// round's column.
    rows: Vec<Limbs>,
    /// Each partial round's constant, then `partial_scale`.
    scalars: Vec<Limbs>,
}

impl core::fmt::Debug for DerivedParameters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DerivedParameters")
            .field("inputs", &self.inputs())
            .finish_non_exhaustive()
    }
}

impl DerivedParameters {
    /// Derives the parameters of circomlib's `Poseidon(input_count)`, for 1 to
    /// 16 inputs.
    pub fn derive(input_count: usize) -> Result<Self, PoseidonError> {
        if !(1..=MAX_INPUTS).contains(&input_count) {
            return Err(PoseidonError::UnsupportedInputCount { got: input_count });
        }
        let width = input_count + 1;
        let partial_rounds = PARTIAL_ROUNDS[width - 2];
        let (constants, mds) = grain::parameters(width, FULL_ROUNDS, partial_rounds);
        let opt = optimize::optimize(width, FULL_ROUNDS, partial_rounds, &constants, &mds);
        let rows = opt
            .first_full_constants
            .iter()
            .chain(&opt.pre_sparse)
            .chain(&opt.mds)
            .chain(&opt.last_full_constants)
            .chain(&opt.partial_rows)
            .chain(&opt.partial_columns)
            .flatten()
            .map(from_fr)
            .collect();
        let scalars = opt
            .partial_constants
            .iter()
            .chain([&opt.partial_scale])
            .map(from_fr)
            .collect();
        Ok(Self { width, rows, scalars })
    }

    /// The number of inputs these parameters hash.
    pub fn inputs(&self) -> usize {
        self.width - 1
    }

    /// Poseidon of `inputs`, which must number [`inputs`](Self::inputs).
    pub fn hash(&self, inputs: &[Fr]) -> Result<Fr, PoseidonError> {
        if inputs.len() != self.inputs() {
            return Err(PoseidonError::InputCountMismatch {
                expected: self.inputs(),
                got: inputs.len(),
            });
        }
        Ok(match self.width {
            2 => self.hash_width::<2>(inputs),
            3 => self.hash_width::<3>(inputs),
            4 => self.hash_width::<4>(inputs),
            5 => self.hash_width::<5>(inputs),
            6 => self.hash_width::<6>(inputs),
            7 => self.hash_width::<7>(inputs),
            8 => self.hash_width::<8>(inputs),
            9 => self.hash_width::<9>(inputs),
            10 => self.hash_width::<10>(inputs),
            11 => self.hash_width::<11>(inputs),
            12 => self.hash_width::<12>(inputs),
            13 => self.hash_width::<13>(inputs),
            14 => self.hash_width::<14>(inputs),
            15 => self.hash_width::<15>(inputs),
            16 => self.hash_width::<16>(inputs),
            // `derive` makes widths 2..=17 only.
            _ => self.hash_width::<17>(inputs),
        })
    }

    /// `T` is `self.width` and `inputs.len()` is `T - 1`.
    fn hash_width<const T: usize>(&self, inputs: &[Fr]) -> Fr {
        // `derive` lays out `rows` and `scalars` exactly as `view` reads them,
        // and `hash` calls this with `T = self.width`.
        let parameters = self.view::<T>().expect("derive lays out the parameters of width T");
        hash_with(&parameters, inputs)
    }

    /// The parameters as the permutation takes them; `None` unless `T` is
    /// `self.width`.
    pub(super) fn view<const T: usize>(&self) -> Option<Parameters<'_, T>> {
        if T != self.width {
            return None;
        }
        let (rows, []) = self.rows.as_chunks::<T>() else {
            return None;
        };
        let (first_full_constants, rows) = rows.split_first_chunk::<4>()?;
        let (pre_sparse, rows) = rows.split_first_chunk::<T>()?;
        let (mds, rows) = rows.split_first_chunk::<T>()?;
        let (last_full_constants, rows) = rows.split_first_chunk::<4>()?;
        let (partial_scale, partial_constants) = self.scalars.split_last()?;
        let (partial_rows, partial_columns) = rows.split_at_checked(partial_constants.len())?;
        (partial_columns.len() == partial_constants.len()).then_some(Parameters {
            first_full_constants,
            pre_sparse,
            partial_constants,
            partial_rows,
            partial_columns,
            partial_scale: *partial_scale,
            last_full_constants,
            mds,
        })
    }
}
