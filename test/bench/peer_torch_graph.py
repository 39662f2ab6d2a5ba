"""The convnets bench's torch reference: the layer-graph model spec caviar trains (a JSON file of
core/model-graph's format), built as torch modules, and trained the way
../shared/bench/peer_torch_ddp.py trains (the same digits, first 8000 for training; Adam 1e-3;
one thread per process; WORKERS=1 plain torch, more DistributedDataParallel over gloo).
TensorFlow's "same" padding is explicit zero padding here, so strided layers match caviar's.
After each epoch the processes evaluate EVAL_FRACTION examples per example the epoch trained on
between them (loss and accuracy, no gradient), as a caviar trial evaluates its validation,
train-dev and training-sample splits, inside the timed span; 0 (the default) evaluates only
once, after it.
Usage: python3 peer_torch_graph.py MNIST_DIGITS_DIR SPEC.json WORKERS EPOCHS [BATCH [EVAL_FRACTION]]
Prints one JSON line."""
import json, math, os, sys, time
import torch, torch.distributed as dist
import torch.multiprocessing as mp

DIGITS, SPEC, W, EPOCHS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BATCH = int(sys.argv[5]) if len(sys.argv) > 5 else 128
EVAL_FRACTION = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
EVAL_CHUNK = 1000
CLASSES = 10
nn = torch.nn


def load():
    xs, ys = [], []
    for d in range(10):
        data = torch.tensor(json.load(open(os.path.join(DIGITS, f"{d}.json")))["data"], dtype=torch.float32)
        xs.append(data.view(-1, 1, 28, 28)); ys.append(torch.full((xs[-1].shape[0],), d, dtype=torch.long))
    x, y = torch.cat(xs), torch.cat(ys)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:8000], y[:8000], x[8000:], y[8000:]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_padding(size, kernel, stride):
    """TensorFlow's SAME: output ceil(size / stride), the extra row or column at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def padded(layer, spec, t, kernel, stride):
    if spec.get("padding", "valid") != "same":
        return layer
    (top, bottom), (left, right) = (same_padding(t.shape[2], kernel[0], stride[0]),
                                    same_padding(t.shape[3], kernel[1], stride[1]))
    return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), layer)


def activation(name):
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}.get(name, nn.Identity())


class Residual(nn.Module):
    def __init__(self, body, projection, after):
        super().__init__()
        self.body, self.projection, self.after = body, projection, after

    def forward(self, x):
        return self.after(self.body(x) + self.projection(x))


def build(layers, t, last_is_head):
    """Modules for `layers` given the input t (a dummy batch of one); returns (modules, output)."""
    modules = []
    for i, spec in enumerate(layers):
        kind = spec["type"]
        head = last_is_head and i == len(layers) - 1
        if kind == "conv2d":
            kernel, stride = pair(spec["kernel"]), pair(spec.get("stride", 1))
            conv = nn.Conv2d(t.shape[1], spec["filters"], kernel, stride)
            m = nn.Sequential(padded(conv, spec, t, kernel, stride), activation(spec.get("activation", "relu")))
        elif kind == "dense":
            flat = nn.Flatten() if t.dim() > 2 else nn.Identity()
            linear = nn.Linear(flat(t).shape[1], spec["units"])
            m = nn.Sequential(flat, linear) if head else nn.Sequential(flat, linear, activation(spec.get("activation", "relu")))
        elif kind in ("max_pool", "avg_pool"):
            size = pair(spec["size"]); stride = pair(spec.get("stride", spec["size"]))
            pool = nn.MaxPool2d(size, stride) if kind == "max_pool" else nn.AvgPool2d(size, stride)
            m = padded(pool, spec, t, size, stride)
        elif kind == "global_avg_pool":
            m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif kind == "flatten":
            m = nn.Flatten()
        elif kind == "dropout":
            m = nn.Dropout(spec["rate"])
        elif kind == "batch_norm":
            norm = nn.BatchNorm2d if t.dim() == 4 else nn.BatchNorm1d
            m = norm(t.shape[1], eps=spec.get("epsilon", 1e-3), momentum=1 - spec.get("momentum", 0.99))
        elif kind == "activation":
            m = activation(spec["activation"])
        elif kind == "residual":
            blocks = []
            for _ in range(spec.get("repeat", 1)):
                body, out = build(spec["layers"], t, False)
                body = nn.Sequential(*body)
                if out.shape == t.shape:
                    projection = nn.Identity()
                else:
                    stride = (t.shape[2] // out.shape[2], t.shape[3] // out.shape[3])
                    projection = nn.Conv2d(t.shape[1], out.shape[1], 1, stride)
                block = Residual(body, projection, activation(spec.get("activation", "relu")))
                with torch.no_grad():
                    t = block.eval()(t)
                blocks.append(block)
            modules += blocks
            continue
        else:
            raise SystemExit(f"layer type {kind} is not in this peer")
        with torch.no_grad():
            t = m.eval()(t)
        modules.append(m)
    return modules, t


def net():
    torch.manual_seed(0)
    layers = json.load(open(SPEC))["layers"]
    last = layers[-1]
    has_head = last["type"] == "dense" and last.get("activation") == "softmax"
    modules, out = build(layers, torch.zeros(1, 1, 28, 28), has_head)
    if not has_head:
        flat = nn.Flatten() if out.dim() > 2 else nn.Identity()
        modules += [flat, nn.Linear(flat(out).shape[1], CLASSES)]
    return nn.Sequential(*modules)


def evaluate(model, x, y):
    """Loss and accuracy over x, in chunks, as caviar's evaluation tasks compute them."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_CHUNK):
            logits = model(x[i:i + EVAL_CHUNK])
            loss += nn.functional.cross_entropy(logits, y[i:i + EVAL_CHUNK], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + EVAL_CHUNK]).sum().item()
    model.train()
    return loss / max(1, x.shape[0]), correct / max(1, x.shape[0])


