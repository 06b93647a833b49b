//! The JavaScript API in a real engine: Node.js by default, headless
//! Chromium with `WASM_BINDGEN_USE_BROWSER=1` (see `test.sh`).
//!
//! Proofs come from rustorium-core's tree; the client is tested against a
//! fake gRPC-web server installed as `globalThis.fetch`, so the browser's
//! own `fetch`, `Response` and body streams are exercised.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use prost::Message;
use rustorium_core::bytes::bytes_to_field;
use rustorium_core::field::fr_to_decimal;
use rustorium_core::tree::{MemoryTree, Op};
use rustorium_core::{Fr, hash2, hash3};
use rustorium_proto::{fr_to_bytes, proof_to_proto, v1};
use rustorium_wasm_client::framing::encode_frame;
use rustorium_wasm_client::js::api::{key_to_field, poseidon, to_circom_inputs, verify_proof};
use rustorium_wasm_client::js::client::RustoriumClient;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use wasm_bindgen_test::*;

const LEVELS: u16 = 64;

fn js(text: &str) -> JsValue {
    JsValue::from_str(text)
}

fn dec(x: &Fr) -> JsValue {
    js(&fr_to_decimal(x))
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &js(key)).unwrap()
}

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &js(key), value).unwrap();
    }
    object.into()
}

/// The `reason` of a VerificationError (the classes are not registered in
/// these tests, so it is an Error named VerificationError).
fn reason(error: JsValue) -> String {
    assert_eq!(
        get(&error, "name").as_string().as_deref(),
        Some("VerificationError"),
        "{error:?}"
    );
    get(&error, "reason").as_string().unwrap()
}

fn field_tree() -> MemoryTree {
    let mut tree = MemoryTree::new(LEVELS).unwrap();
    let ops: Vec<Op> = (1..=300u64).map(|i| Op::put(Fr::from(i * 7919), Fr::from(i))).collect();
    tree.apply(&ops).unwrap();
    tree
}

#[wasm_bindgen_test]
fn poseidon_matches_circomlibjs_vectors() {
    let vectors = js_sys::JSON::parse(include_str!("../../tests/vectors/poseidon_vectors.json")).unwrap();
    let vectors: Array = get(&vectors, "vectors").unchecked_into();
    assert!(vectors.length() > 5);
    for vector in vectors.iter() {
        let inputs = get(&vector, "inputs");
        let output = poseidon(inputs).unwrap();
        let output = js_sys::BigInt::unchecked_from_js(output).to_string(10).unwrap();
        assert_eq!(String::from(output), get(&vector, "output").as_string().unwrap());
    }
    // bigint, number and decimal inputs are the same element.
    let mixed = Array::of3(&js_sys::BigInt::from(1u64).into(), &JsValue::from(2), &js("3"));
    assert_eq!(
        poseidon(mixed.into()).unwrap(),
        poseidon(Array::of3(&js("1"), &js("2"), &js("3")).into()).unwrap()
    );
    assert!(poseidon(Array::new().into()).is_err());
    assert!(poseidon(Array::of1(&js("-1")).into()).is_err());
}

