/**
 * The kernels section's torch reference: the ConvNets' training steps in one single-threaded
 * torch process (test/bench/peer_torch_graph.py, 1 worker, no evaluation), beside the blas
 * backend's gradients() of the same layer graph, and their ratio. Torch's steps include Adam's
 * update, which caviar's shards make; on these models it is a small part of a step.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { failure, lastJsonLine, mnistDigitsDir, runChild, torchPython } from './children';
import { convnetModels, GRAPH_PEER } from './convnets';
import { benchKernels } from './kernels';
import { round } from './stats';

/** Epochs of torch's run: 62 steps each, a few seconds in all. */
const TORCH_EPOCHS = 2;
const BATCH = 128;

/** blas's gradients() and torch's training steps for LeNet-5 and the ResNet, and their ratio. */
export async function benchConvnetKernels(
  timeoutS: number,
  emit: (line: Record<string, unknown>) => void,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-kernels-'));
  const python = torchPython();
  try {
    for (const model of convnetModels(dir)) {
      const [blas] = await benchKernels({ backends: ['blas'], models: [model.caviar] });
      const caviarRate = 'examples_per_s' in blas ? blas.examples_per_s : undefined;
      const line = {
        bench: 'kernels_vs_torch',
        model: model.name,
        batch: BATCH,
        blas: { ...blas, model: model.name },
      };
      if (!python) {
        emit({ ...line, torch: { skipped: 'no python3 that imports torch' } });
        continue;
      }
      const args = [GRAPH_PEER, mnistDigitsDir(), model.graph, '1', String(TORCH_EPOCHS)];
      const r = await runChild(python, [...args, String(BATCH), '0'], timeoutS);
      if (r.code !== 0) {
        emit({ ...line, torch: { error: failure(r, 'peer_torch_graph.py') } });
        continue;
      }
      const torch = lastJsonLine<{ train_only_examples_per_s: number }>(
        r.stdout,
        (v) => v.peer !== undefined,
      );
      const torchRate = torch.train_only_examples_per_s;
      emit({
        ...line,
        torch: { system: 'single', examples_per_s: torchRate },
        ratio: caviarRate === undefined ? null : round(caviarRate / torchRate, 3),
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
