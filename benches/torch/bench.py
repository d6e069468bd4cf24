"""PyTorch side of BENCHMARK.md's workloads, reconstructed from its text (the shared copy lacks
bench.py): MNIST pixels scaled to [0, 1] f32, labels as class indices; W1 784-128-10, W2
784-512-512-10, relu hidden, cross-entropy on logits (softmax inside, mean over the batch);
one epoch in file order, last partial batch included; SGD lr 0.1, Adam lr 1e-3.
  python bench.py --mode infer --threads T   -> infer1 latency and infer1000 throughput
  python bench.py --mode acc                 -> W1, Adam 1e-3, batch 64, 3 epochs"""
import argparse, gzip, os, statistics, struct, time
import numpy as np
import torch
import torch.nn.functional as F


def _idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_mnist():
    d = os.environ["MNIST_DIR"]
    f = lambda n: os.path.join(d, n)
    x = torch.from_numpy(_idx(f("train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(_idx(f("train-labels-idx1-ubyte.gz")).astype(np.int64))
    xt = torch.from_numpy(_idx(f("t10k-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0)
    yt = torch.from_numpy(_idx(f("t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    return x, y, xt, yt


def make_model(net, seed=0):
    torch.manual_seed(seed)
    widths = {"W1": [784, 128, 10], "W2": [784, 512, 512, 10]}[net.upper()]
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def make_opt(opt, params):
    if opt.lower() == "sgd":
        return torch.optim.SGD(params, lr=0.1)
    return torch.optim.Adam(params, lr=1e-3)


def train_epoch(model, opt, x, y, batch):
    model.train()
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="infer")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y, xt, yt = load_mnist()
    if a.mode == "infer":
        model = make_model("W1").eval()
        with torch.inference_mode():
            s = xt[:1]
            for _ in range(10000):
                model(s)
            lat = []
            for _ in range(10000):
                t0 = time.perf_counter(); model(s); lat.append((time.perf_counter() - t0) * 1e6)
            print(f"infer1 T{a.threads} latency_us={statistics.median(lat):.2f}")
            b = xt[:1000]
            sps = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                for _ in range(50):
                    model(b)
                sps.append(50 * 1000 / (time.perf_counter() - t0))
            print(f"infer1000 T{a.threads} samples_per_s={statistics.median(sps):.0f}")
    else:
        model = make_model("W1")
        opt = make_opt("adam", model.parameters())
        for _ in range(3):
            train_epoch(model, opt, x, y, 64)
        with torch.inference_mode():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        print(f"test_accuracy={acc:.4f}")