/// Every width, against an independent implementation: on wasm32 core derives
/// the parameters of 4 inputs and more at run time, and the second round
/// hashes with the ones the client's cache kept.
#[wasm_bindgen_test]
fn poseidon_of_every_input_count_matches_circomlibjs() {
    // circomlibjs 0.1.7: `poseidon([1, 2, .., n])` for n = 1..=16.
    const EXPECTED: [&str; 16] = [
        "18586133768512220936620570745912940619677854269274689475585506675881198879027",
        "7853200120776062878684798364095072458815029376092732009249414926327459813530",
        "6542985608222806190361240322586112750744169038454362455181422643027100751666",
        "18821383157269793795438455681495246036402687001665670618754263018637548127333",
        "6183221330272524995739186171720101788151706631170188140075976616310159254464",
        "20400040500897583745843009878988256314335038853985262692600694741116813247201",
        "12748163991115452309045839028154629052133952896122405799815156419278439301912",
        "18604317144381847857886385684060986177838410221561136253933256952257712543953",
        "13589767895268936107593642967621470491511464502761040466226072462545218539640",
        "3657500514307717306974218405144578736633140001277925127187636780142269815841",
        "3572015662710076994097916907865950486270383304442561406230608893458731714472",
        "2501997477381648492950318384533644783248002172679259592360114615426357826485",
        "7041832639553862712666971417715061873827921493498355005117622707743491651590",
        "8354478399926161176778659061636406690034081872658507739535256090879947077494",
        "4203130618016961831408770638653325366880478848856764494148034853759773445968",
        "9989051620750914585850546081941653841776809718687451684622678807385399211877",
    ];
    for _ in 0..2 {
        for (i, expected) in EXPECTED.iter().enumerate() {
            let inputs: Array = (1..=i as u32 + 1).map(JsValue::from).collect();
            let output = poseidon(inputs.into()).unwrap();
            let output = js_sys::BigInt::unchecked_from_js(output).to_string(10).unwrap();
            assert_eq!(String::from(output), *expected, "{} inputs", i + 1);
        }
    }
}

#[wasm_bindgen_test]
fn key_to_field_is_core_bytes_mode() {
    for text in ["", "a", "rustorium", &"x".repeat(500)] {
        let got = key_to_field(js(text)).unwrap();
        let expected: JsValue = js_sys::BigInt::new(&dec(&bytes_to_field(text.as_bytes())))
            .unwrap()
            .into();
        assert_eq!(got, expected);
        let bytes: JsValue = Uint8Array::from(text.as_bytes()).into();
        assert_eq!(key_to_field(bytes).unwrap(), got);
    }
}

#[wasm_bindgen_test]
fn verifies_every_form_and_rejects_every_bit_flip() {
    let tree = field_tree();
    let root = dec(&tree.root());
    for key in [7919u64 * 5, 7919 * 300, 12345] {
        let key = Fr::from(key);
        let lookup = tree.prove(&key).unwrap();
        let value = lookup.value.as_ref().map_or(JsValue::NULL, dec);
        let json = rustorium_core::proof::json::Iden3ProofJson::from(&lookup.proof);
        let json_text = js_sys::JSON::stringify(&serde_wasm_bindgen_json(&json)).unwrap();
        let compact = lookup.proof.to_compact().unwrap();
        let protobuf = proof_to_proto(&lookup.proof, LEVELS).encode_to_vec();
        let forms: [JsValue; 4] = [
            js_sys::JSON::parse(&String::from(json_text.clone())).unwrap(),
            json_text.into(),
            Uint8Array::from(compact.as_slice()).into(),
            Uint8Array::from(protobuf.as_slice()).into(),
        ];
        for form in &forms {
            assert_eq!(
                verify_proof(root.clone(), dec(&key), value.clone(), form.clone(), JsValue::UNDEFINED),
                Ok(true)
            );
            // The opposite claim fails.
            let other = if value.is_null() {
                dec(&Fr::from(1u64))
            } else {
                JsValue::NULL
            };
            assert!(verify_proof(root.clone(), dec(&key), other, form.clone(), JsValue::UNDEFINED).is_err());
        }
        // Every single bit flip of the compact form is refused.
        for bit in 0..compact.len() * 8 {
            let mut flipped = compact.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let proof: JsValue = Uint8Array::from(flipped.as_slice()).into();
            let result = verify_proof(root.clone(), dec(&key), value.clone(), proof, JsValue::UNDEFINED);
            let error = result.expect_err(&format!("bit {bit} of the compact proof flipped"));
            if bit >= 8 {
                reason(error);
            }
        }
        // A tree shallower than the proof refuses it.
        let tight = options(&[("maxLevels", JsValue::from(lookup.proof.depth() as u32))]);
        assert!(
            reason(verify_proof(root.clone(), dec(&key), value.clone(), forms[2].clone(), tight).unwrap_err())
                .contains("siblings")
        );
    }
}

