"""Time one AutoencoderKMeans pretraining epoch against a hand-written loop.

Both train the same default network (``d-500-500-2000-10``, Adam, batch 256,
shuffled) on the same data in the same process, alternating so that machine
noise hits both alike; the reported figure is the ratio of the median epoch
times (skorch / hand-written). The issue's bar is a ratio of at most 1.15.

By default both train on reconstruction alone. With ``--smoothing`` both also
carry the neighbourhood smoothing term (targets recomputed at the start of
every epoch, as in the second half of the estimator's default training), so
the ratio covers that phase too.

    python benchmarks/speed.py --dataset mnist-test --epochs 5
    python benchmarks/speed.py --dataset mnist-test --epochs 5 --smoothing
"""

import argparse
import statistics
import time

import numpy as np
import torch

from run import DEFAULT_DATA, load
from skdeepcluster import AutoencoderKMeans
from skdeepcluster._torch_utils import nearest_neighbours


def smoothing_targets(encoder, X, n_neighbors=10):
    """Halfway to the mean of the 10 nearest neighbours, on the unit sphere."""
    encoder.eval()
    with torch.no_grad():
        Z = torch.cat([encoder(X[i : i + 1024]) for i in range(0, len(X), 1024)])
    encoder.train()
    targets = (Z + Z[nearest_neighbours(Z, n_neighbors)].mean(dim=1)) / 2
    return torch.nn.functional.normalize(targets, dim=1)


def hand_written_epoch(model, optimizer, X, batch_size, generator, smoothing):
    targets = smoothing_targets(model.encoder, X) if smoothing else None
    model.train()
    for batch in torch.randperm(len(X), generator=generator).split(batch_size):
        xb = X[batch]
        reconstruction, embedding = model(xb)
        loss = torch.nn.functional.mse_loss(reconstruction, xb)
        if smoothing:
            loss = loss + (embedding - targets[batch]).pow(2).sum(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist-test")
    parser.add_argument("--data-path", default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--smoothing", action="store_true", help="include the smoothing term"
    )
    args = parser.parse_args()
    X, _, _ = load(args.dataset, args.data_path)

    # The estimator's net, trained one epoch at a time through skorch.
    # pretrain_epochs=0 puts the start of the smoothing term at epoch 0. The
    # network is named: "auto" would size it for the 100 samples of the fit.
    est = AutoencoderKMeans(
        10,
        hidden_dims=(500, 500, 2000),
        pretrain_epochs=0,
        augment=False,
        batch_size=args.batch_size,
        smoothing_weight=1.0 if args.smoothing else 0.0,
        random_state=0,
    )
    est.fit(X[:100])  # builds est.net_ with the right sizes; we retrain it below
    net = est.net_
    net.set_params(max_epochs=1)
    dataset = est._dataset(torch.tensor(X))

    # The same architecture trained by a plain PyTorch loop.
    model = est._build_autoencoder(X.shape[1], torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_tensor = torch.tensor(X)
    generator = torch.Generator().manual_seed(0)

    skorch_times, hand_times = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        net.partial_fit(dataset)
        skorch_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        hand_written_epoch(
            model, optimizer, X_tensor, args.batch_size, generator, args.smoothing
        )
        hand_times.append(time.perf_counter() - start)
    skorch_s, hand_s = statistics.median(skorch_times), statistics.median(hand_times)
    n_parameters = [
        sum(p.numel() for p in module.parameters()) for module in (net.module_, model)
    ]
    print(
        f"threads={torch.get_num_threads()} n={len(X)} batch={args.batch_size} "
        f"epochs={args.epochs} smoothing={args.smoothing} "
        f"parameters={n_parameters[0]} (skorch) {n_parameters[1]} (hand)"
    )
    print(
        f"skorch epoch   median {skorch_s:.3f}s  all {np.round(skorch_times, 3).tolist()}"
    )
    print(
        f"hand loop epoch median {hand_s:.3f}s  all {np.round(hand_times, 3).tolist()}"
    )
    print(f"ratio skorch/hand = {skorch_s / hand_s:.3f}")


if __name__ == "__main__":
    main()
