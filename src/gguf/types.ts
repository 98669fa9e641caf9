// Shared GGUF types: metadata value types, ggml tensor types and value helpers.

export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor element types (subset with names; any u32 may appear in a file). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

/** [block size in elements, bytes per block] for the types whose layout we know. */
const GGML_TYPE_LAYOUT: Record<number, readonly [number, number]> = {
  [GgmlType.F32]: [1, 4],
  [GgmlType.F16]: [1, 2],
  [GgmlType.BF16]: [1, 2],
  [GgmlType.F64]: [1, 8],
  [GgmlType.I8]: [1, 1],
  [GgmlType.I16]: [1, 2],
  [GgmlType.I32]: [1, 4],
  [GgmlType.I64]: [1, 8],
  [GgmlType.Q4_0]: [32, 18],
  [GgmlType.Q4_1]: [32, 20],
  [GgmlType.Q5_0]: [32, 22],
  [GgmlType.Q5_1]: [32, 24],
  [GgmlType.Q8_0]: [32, 34],
  [GgmlType.Q8_1]: [32, 36],
  [GgmlType.IQ4_NL]: [32, 18],
  [GgmlType.Q2_K]: [256, 84],
  [GgmlType.Q3_K]: [256, 110],
  [GgmlType.Q4_K]: [256, 144],
  [GgmlType.Q5_K]: [256, 176],
  [GgmlType.Q6_K]: [256, 210],
  [GgmlType.Q8_K]: [256, 292],
  [GgmlType.IQ4_XS]: [256, 136],
};

/** Byte size of a tensor with the given dims, or undefined when the type's layout is unknown. */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number | undefined {
  const layout = GGML_TYPE_LAYOUT[type];
  if (!layout) return undefined;
  const [block, bytes] = layout;
  const ne0 = dims[0] ?? 1;
  if (ne0 % block !== 0) return undefined;
  let rows = 1;
  for (let i = 1; i < dims.length; i++) rows *= dims[i];
  return (ne0 / block) * bytes * rows;
}

export type GgufNumberType =
  | GgufType.UINT8
  | GgufType.INT8
  | GgufType.UINT16
  | GgufType.INT16
  | GgufType.UINT32
  | GgufType.INT32
  | GgufType.FLOAT32
  | GgufType.FLOAT64;

export type GgufBigIntType = GgufType.UINT64 | GgufType.INT64;
export type GgufItemType = Exclude<GgufType, GgufType.ARRAY>;

/** Array payloads: typed arrays for numbers, string[] / boolean[] otherwise. */
export type GgufArrayData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[];

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: GgufType.BOOL; value: boolean }
  | { type: GgufType.STRING; value: string }
  | { type: GgufType.ARRAY; itemType: GgufItemType; value: GgufArrayData };

export type GgufMetadata = Map<string, GgufValue>;

export interface TensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: number[];
  type: number;
  /** Offset relative to the start of the tensor data section. */
  offset: number;
}

/** Size in bytes of one element of a scalar GGUF type (strings excluded). */
export const GGUF_SCALAR_SIZE: Record<number, number> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

/** Typed-array constructor used for numeric array items. */
export const GGUF_ARRAY_CTOR = {
  [GgufType.UINT8]: Uint8Array,
  [GgufType.INT8]: Int8Array,
  [GgufType.UINT16]: Uint16Array,
  [GgufType.INT16]: Int16Array,
  [GgufType.UINT32]: Uint32Array,
  [GgufType.INT32]: Int32Array,
  [GgufType.FLOAT32]: Float32Array,
  [GgufType.FLOAT64]: Float64Array,
  [GgufType.UINT64]: BigUint64Array,
  [GgufType.INT64]: BigInt64Array,
} as const;

// ---- value constructors -------------------------------------------------

export const gv = {
  u8: (value: number): GgufValue => ({ type: GgufType.UINT8, value }),
  i8: (value: number): GgufValue => ({ type: GgufType.INT8, value }),
  u16: (value: number): GgufValue => ({ type: GgufType.UINT16, value }),
  i16: (value: number): GgufValue => ({ type: GgufType.INT16, value }),
  u32: (value: number): GgufValue => ({ type: GgufType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufType.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GgufType.FLOAT32, value }),
  f64: (value: number): GgufValue => ({ type: GgufType.FLOAT64, value }),
  u64: (value: bigint | number): GgufValue => ({ type: GgufType.UINT64, value: BigInt(value) }),
  i64: (value: bigint | number): GgufValue => ({ type: GgufType.INT64, value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: GgufType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufType.STRING, value }),
  strings: (value: string[]): GgufValue => ({ type: GgufType.ARRAY, itemType: GgufType.STRING, value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({
    type: GgufType.ARRAY,
    itemType: GgufType.FLOAT32,
    value: Float32Array.from(value),
  }),
  i32s: (value: ArrayLike<number>): GgufValue => ({
    type: GgufType.ARRAY,
    itemType: GgufType.INT32,
    value: Int32Array.from(value),
  }),
  u32s: (value: ArrayLike<number>): GgufValue => ({
    type: GgufType.ARRAY,
    itemType: GgufType.UINT32,
    value: Uint32Array.from(value),
  }),
  bools: (value: boolean[]): GgufValue => ({ type: GgufType.ARRAY, itemType: GgufType.BOOL, value }),
};

// ---- typed getters --------------------------------------------------------

export function getNumber(meta: GgufMetadata, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value === "bigint") return Number(v.value);
  if (typeof v.value === "number") return v.value;
  throw new Error(`GGUF key ${key} is not a number`);
}

export function getStringArray(meta: GgufMetadata, key: string): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufType.ARRAY || v.itemType !== GgufType.STRING) {
    throw new Error(`GGUF key ${key} is not a string array`);
  }
  return v.value as string[];
}