/// JSON through JSON.parse, as a caller would hold it.
fn serde_wasm_bindgen_json(json: &rustorium_core::proof::json::Iden3ProofJson) -> JsValue {
    let siblings: Array = json.siblings.iter().map(|s| js(s)).collect();
    let mut pairs = vec![
        ("existence", JsValue::from(json.existence)),
        ("siblings", siblings.into()),
    ];
    if let Some(aux) = &json.node_aux {
        pairs.push(("node_aux", options(&[("key", js(&aux.key)), ("value", js(&aux.value))])));
    }
    options(&pairs)
}

#[wasm_bindgen_test]
fn bytes_mode_and_circom_inputs() {
    let mut tree = MemoryTree::new(LEVELS).unwrap();
    tree.insert(bytes_to_field(b"alice"), bytes_to_field(b"42")).unwrap();
    tree.insert(bytes_to_field(b"bob"), bytes_to_field(b"7")).unwrap();
    let lookup = tree.prove(&bytes_to_field(b"alice")).unwrap();
    let proof: JsValue = Uint8Array::from(lookup.proof.to_compact().unwrap().as_slice()).into();
    let bytes_mode = || options(&[("keyMode", js("bytes"))]);
    let root = dec(&tree.root());
    assert_eq!(
        verify_proof(root.clone(), js("alice"), js("42"), proof.clone(), bytes_mode()),
        Ok(true)
    );
    assert!(verify_proof(root.clone(), js("alice"), js("43"), proof.clone(), bytes_mode()).is_err());
    // Field mode reads "alice" as a decimal number: a TypeError, not a verdict.
    let error = verify_proof(root.clone(), js("alice"), js("42"), proof.clone(), JsValue::UNDEFINED).unwrap_err();
    assert!(error.is_instance_of::<js_sys::TypeError>());

    let statement = options(&[
        ("root", root.clone()),
        ("key", js("alice")),
        ("value", js("42")),
        ("proof", proof.clone()),
        ("keyMode", js("bytes")),
    ]);
    let inputs = to_circom_inputs(statement.clone(), JsValue::from(10)).unwrap();
    assert_eq!(get(&inputs, "fnc").as_string().unwrap(), "0");
    assert_eq!(get(&inputs, "key"), dec(&bytes_to_field(b"alice")));
    assert_eq!(Array::from(&get(&inputs, "siblings")).length(), 10);
    assert!(
        to_circom_inputs(statement, JsValue::from(1)).is_err(),
        "proof deeper than nLevels - 1"
    );
}

/// Builds a depth-21 membership proof (a random key in a 1M-key tree) by
/// hashing, and times its verification.
#[wasm_bindgen_test]
fn verify_timing_of_a_million_key_proof() {
    let key = Fr::from(0x1234_5678_9abc_def1u64);
    let value = Fr::from(99u64);
    let siblings: Vec<Fr> = (0..21u64).map(|i| Fr::from(1000 + i)).collect();
    let mut node = hash3(key, value, Fr::from(1u64));
    let bits = 0x1234_5678_9abc_def1u64;
    for (depth, sibling) in siblings.iter().enumerate().rev() {
        node = if bits >> depth & 1 == 1 {
            hash2(*sibling, node)
        } else {
            hash2(node, *sibling)
        };
    }
    let json = options(&[
        ("existence", JsValue::TRUE),
        ("siblings", siblings.iter().map(dec).collect::<Array>().into()),
    ]);
    let verify = || verify_proof(dec(&node), dec(&key), dec(&value), json.clone(), JsValue::UNDEFINED);
    assert_eq!(verify(), Ok(true));
    let performance = get(&js_sys::global(), "performance");
    let now: Function = get(&performance, "now").unchecked_into();
    let clock = || now.call0(&performance).unwrap().as_f64().unwrap();
    let runs = 30;
    let start = clock();
    for _ in 0..runs {
        verify().unwrap();
    }
    let micros = (clock() - start) * 1000.0 / f64::from(runs);
    web_sys_console_log(&format!("verify of a depth-21 proof (test profile): {micros:.0} us"));
}

