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
//!    A partial round then costs `2t - 1` multiplications instead of `t^2`.
//! 3. The partial rounds are rewritten in the coordinates the permutation
//!    tracks (see `track`): `2t - 2` multiplications in `t - 1` reductions.
//!
//! Shared by the crate and the build script, as `grain.rs` is.

use alloc::vec;
use alloc::vec::Vec;
use ark_bn254::Fr;
use ark_ff::{Field, Zero};

pub type Matrix = Vec<Vec<Fr>>;

pub struct Optimized {
    pub first_full_constants: Vec<Vec<Fr>>,
    /// Ends in the tracked coordinates of the first partial round.
    pub pre_sparse: Matrix,
    /// Per partial round, in tracked coordinates (see `track`): `c / l_r`.
    pub partial_constants: Vec<Fr>,
    /// Per partial round: `[gamma, alpha, beta_2 .. beta_{t-1}]`.
    pub partial_rows: Vec<Vec<Fr>>,
    /// Per partial round: `[0, 0, delta_2 .. delta_{t-1}]`.
    pub partial_columns: Vec<Vec<Fr>>,
    /// `l_R`: the first coordinate after the partial rounds is `l_R y`.
    pub partial_scale: Fr,
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

fn mul_vector_matrix(v: &[Fr], m: &Matrix) -> Vec<Fr> {
    (0..m[0].len())
        .map(|j| v.iter().zip(m).map(|(x, row)| *x * row[j]).sum())
        .collect()
}

fn identity(n: usize) -> Matrix {
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { Fr::from(1u64) } else { Fr::zero() })
                .collect()
        })
        .collect()
}

/// `m^e` by square and multiply.
fn power(m: &Matrix, mut e: usize) -> Matrix {
    let mut result: Option<Matrix> = None;
    let mut square = m.clone();
    while e > 0 {
        if e & 1 == 1 {
            result = Some(match result {
                Some(result) => mul_matrices(&result, &square),
                None => square.clone(),
            });
        }
        e >>= 1;
        if e > 0 {
            square = mul_matrices(&square, &square);
        }
    }
    result.unwrap_or_else(|| identity(m.len()))
}

/// The inverses of `xs`, with one field inversion (Montgomery's trick).
fn inverses(xs: &[Fr]) -> Vec<Fr> {
    let mut prefixes = Vec::with_capacity(xs.len());
    let mut product = Fr::from(1u64);
    for x in xs {
        prefixes.push(product);
        product *= x;
    }
    let mut inverse = product.inverse().expect("the values are non-zero");
    let mut out = vec![Fr::zero(); xs.len()];
    for ((out, prefix), x) in out.iter_mut().zip(&prefixes).zip(xs).rev() {
        *out = inverse * prefix;
        inverse *= x;
    }
    out
}

