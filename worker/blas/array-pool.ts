import type * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/**
 * Output arrays of the blas backend's own kernels, reused once their tensor is disposed. A fresh
 * activation-sized Float32Array costs more than the kernel that fills it: the allocation, then a
 * page fault per 4 KiB on first touch, then the garbage collector's work. An array comes back to
 * the pool only if nothing but the backend's own kernels ever saw it: one that was read out
 * (dataSync, whose arrays callers keep) or handed to one of tfjs's cpu kernels (some return
 * views into their input, e.g. Slice) stays the caller's and is left to the collector.
 * Pooled arrays hold stale values: only kernels that overwrite every element take them.
 */

/** Arrays smaller than this are cheap to make and not pooled. */
const MIN_POOLED_FLOATS = 1 << 14;
/** The most a pool keeps idle, in floats (256 MiB); beyond it, disposed arrays go to the GC. */
const MAX_IDLE_FLOATS = 1 << 26;

class ArrayPool {
  private readonly idle = new Map<number, Float32Array[]>();
  private idleFloats = 0;
  /** Arrays this pool made: only these may come back. */
  private readonly made = new WeakSet<Float32Array>();
  /** Made arrays something other than the backend's kernels has seen. */
  private readonly escaped = new WeakSet<Float32Array>();

  take(length: number): Float32Array {
    if (length < MIN_POOLED_FLOATS) return new Float32Array(length);
    const reused = this.idle.get(length)?.pop();
    if (reused) {
      this.idleFloats -= length;
      return reused;
    }
    const fresh = new Float32Array(length);
    this.made.add(fresh);
    return fresh;
  }

  escape(values: unknown): void {
    if (values instanceof Float32Array && this.made.has(values)) this.escaped.add(values);
  }

  give(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.made.has(values) || this.escaped.has(values))
      return;
    if (this.idleFloats + values.length > MAX_IDLE_FLOATS) return;
    const list = this.idle.get(values.length) ?? [];
    list.push(values);
    this.idle.set(values.length, list);
    this.idleFloats += values.length;
  }
}

/** tfjs's cpu backend with the pool: disposal returns arrays, reads mark them escaped. */
export class PooledCpuBackend extends MathBackendCPU {
  readonly pool = new ArrayPool();

  override readSync(dataId: tf.DataId): tf.BackendValues {
    const values = super.readSync(dataId);
    this.pool.escape(values);
    return values;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && !this.data.has(dataId)) this.pool.give(values);
    return released;
  }

  /** Marks the inputs of a kernel that is not the backend's own. */
  escapeInputs(inputs: tf.NamedTensorInfoMap): void {
    for (const t of Object.values(inputs)) if (t) this.pool.escape(this.data.get(t.dataId)?.values);
  }
}

/**
 * An output array for a kernel that writes every element: pooled on the blas backend, new
 * (zeroed) elsewhere.
 */
export function outputFloats(backend: MathBackendCPU, length: number): Float32Array {
  return backend instanceof PooledCpuBackend ? backend.pool.take(length) : new Float32Array(length);
}
