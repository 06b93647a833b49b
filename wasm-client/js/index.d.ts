// Types of @rustorium/client. Every field element the API returns (roots,
// siblings) is a decimal string, as in iden3 JSON; `poseidon` and
// `keyToField` return bigints.

/** A field element (BN254 scalar): bigint, decimal string, safe integer or 32 little-endian bytes. */
export type FieldLike = bigint | string | number | Uint8Array;
/** A key or value: bytes mode takes a Uint8Array or a string (UTF-8); field mode takes a FieldLike. */
export type KeyLike = Uint8Array | string | bigint | number;
export type KeyMode = 'bytes' | 'field';

/** An iden3 sparse-Merkle-tree proof in JSON form (as @iden3/js-merkletree writes it). */
export interface Iden3Proof {
  existence: boolean;
  /** Decimal strings, one per level from the root down; empty siblings are "0". */
  siblings: string[];
  node_aux?: { key: string; value: string };
}

/**
 * A proof in any accepted form: iden3 JSON (object, object with toJSON such as a
 * js-merkletree Proof, or JSON text), iden3 compact bytes (first byte <= 3) or an
 * encoded `rustorium.v1.Proof` message (first byte > 3, or empty).
 */
export type ProofInput = Iden3Proof | { toJSON(): Iden3Proof } | string | Uint8Array;

/** A proof or an answer failed verification; nothing was returned. */
export class VerificationError extends Error {
  constructor(reason: string);
  readonly name: 'VerificationError';
  /** Why, in the words of rustorium-core's verifier (or of the client's own checks). */
  readonly reason: string;
}

/** A call failed: a gRPC status other than OK, or no usable gRPC-web answer. */
export class RpcError extends Error {
  constructor(code: number, codeName: string, details: string);
  readonly name: 'RpcError';
  /** The gRPC status code (e.g. 3 INVALID_ARGUMENT, 11 OUT_OF_RANGE, 14 UNAVAILABLE, 16 UNAUTHENTICATED). */
  readonly code: number;
  readonly codeName: string;
  readonly details: string;
}

export interface ConnectOptions {
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /**
   * A root obtained elsewhere. Reads must answer against it (else VerificationError);
   * with a version, reads are made at that version.
   */
  trustedRoot?: FieldLike | { root: FieldLike; version?: number | bigint };
  /** Fail (VerificationError) unless the server states exactly this max_levels. */
  maxLevels?: number;
  /** Fail (VerificationError) unless the server states exactly this key mode. */
  keyMode?: KeyMode;
}

/** What every proven answer carries. */
export interface Proven {
  /** The key in wire form (bytes mode: its bytes; field mode: 32 little-endian bytes). */
  key: Uint8Array;
  /** The root the proof was verified against, decimal. */
  root: string;
  version: number;
  /** Commit time of `version`, nanoseconds since the Unix epoch. */
  timestamp: bigint;
  keyMode: KeyMode;
  /** The verified proof, iden3 JSON. */
  proof: Iden3Proof;
}

export interface GetResult extends Proven {
  found: boolean;
  /** The value (wire form) when found, else null. */
  value: Uint8Array | null;
}
export interface PutResult extends Proven {
  value: Uint8Array;
}
export interface DeleteResult extends Proven {
  value: null;
  /** Whether the key was present before the delete (stated by the server, not proven). */
  existed: boolean;
}
export type BatchOp = { key: KeyLike; value: KeyLike } | { key: KeyLike; delete: true };
export interface BatchResult {
  root: string;
  version: number;
  timestamp: bigint;
  keyMode: KeyMode;
  /** One verified proof per op, in order, each showing its key's state after the batch. */
  proofs: Iden3Proof[];
}
export interface RootInfo {
  root: string;
  version: number;
  timestamp: bigint;
  maxLevels: number;
  keyMode: KeyMode | null;
}
export interface RootEvent {
  version: number;
  root: string;
  timestamp: bigint;
  /** Ops in the write that made this version. */
  opCount: number;
}

/** A running watchRoots subscription. */
export class RootWatch {
  private constructor();
  /**
   * Settles when the stream ends: resolves after close() or a clean end, rejects with
   * VerificationError (a version that is not the previous one plus 1) or RpcError.
   */
  readonly done: Promise<void>;
  close(): void;
  free(): void;
}

/** A connection to one Rustorium node; every answer is verified before it is returned. */
export class RustoriumClient {
  private constructor();
  /** Reads the store's parameters (GetRoot) and returns a client. `url` is the node's base URL. */
  static connect(url: string, options?: ConnectOptions): Promise<RustoriumClient>;
  readonly url: string;
  readonly keyMode: KeyMode;
  readonly maxLevels: number;
  readonly trustedRoot: { root: string; version?: number } | null;
  setTrustedRoot(root: ConnectOptions['trustedRoot'] | null): void;
  /** The value (or absence) of `key`, returned only after its proof verified. */
  get(key: KeyLike, options?: { atVersion?: number | bigint }): Promise<GetResult>;
  /** Writes `key`; the membership proof against the new root is verified. */
  put(key: KeyLike, value: KeyLike): Promise<PutResult>;
  /** Writes and deletes atomically; every op's proof is verified. */
  putBatch(ops: BatchOp[]): Promise<BatchResult>;
  /** Deletes `key`; the non-membership proof against the new root is verified. */
  delete(key: KeyLike): Promise<DeleteResult>;
  /** The current root as the server states it (no proof covers a bare root). */
  root(): Promise<RootInfo>;
  /** Calls `callback` for each committed version, in order, from `fromVersion` or the current one. */
  watchRoots(callback: (event: RootEvent) => void, options?: { fromVersion?: number | bigint }): RootWatch;
  free(): void;
}

export interface VerifyOptions {
  /** How `key` and `value` become tree elements. Default "field". */
  keyMode?: KeyMode;
  /** The tree's max_levels. Default: the one a protobuf proof states, else 255. */
  maxLevels?: number;
}

/**
 * Verifies with rustorium-core's verifier that `proof` shows `key` holding `value`
 * (or, with `value` null, absent) under `root`. Returns true or throws VerificationError.
 */
export function verifyProof(
  root: FieldLike,
  key: KeyLike,
  value: KeyLike | null,
  proof: ProofInput,
  options?: VerifyOptions,
): true;

/** circomlib's Poseidon of 1 to 16 field elements. */
export function poseidon(inputs: FieldLike[]): bigint;

/** The bytes-mode tree element of a key or value (a string is taken as UTF-8). */
export function keyToField(bytes: Uint8Array | string): bigint;

/** circomlib `SMTVerifier(nLevels)` inputs, all decimal strings. */
export interface CircomInputs {
  enabled: string;
  fnc: string;
  root: string;
  siblings: string[];
  oldKey: string;
  oldValue: string;
  isOld0: string;
  key: string;
  value: string;
}

/**
 * The SMTVerifier(nLevels) inputs for a proven statement (a get/put/delete result, or
 * `{ root, key, value, proof, keyMode }`), after verifying it with maxLevels = nLevels.
 */
export function toCircomInputs(
  proven: { root: FieldLike; key: KeyLike; value?: KeyLike | null; proof: ProofInput; keyMode?: KeyMode },
  nLevels: number,
): CircomInputs;

/** Loads the WebAssembly module (browsers: once, before the synchronous functions; Node: no-op). */
export default function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;
/** Loads the module synchronously from bytes or a compiled module (browsers; Node: no-op). */
export function initSync(module: BufferSource | WebAssembly.Module): void;
