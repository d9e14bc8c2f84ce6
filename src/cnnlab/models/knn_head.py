"""A k-nearest-neighbour head on frozen features (`classifier=knn`), as DINO evaluates them: the
features and the bank are L2-normalised, the k most cosine-similar bank entries vote with weight
exp(similarity / temperature), and the head answers log(share of the votes) per class, so the
softmax of its output is the vote share. It is an `nn.Module` with the bank as buffers: a
checkpoint holds it like any head, and it exports to ONNX (MatMul, TopK, GatherND)."""

from __future__ import annotations

import torch
from torch import nn

FLOOR = 1e-6  # the vote share a class with no neighbour gets (its log stays finite)


class KNNHead(nn.Module):
    def __init__(
        self, bank_size: int, feature_dim: int, num_classes: int, k: int, temperature: float
    ):
        super().__init__()
        self.k = min(int(k), int(bank_size))
        self.temperature = float(temperature)
        self.register_buffer("bank", torch.zeros(bank_size, feature_dim))
        self.register_buffer("bank_votes", torch.zeros(bank_size, num_classes))  # one-hot labels

    @classmethod
    def from_features(
        cls, features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int, t: float
    ) -> KNNHead:
        head = cls(len(features), features.shape[1], num_classes, k, t)
        head.bank.copy_(nn.functional.normalize(features.float(), dim=1))
        head.bank_votes.copy_(nn.functional.one_hot(labels.long(), num_classes).float())
        return head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        similarity = nn.functional.normalize(x.float(), dim=1) @ self.bank.T
        top, index = similarity.topk(self.k, dim=1)
        weights = (top / self.temperature).exp()  # (N, k)
        votes = (weights.unsqueeze(2) * self.bank_votes[index]).sum(1)  # (N, classes)
        share = votes / votes.sum(1, keepdim=True)
        return share.clamp_min(FLOOR).log()
