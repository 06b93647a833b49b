//! The latest/history layout against what it replaces: one ordered table of
//! `prefix ++ version` rows, modelled by a `BTreeMap`.

use super::history::versioned_tables;
use super::*;
use crate::store::keys::{escape_key, versioned};
use proptest::prelude::*;
use redb::ReadableTableMetadata;
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// A range query: its bounds and limit.
type RangeQuery = (Bound<Vec<u8>>, Bound<Vec<u8>>, usize);

fn prefixes() -> Vec<Vec<u8>> {
    // Escaped keys are prefix-free, as the engine's are.
    [&b""[..], b"a", b"a\0", b"ab", b"b", b"\0", b"\xff"]
        .iter()
        .map(|key| escape_key(key))
        .collect()
}

const VERSIONS: u64 = 12;

#[derive(Clone, Debug)]
enum Op {
    Put {
        prefix: usize,
        version: u64,
        value: u8,
    },
    Delete {
        prefix: usize,
        version: u64,
        hint: Option<u64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let prefix = 0..prefixes().len();
    prop_oneof![
        3 => (prefix.clone(), 0..VERSIONS, any::<u8>()).prop_map(|(prefix, version, value)| Op::Put { prefix, version, value }),
        2 => (prefix, 0..VERSIONS, proptest::option::of(0..VERSIONS + 1))
            .prop_map(|(prefix, version, hint)| Op::Delete { prefix, version, hint }),
    ]
}

/// A bound drawn from keys near the stored ones: prefixes, rows, and keys
/// that fall between them.
fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    let key = prop_oneof![
        (0..prefixes().len()).prop_map(|i| prefixes()[i].clone()),
        (0..prefixes().len(), 0..VERSIONS + 1).prop_map(|(i, v)| versioned(&prefixes()[i], v)),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    prop_oneof![
        key.clone().prop_map(Bound::Included),
        key.prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn apply(backend: &RedbBackend, model: &mut Model, ops: &[Op]) {
    let prefixes = prefixes();
    let mut batch = WriteBatch::default();
    // The backend applies a table's deletes before its puts; so does the model.
    let mut puts = Vec::new();
    for op in ops {
        match *op {
            Op::Put { prefix, version, value } => {
                let key = versioned(&prefixes[prefix], version);
                batch.put(Table::Values, key.clone(), vec![value; usize::from(value % 3)]);
                puts.push((key, vec![value; usize::from(value % 3)]));
            }
            Op::Delete { prefix, version, hint } => {
                let key = versioned(&prefixes[prefix], version);
                model.remove(&key);
                match hint {
                    Some(hint) => batch.delete_superseded(Table::Values, key, hint),
                    None => batch.delete(Table::Values, key),
                }
            }
        }
    }
    model.extend(puts);
    backend.commit(batch, false).unwrap();
}

fn model_range(model: &Model, start: Bound<&[u8]>, end: Bound<&[u8]>, limit: usize) -> Vec<KeyValue> {
    if matches!((start, end), (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) if s > e)
    {
        return Vec::new();
    }
    if matches!((start, end), (Bound::Excluded(s), Bound::Excluded(e)) if s == e) {
        return Vec::new();
    }
    model
        .range::<[u8], _>((start, end))
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn check(backend: &RedbBackend, model: &Model, ranges: &[RangeQuery]) {
    let reader = backend.reader().unwrap();
    for prefix in prefixes() {
        for low in 0..=VERSIONS {
            let key = versioned(&prefix, low);
            assert_eq!(
                reader.get(Table::Values, &key).unwrap(),
                model.get(&key).cloned(),
                "get {key:?}"
            );
            for high in low..=VERSIONS {
                let end = versioned(&prefix, high);
                let expected = model
                    .range(key.clone()..=end.clone())
                    .next_back()
                    .map(|(k, v)| (k.clone(), v.clone()));
                assert_eq!(
                    reader.last_in(Table::Values, &key, &end).unwrap(),
                    expected,
                    "last_in {key:?}..={end:?}"
                );
            }
        }
    }
    for (start, end, limit) in ranges {
        let (start, end) = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
        let expected = model_range(model, start, end, *limit);
        assert_eq!(
            reader.range(Table::Values, start, end, *limit).unwrap(),
            expected,
            "range {start:?} {end:?} {limit}"
        );
        if let (Bound::Included(s), Bound::Included(e)) = (start, end) {
            let expected = model_range(model, start, end, usize::MAX).pop();
            assert_eq!(
                reader.last_in(Table::Values, s, e).unwrap(),
                expected,
                "last_in {s:?}..={e:?}"
            );
        }
    }
    // Every stored row is one of the model's: none is left off a chain.
    let txn = backend.db.begin_read().unwrap();
    let tables = versioned_tables(Table::Values).unwrap();
    let stored =
        txn.open_table(tables.latest).unwrap().len().unwrap() + txn.open_table(tables.history).unwrap().len().unwrap();
    assert_eq!(stored, model.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn layout_reads_as_one_ordered_table(
        commits in proptest::collection::vec(proptest::collection::vec(op(), 1..10), 1..8),
        ranges in proptest::collection::vec((bound(), bound(), prop_oneof![0..6usize, Just(usize::MAX)]), 12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let backend = RedbBackend::open(dir.path()).unwrap();
        let mut model = Model::new();
        for ops in &commits {
            apply(&backend, &mut model, ops);
            check(&backend, &model, &ranges);
        }
    }
}

/// Writes `rows` into a file of the layout before this one (one table per
/// engine table, under its own name), as an older binary left it.
fn write_legacy(dir: &std::path::Path, rows: &Model, format: &[u8]) {
    let db = Database::create(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    for table in Table::ALL {
        txn.open_table(plain_definition(table)).unwrap();
    }
    {
        let mut values = txn.open_table(plain_definition(Table::Values)).unwrap();
        for (key, value) in rows {
            values.insert(key.as_slice(), value.as_slice()).unwrap();
        }
        let mut meta = txn.open_table(plain_definition(Table::Meta)).unwrap();
        meta.insert(b"format".as_slice(), format).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_legacy_file_is_moved_into_the_layout() {
    let mut rows = Model::new();
    for (i, prefix) in prefixes().iter().enumerate() {
        for version in (0..VERSIONS).filter(|v| !(v + i as u64).is_multiple_of(3)) {
            rows.insert(versioned(prefix, version), vec![i as u8, version as u8]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_legacy(dir.path(), &rows, b"1");
    let backend = RedbBackend::open(dir.path()).unwrap();
    let everything = (Bound::Unbounded, Bound::Unbounded, usize::MAX);
    check(&backend, &rows, &[everything]);
    let reader = backend.reader().unwrap();
    assert_eq!(reader.get(Table::Meta, b"format").unwrap().as_deref(), Some(FORMAT));
    let txn = backend.db.begin_read().unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n == "values" || n == "pages"),
        "legacy tables left: {names:?}"
    );
    drop((txn, reader, backend));
    // Opening again finds nothing to move and reads the same.
    let backend = RedbBackend::open(dir.path()).unwrap();
    check(&backend, &rows, &[(Bound::Unbounded, Bound::Unbounded, usize::MAX)]);
}
