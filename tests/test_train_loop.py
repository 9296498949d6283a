"""The training loop's plain functions (train/loop.py) over the one batch shape both datasets give."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from asl_edge.common.errors import UserError
from asl_edge.train.features import ViewDataset
from asl_edge.train.loop import ImageRows, evaluate, train_one_epoch


class _Images(torch.utils.data.Dataset):
    """ImageDataset's item shape, (image, label, index), and its `epoch` attribute."""

    def __init__(self, x, y):
        self.x, self.y, self.epoch = x, y, 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i]), i


class _Net(nn.Module):
    """Both kinds of `net` the loop takes: .features(x) and .head, called as net(x)."""

    def __init__(self, dim=4, classes=3):
        super().__init__()
        self.body, self.head = nn.Linear(dim, dim), nn.Linear(dim, classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x, landmarks=None):
        return self.head(self.features(x))


def _data(n=12, dim=4):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    return torch.randn(n, dim, generator=g) + 3 * nn.functional.one_hot(y, dim).float(), y


def test_images_and_cached_features_give_one_batch_shape_and_the_same_training():
    x, y = _data()
    weights, landmarks = torch.ones(len(y)), torch.zeros(len(y), 0)
    rows = ImageRows(_Images(x, y), weights, landmarks)
    views = ViewDataset(x[None], y, weights, landmarks)
    for ds in (rows, views):
        ds.set_epoch(3, torch.Generator().manual_seed(1))
    assert rows.images.epoch == 3
    a, b = next(iter(DataLoader(rows, batch_size=5))), next(iter(DataLoader(views, batch_size=5)))
    assert [t.shape for t in a] == [t.shape for t in b]
    assert all(torch.equal(s, t) for s, t in zip(a, b))
    results = []
    for ds in (rows, views):
        torch.manual_seed(0)
        net = _Net()
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        for epoch in range(5):
            loss, acc = train_one_epoch(net, DataLoader(ds, batch_size=4), opt, "cpu", False, f"epoch {epoch + 1}", 0.05)
        results.append((loss, acc, evaluate(net.eval(), DataLoader(ds, batch_size=4), "cpu", False)))
    (l1, a1, (v1, p1)), (l2, a2, (v2, p2)) = results
    assert l1 == l2 and a1 == a2 and v1 == v2 and torch.equal(p1, p2)
    assert a1 == 1.0 and (p1 == y).all()  # separable: learnt


def test_a_loss_that_stops_being_finite_ends_the_epoch_in_one_line():
    x, y = _data()
    x[0] = float("nan")
    rows = ImageRows(_Images(x, y), torch.ones(len(y)), torch.zeros(len(y), 0))
    net = _Net()
    with pytest.raises(UserError, match=r"training diverged in epoch 1/2: the loss became nan; .*--lr \(now 0.001\)"):
        train_one_epoch(net, DataLoader(rows, batch_size=12), torch.optim.Adam(net.parameters()), "cpu", False,
                        "epoch 1/2", 0.001)