fn web_sys_console_log(text: &str) {
    let console = get(&js_sys::global(), "console");
    let log: Function = get(&console, "log").unchecked_into();
    log.call1(&console, &js(text)).unwrap();
}

/// A fake node: a bytes-mode tree behind `globalThis.fetch`, which can lie.
struct FakeNode {
    tree: MemoryTree,
    version: u64,
    /// Flip a bit of the first sibling of Get proofs.
    tamper: bool,
    /// The versions WatchRoots streams.
    watch_versions: Vec<u64>,
}

fn frame_response(messages: &[Vec<u8>], status: u32) -> web_sys::Response {
    let mut body = Vec::new();
    for message in messages {
        body.extend(encode_frame(message));
    }
    let trailer = format!("grpc-status: {status}\r\ngrpc-message: fake%20error\r\n");
    body.push(0x80);
    body.extend((trailer.len() as u32).to_be_bytes());
    body.extend(trailer.as_bytes());
    let headers = web_sys::Headers::new().unwrap();
    headers.set("content-type", "application/grpc-web+proto").unwrap();
    let init = web_sys::ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), &init).unwrap()
}

impl FakeNode {
    fn handle(&mut self, method: &str, message: &[u8]) -> web_sys::Response {
        let lookup_proof = |tree: &MemoryTree, key: &[u8]| {
            let lookup = tree.prove(&bytes_to_field(key)).unwrap();
            (lookup.value.is_some(), proof_to_proto(&lookup.proof, LEVELS))
        };
        let reply = match method {
            "GetRoot" => v1::GetRootResponse {
                root: fr_to_bytes(&self.tree.root()),
                version: self.version,
                timestamp_unix_nanos: 1,
                max_levels: u32::from(LEVELS),
                key_mode: v1::KeyMode::Bytes as i32,
            }
            .encode_to_vec(),
            "Put" => {
                let request = v1::PutRequest::decode(message).unwrap();
                self.tree
                    .insert(bytes_to_field(&request.key), bytes_to_field(&request.value))
                    .unwrap();
                self.version += 1;
                v1::PutResponse {
                    root: fr_to_bytes(&self.tree.root()),
                    version: self.version,
                    timestamp_unix_nanos: 2,
                    proof: Some(lookup_proof(&self.tree, &request.key).1),
                }
                .encode_to_vec()
            }
            "Get" => {
                let request = v1::GetRequest::decode(message).unwrap();
                let (found, mut proof) = lookup_proof(&self.tree, &request.key);
                if self.tamper {
                    proof.siblings[0][0] ^= 1;
                    proof.compact.clear();
                }
                v1::GetResponse {
                    found,
                    value: if found { b"v".to_vec() } else { Vec::new() },
                    proof: Some(proof),
                    root: fr_to_bytes(&self.tree.root()),
                    version: self.version,
                    timestamp_unix_nanos: 3,
                }
                .encode_to_vec()
            }
            "WatchRoots" => {
                let events: Vec<Vec<u8>> = self
                    .watch_versions
                    .iter()
                    .map(|&version| {
                        v1::RootEvent {
                            version,
                            root: fr_to_bytes(&Fr::from(version)),
                            timestamp_unix_nanos: version,
                            op_count: 1,
                        }
                        .encode_to_vec()
                    })
                    .collect();
                return frame_response(&events, 0);
            }
            _ => return frame_response(&[], 12),
        };
        frame_response(&[reply], 0)
    }