fn invert(m: &Matrix) -> Matrix {
    let n = m.len();
    let mut a: Matrix = m.clone();
    let mut inv = identity(n);
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

/// Rewrites the sparse partial rounds in the coordinates the permutation
/// tracks, so that a round is
///
/// ```text
/// z = (y + c')^5,  y' = z + u_1,
/// u_1' = gamma z + alpha u_1 + sum_{j >= 2} beta_j u_j,  u_j' = u_j + delta_j z (j >= 2):
/// ```
///
/// `2t - 2` multiplications (`2t - 1` in the sparse form) and `t - 1` modular
/// reductions, since the row's dot product is a tracked coordinate. With
/// `l_0 = 1`, `l_{r+1} = a_r l_r^5`, `m_r = l_{r+1}` and `m_R = 1` (`R`
/// rounds), the coordinates before round `r` are
///
/// ```text
/// y = s_0 / l_r,  u_1 = (w_r . s) / m_r,  u_j = s_j (j >= 2),
/// ```
///
/// where round `r` of the sparse form is `x = (s_0 + c)^5`,
/// `s_0' = a_r x + w_r . s`, `s' = s + v_r x` (`s = [s_1 .. s_{t-1}]`), and
/// `w_R = e_1`, so that after the last round `u_1 = s_1`. Then `x = l_r^5 z`,
/// `s_0' = a_r l_r^5 z + m_r u_1 = l_{r+1} (z + u_1)`, and `w_{r+1} . s'` is
/// `w_{r+1} . s + (w_{r+1} . v_r) x`, with `w_{r+1} . s` written in `w_r . s`
/// and the `s_j` by eliminating `s_1` (so `w_{r,1}` must not vanish).
///
/// Rewrites `pre_sparse` to produce `u_1` and returns `l_R`.
fn track(constants: &mut [Fr], rows: &mut [Vec<Fr>], columns: &mut [Vec<Fr>], pre_sparse: &mut Matrix) -> Fr {
    let rounds = rows.len();
    let width = pre_sparse.len();
    let mut l = vec![Fr::from(1u64)];
    for (r, row) in rows.iter().enumerate() {
        l.push(row[0] * l[r].pow([5u64]));
    }
    let m = |r: usize| if r < rounds { l[r + 1] } else { Fr::from(1u64) };
    // Scales are products of non-zero entries.
    let l_inverses = inverses(&l);
    let m_inverse = |r: usize| if r < rounds { l_inverses[r + 1] } else { Fr::from(1u64) };
    // w[r][k] is the coefficient of s_{k+1}.
    let mut w: Vec<Vec<Fr>> = rows.iter().map(|row| row[1..].to_vec()).collect();
    let mut e1 = vec![Fr::zero(); width - 1];
    e1[0] = Fr::from(1u64);
    w.push(e1);
    assert!(
        w.iter().all(|w| !w[0].is_zero()),
        "the partial rows' first weights are non-zero"
    );
    let w0_inverses = inverses(&w[..rounds].iter().map(|w| w[0]).collect::<Vec<_>>());

    let first: Vec<Fr> = (0..width)
        .map(|j| (1..width).map(|k| w[0][k - 1] * pre_sparse[k][j]).sum::<Fr>() * m_inverse(0))
        .collect();
    pre_sparse[1] = first;

    for r in 0..rounds {
        let l5 = l[r].pow([5u64]);
        let v = &columns[r][1..];
        let alpha = w[r + 1][0] * w0_inverses[r];
        let gamma: Fr = w[r + 1].iter().zip(v).map(|(w, v)| *w * v).sum();
        let next = m_inverse(r + 1);
        let mut row = vec![gamma * l5 * next, alpha * m(r) * next];
        row.extend((1..width - 1).map(|k| (w[r + 1][k] - alpha * w[r][k]) * next));
        let mut column = vec![Fr::zero(), Fr::zero()];
        column.extend(columns[r][2..].iter().map(|v| *v * l5));
        rows[r] = row;
        columns[r] = column;
        constants[r] *= l_inverses[r];
    }
    l[rounds]
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

    // Walking backwards from the last partial round, round `k` from the end
    // has the matrix `diag(1, H_k) M`, where `H_0 = I` and `H_{k+1} = H_k M^
    // = M^^(k+1)` (`M^` is `M` without its first row and column, `M^^k` its
    // `k`-th power): the dense factor of each round is folded into the round
    // before it. Its sparse factor has the row `[M_00, r M^^-(k+1)]` and the
    // column `[0, M^^k c]`, for `r` and `c` the rest of `M`'s first row and
    // column, so one inversion serves every round. What is left after the
    // first partial round, `diag(1, M^^R)`, multiplies the MDS of the last
    // full round before them.
    let hat: Matrix = mds[1..].iter().map(|row| row[1..].to_vec()).collect();
    let hat_inv = invert(&hat);
    let mut row = mds[0][1..].to_vec();
    let mut column: Vec<Fr> = mds[1..].iter().map(|row| row[0]).collect();
    let mut sparse_rows = vec![Vec::new(); partial_rounds];
    let mut sparse_columns = vec![Vec::new(); partial_rounds];
    for i in (0..partial_rounds).rev() {
        row = mul_vector_matrix(&row, &hat_inv);
        sparse_rows[i] = [mds[0][0]].iter().chain(&row).copied().collect();
        sparse_columns[i] = [Fr::zero()].iter().chain(&column).copied().collect();
        column = mul_matrix_vector(&hat, &column);
    }
    let mut dense = identity(width);
    for (dense_row, power_row) in dense[1..].iter_mut().zip(power(&hat, partial_rounds)) {
        dense_row[1..].copy_from_slice(&power_row);
    }
    let acc = mul_matrices(&dense, mds);

    let mut partial_constants: Vec<Fr> = rounds[half..half + partial_rounds].iter().map(|c| c[0]).collect();
    let mut pre_sparse = acc;
    let partial_scale = track(
        &mut partial_constants,
        &mut sparse_rows,
        &mut sparse_columns,
        &mut pre_sparse,
    );

    Optimized {
        first_full_constants: rounds[..half].to_vec(),
        pre_sparse,
        partial_constants,
        partial_rows: sparse_rows,
        partial_columns: sparse_columns,
        partial_scale,
        last_full_constants: rounds[half + partial_rounds..].to_vec(),
        mds: mds.clone(),
    }
}
