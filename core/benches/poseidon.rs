//! Poseidon throughput against light-poseidon 0.5, in one criterion group so
//! the ratio comes from one run on one machine.

use ark_ff::UniformRand;
use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use light_poseidon::{Poseidon, PoseidonHasher};
use rustorium_core::{Fr, hash2, hash3};

fn poseidon(c: &mut Criterion) {
    let mut rng = rand::thread_rng();
    let inputs: Vec<Fr> = (0..3).map(|_| Fr::rand(&mut rng)).collect();
    let mut group = c.benchmark_group("poseidon");
    group.bench_function(BenchmarkId::new("ours", 2), |b| {
        b.iter(|| hash2(black_box(inputs[0]), black_box(inputs[1])))
    });
    let mut light2 = Poseidon::<Fr>::new_circom(2).expect("width 3 is supported");
    group.bench_function(BenchmarkId::new("light-poseidon", 2), |b| {
        b.iter(|| light2.hash(black_box(&inputs[..2])).expect("two inputs"))
    });
    group.bench_function(BenchmarkId::new("ours", 3), |b| {
        b.iter(|| hash3(black_box(inputs[0]), black_box(inputs[1]), black_box(inputs[2])))
    });
    let mut light3 = Poseidon::<Fr>::new_circom(3).expect("width 4 is supported");
    group.bench_function(BenchmarkId::new("light-poseidon", 3), |b| {
        b.iter(|| light3.hash(black_box(&inputs[..3])).expect("three inputs"))
    });
    group.finish();
}

criterion_group!(benches, poseidon);
criterion_main!(benches);
