"""The large-model bench's torch reference: forward and backward of an MLP of torch.nn.Linear
layers (784 -> HIDDEN... -> 10, ReLU) on random inputs, one thread, BATCHES batches after two
untimed ones. Usage: peer_torch_large.py 16000,8000 64 10. Prints one JSON line."""
import json, sys, time
import torch

hidden = [int(h) for h in sys.argv[1].split(",")]
batch, batches = int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
layers, fan_in = [], 784
for h in hidden:
    layers += [torch.nn.Linear(fan_in, h), torch.nn.ReLU()]
    fan_in = h
model = torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, 10))
x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
loss_fn = torch.nn.CrossEntropyLoss()

def step():
    model.zero_grad(set_to_none=False)
    loss_fn(model(x), y).backward()

for _ in range(2):
    step()
started = time.perf_counter()
for _ in range(batches):
    step()
seconds = time.perf_counter() - started
print(json.dumps({"peer": "torch-single-thread", "hidden": hidden, "batch": batch,
                  "batches": batches, "seconds_per_batch": seconds / batches,
                  "examples_per_s": batch * batches / seconds}))
