//! Derives the optimized Poseidon form (Poseidon paper, appendix B) from the
//! plain round constants and MDS matrix:
//!
//! 1. Partial-round constants are reduced to their first coordinate: the rest
//!    commutes with the single S-box and is pushed through the MDS matrix into
//!    the next round, ending in the first full round of the second half.
//! 2. Each partial-round matrix is factored as `M = S * D` with `D = diag(1, M^)`
//!    and `S` sparse. `D` commutes with a partial round and is folded into the
//!    previous round's matrix, walking backwards; what is left multiplies the
//!    MDS of the last full round of the first half (`pre_sparse`).
//!
//! A partial round then costs `2t - 1` multiplications instead of `t^2`.

use ark_bn254::Fr;
use ark_ff::{Field, Zero};

pub type Matrix = Vec<Vec<Fr>>;

pub struct Optimized {
    pub first_full_constants: Vec<Vec<Fr>>,
    pub pre_sparse: Matrix,
    pub partial_constants: Vec<Fr>,
    /// Per partial round: row 0 of the sparse matrix, `[a00, w_1 .. w_{t-1}]`.
    pub sparse_rows: Vec<Vec<Fr>>,
    /// Per partial round: column 0 below the diagonal, `[0, v_1 .. v_{t-1}]`.
    pub sparse_columns: Vec<Vec<Fr>>,
    pub last_full_constants: Vec<Vec<Fr>>,
    pub mds: Matrix,
}

fn mul_matrix_vector(m: &Matrix, v: &[Fr]) -> Vec<Fr> {
    m.iter()
        .map(|row| row.iter().zip(v).map(|(a, b)| *a * b).sum())
        .collect()
}

fn mul_matrices(a: &Matrix, b: &Matrix) -> Matrix {
    let n = b[0].len();
    a.iter()
        .map(|row| {
            (0..n)
                .map(|j| row.iter().enumerate().map(|(k, x)| *x * b[k][j]).sum())
                .collect()
        })
        .collect()
}

fn invert(m: &Matrix) -> Matrix {
    let n = m.len();
    let mut a: Matrix = m.clone();
    let mut inv: Matrix = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { Fr::from(1u64) } else { Fr::zero() })
                .collect()
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .find(|&r| !a[r][col].is_zero())
            .expect("MDS submatrices are invertible");
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let scale = a[col][col].inverse().expect("pivot is non-zero");
        for j in 0..n {
            a[col][j] *= scale;
            inv[col][j] *= scale;
        }
        for r in 0..n {
            if r != col && !a[r][col].is_zero() {
                let factor = a[r][col];
                for j in 0..n {
                    let (ac, ic) = (a[col][j], inv[col][j]);
                    a[r][j] -= factor * ac;
                    inv[r][j] -= factor * ic;
                }
            }
        }
    }
    inv
}

pub fn optimize(width: usize, full_rounds: usize, partial_rounds: usize, constants: &[Fr], mds: &Matrix) -> Optimized {
    let half = full_rounds / 2;
    let mut rounds: Vec<Vec<Fr>> = constants.chunks(width).map(<[Fr]>::to_vec).collect();

    for r in half..half + partial_rounds {
        let mut tail = rounds[r].clone();
        tail[0] = Fr::zero();
        for c in &mut rounds[r][1..] {
            *c = Fr::zero();
        }
        let pushed = mul_matrix_vector(mds, &tail);
        for (c, p) in rounds[r + 1].iter_mut().zip(pushed) {
            *c += p;
        }
    }

    let mut sparse_rows = vec![Vec::new(); partial_rounds];
    let mut sparse_columns = vec![Vec::new(); partial_rounds];
    let mut acc = mds.clone();
    for i in (0..partial_rounds).rev() {
        let hat: Matrix = acc[1..].iter().map(|row| row[1..].to_vec()).collect();
        let hat_inv = invert(&hat);
        let row = &acc[0][1..];
        let w: Vec<Fr> = (0..width - 1)
            .map(|j| (0..width - 1).map(|k| row[k] * hat_inv[k][j]).sum())
            .collect();
        let mut sparse_row = vec![acc[0][0]];
        sparse_row.extend(w);
        let mut sparse_column = vec![Fr::zero()];
        sparse_column.extend(acc[1..].iter().map(|row| row[0]));
        sparse_rows[i] = sparse_row;
        sparse_columns[i] = sparse_column;

        let mut diag: Matrix = vec![vec![Fr::zero(); width]; width];
        diag[0][0] = Fr::from(1u64);
        for (r, hat_row) in hat.iter().enumerate() {
            diag[r + 1][1..].copy_from_slice(hat_row);
        }
        acc = mul_matrices(&diag, mds);
    }

    Optimized {
        first_full_constants: rounds[..half].to_vec(),
        pre_sparse: acc,
        partial_constants: rounds[half..half + partial_rounds].iter().map(|c| c[0]).collect(),
        sparse_rows,
        sparse_columns,
        last_full_constants: rounds[half + partial_rounds..].to_vec(),
        mds: mds.clone(),
    }
}
