import { loadNativeAddon, type OptimizerFunctions } from '../core/native/addon';

let loaded: { functions?: OptimizerFunctions; why?: string } | undefined;

function load(): { functions?: OptimizerFunctions; why?: string } {
  if (!loaded) {
    try {
      loaded = { functions: loadNativeAddon(1) };
    } catch (err) {
      loaded = { why: err instanceof Error ? err.message : String(err) };
    }
  }
  return loaded;
}

/**
 * The native addon's optimizer loops (core/native/optimizer.cc), or undefined where the addon
 * does not load; the shard then runs the JS loops, which give bit-identical results. Loaded once,
 * on first use: $CAVIAR_NATIVE_ADDON pointing nowhere hides it.
 */
export function nativeLoops(): OptimizerFunctions | undefined {
  return load().functions;
}

/** For the shard's start-up log: which loops its optimizers run, and why not native. */
export function loopsInUse(): { loops: 'native' | 'js'; why?: string } {
  const { functions, why } = load();
  return functions ? { loops: 'native' } : { loops: 'js', why };
}
