//! Tree throughput: a batch of 10 k random inserts into a 1 M-key in-memory
//! tree on one core and on all cores, and proof verification at 1 M keys.
//! Prints hashes per write next to criterion's timings, and times the batch's
//! Poseidon calls alone (one leaf hash per new key, a middle hash for the
//! rest) on one core: the hash-bound time the batch rows are compared with.

use ark_ff::UniformRand;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use rand::SeedableRng;
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_core::{Fr, hash2, hash3};

const TREE_KEYS: usize = 1_000_000;
const BATCH: usize = 10_000;
const MAX_LEVELS: u16 = 64;

fn random_ops(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<Op> {
    (0..n).map(|_| Op::put(Fr::rand(rng), Fr::rand(rng))).collect()
}

fn tree(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut base = MemoryTree::new(MAX_LEVELS).expect("valid max_levels");
    for chunk in random_ops(&mut rng, TREE_KEYS).chunks(100_000) {
        base.apply(chunk).expect("random keys fit in 64 levels");
    }
    let batch = random_ops(&mut rng, BATCH);
    let hashes = base.tree().apply(base.store(), &batch).expect("batch applies").hashes;
    eprintln!(
        "batch of {BATCH} into {TREE_KEYS} keys: {hashes} Poseidon calls = {:.2} per write",
        hashes as f64 / BATCH as f64
    );

    let mut group = c.benchmark_group("tree");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let threads = rayon::current_num_threads();
    for cores in [1, threads] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .build()
            .expect("thread pool");
        group.bench_function(
            BenchmarkId::new("batch_insert_10k_into_1m", format!("{cores}-cores")),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        base.tree()
                            .apply(base.store(), black_box(&batch))
                            .expect("batch applies")
                    })
                })
            },
        );
    }
    let (a, b) = (Fr::from(3u64), Fr::from(5u64));
    let middle_hashes = hashes as usize - BATCH;
    group.bench_function("hashes_of_the_batch_alone/1-core", |bench| {
        bench.iter(|| {
            let mut acc = a;
            for _ in 0..BATCH {
                acc = hash3(black_box(acc), b, Fr::from(1u64));
            }
            for _ in 0..middle_hashes {
                acc = hash2(black_box(acc), b);
            }
            acc
        })
    });
    group.finish();

    let keys: Vec<Fr> = batch.iter().take(64).map(|op| op.key).collect();
    let mut with_batch = base.clone();
    with_batch.apply(&batch).expect("batch applies");
    let lookups = with_batch.prove_many(&keys).expect("proofs");
    let root = with_batch.root();
    let depth: usize = lookups.iter().map(|l| l.proof.depth()).sum::<usize>() / lookups.len();
    eprintln!("average proof depth at {} keys: {depth}", TREE_KEYS + BATCH);
    let mut group = c.benchmark_group("verify");
    let mut i = 0;
    group.bench_function(BenchmarkId::new("proof_at_1m_keys", format!("depth~{depth}")), |b| {
        b.iter(|| {
            let lookup = &lookups[i % lookups.len()];
            i += 1;
            lookup
                .proof
                .verify(&root, &lookup.key, lookup.value.as_ref(), MAX_LEVELS)
                .expect("valid proof")
        })
    });
    let prove_keys: Vec<Fr> = keys.iter().take(1).copied().collect();
    group.bench_function("prove_at_1m_keys", |b| {
        b.iter(|| with_batch.prove_many(black_box(&prove_keys)).expect("proof"))
    });
    group.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