def run(rank, world):
    torch.set_num_threads(1)
    if world > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1"); os.environ.setdefault("MASTER_PORT", "29534")
        dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y, vx, vy = load(); model = net().train()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3); lossf = nn.CrossEntropyLoss()
    steps = (x.shape[0] // BATCH) // world; n = 0
    # This process's share of each epoch's evaluation: held-out examples first, then training ones.
    share = round(EVAL_FRACTION * steps * BATCH)
    ex, ey = torch.cat([vx, x])[rank * share:(rank + 1) * share], torch.cat([vy, y])[rank * share:(rank + 1) * share]
    if world > 1: dist.barrier()
    t0 = time.time(); evaluating = 0.0
    for _ in range(EPOCHS):
        for s in range(steps):
            b = s * world + rank
            opt.zero_grad(); lossf(ddp(x[b*BATCH:(b+1)*BATCH]), y[b*BATCH:(b+1)*BATCH]).backward(); opt.step()
            n += BATCH
        if share > 0:
            e0 = time.time(); evaluate(model, ex, ey); evaluating += time.time() - e0
    if world > 1: dist.barrier()
    dt = time.time() - t0
    if rank == 0:
        model.eval()
        with torch.no_grad(): acc = (model(vx).argmax(1) == vy).float().mean().item()
        print(json.dumps({"peer": "pytorch-ddp" if world > 1 else "pytorch-single", "spec": SPEC,
                          "workers": world, "epochs": EPOCHS, "batch": BATCH, "examples": n * world,
                          "eval_examples_per_epoch": share * world,
                          "seconds": round(dt, 3), "examples_per_s": round(n * world / dt, 1),
                          "train_only_examples_per_s": round(n * world / (dt - evaluating), 1),
                          "val_accuracy": round(acc, 4)}))
    if world > 1: dist.destroy_process_group()


if __name__ == "__main__":
    if W == 1: run(0, 1)
    else: mp.spawn(run, args=(W,), nprocs=W, join=True)