    /// Installs the node as `globalThis.fetch`.
    fn install(self) -> Rc<RefCell<FakeNode>> {
        let node = Rc::new(RefCell::new(self));
        let served = node.clone();
        let fetch = Closure::<dyn FnMut(web_sys::Request) -> Promise>::new(move |request: web_sys::Request| {
            let node = served.clone();
            future_to_promise(async move {
                let body = JsFuture::from(request.array_buffer()?).await?;
                let body = Uint8Array::new(&body).to_vec();
                assert_eq!(body[0], 0, "uncompressed message frame");
                let url = request.url();
                let method = url.rsplit('/').next().unwrap().to_owned();
                assert!(url.contains("/rustorium.v1.Store/"), "{url}");
                assert_eq!(request.headers().get("x-grpc-web")?.as_deref(), Some("1"));
                Ok(node.borrow_mut().handle(&method, &body[5..]).into())
            })
        });
        Reflect::set(&js_sys::global(), &js("fetch"), fetch.as_ref()).unwrap();
        fetch.forget();
        node
    }
}

fn fake_node() -> FakeNode {
    let mut tree = MemoryTree::new(LEVELS).unwrap();
    let ops: Vec<Op> = (0..20u32)
        .map(|i| Op::put(bytes_to_field(format!("other-{i}").as_bytes()), bytes_to_field(b"x")))
        .collect();
    tree.apply(&ops).unwrap();
    FakeNode {
        tree,
        version: 0,
        tamper: false,
        watch_versions: vec![4, 5, 6],
    }
}

async fn connect() -> RustoriumClient {
    let client = JsFuture::from(RustoriumClient::connect(
        "http://fake.invalid/".into(),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    wasm_bindgen::convert::TryFromJsValue::try_from_js_value(client).unwrap()
}

#[wasm_bindgen_test]
async fn client_verifies_answers_and_refuses_a_tampered_proof() {
    let node = fake_node().install();
    let client = connect().await;
    assert_eq!(client.key_mode(), "bytes");
    assert_eq!(client.max_levels(), LEVELS);
    let put = JsFuture::from(client.put(js("k"), js("v"))).await.unwrap();
    assert_eq!(get(&put, "version"), JsValue::from(1));
    let got = JsFuture::from(client.get(js("k"), JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(get(&got, "found"), JsValue::TRUE);
    assert_eq!(Uint8Array::from(get(&got, "value")).to_vec(), b"v");
    assert_eq!(get(&got, "root"), dec(&node.borrow().tree.root()));
    let missing = JsFuture::from(client.get(js("nope"), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(get(&missing, "value"), JsValue::NULL);

    node.borrow_mut().tamper = true;
    let error = JsFuture::from(client.get(js("k"), JsValue::UNDEFINED))
        .await
        .unwrap_err();
    assert!(reason(error).contains("root"));

    // A trusted root the server does not answer with is refused.
    node.borrow_mut().tamper = false;
    client.set_trusted_root(dec(&Fr::from(5u64))).unwrap();
    let error = JsFuture::from(client.get(js("k"), JsValue::UNDEFINED))
        .await
        .unwrap_err();
    assert!(reason(error).contains("trusted root"));
}

async fn watch(versions: Vec<u64>) -> (Vec<u64>, Result<JsValue, JsValue>) {
    let mut node = fake_node();
    node.watch_versions = versions;
    node.install();
    let client = connect().await;
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen_in = seen.clone();
    let callback = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        seen_in
            .borrow_mut()
            .push(get(&event, "version").as_f64().unwrap() as u64);
    });
    let handle = client
        .watch_roots(
            callback.as_ref().unchecked_ref::<Function>().clone(),
            JsValue::UNDEFINED,
        )
        .unwrap();
    let outcome = JsFuture::from(handle.done()).await;
    drop(callback);
    let seen = seen.borrow().clone();
    (seen, outcome)
}

#[wasm_bindgen_test]
async fn watch_roots_in_order_and_refuses_going_backwards() {
    let (seen, outcome) = watch(vec![4, 5, 6]).await;
    assert_eq!(seen, [4, 5, 6]);
    assert!(outcome.is_ok());
    let (seen, outcome) = watch(vec![4, 5, 3, 6]).await;
    assert_eq!(seen, [4, 5]);
    assert!(reason(outcome.unwrap_err()).contains("backwards"));
}
