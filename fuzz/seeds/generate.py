#!/usr/bin/env python3
"""Regenerates the seed inputs under fuzz/seeds/ from tests/vectors/iden3_vectors.json
(proofs made by @iden3/js-merkletree): compact proof bytes, proof JSON and decimal
field elements. The fuzz targets start from these instead of from nothing."""
import hashlib
import json
import pathlib

here = pathlib.Path(__file__).resolve().parent
vectors = json.loads((here.parent.parent / "tests/vectors/iden3_vectors.json").read_text())
R = 21888242871839275222246405745257275088548364400416034343698204186575808495617


def write(target, data):
    out = here / target
    out.mkdir(exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


decimals = {"0", "1", str(R - 1), str(R), str(2**256 - 1)}
for tree in vectors["trees"]:
    for proof in tree["proofs"]:
        write("decode_compact", bytes.fromhex(proof["proof_bytes_hex"]))
        write("decode_json", json.dumps(proof["proof_json"]).encode())
        decimals.update(proof["proof_json"]["siblings"][:2])
        decimals.add(proof["key"])
for d in sorted(decimals):
    write("decimal", d.encode())
