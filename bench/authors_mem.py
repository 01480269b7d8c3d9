#!/usr/bin/env python3
"""The authors' batch-level MEM step in PyTorch, written from the published algorithm, timed.

For one micro-batch of image-caption posts, as their code does it (see the design notes shared beside this repository,
"The method, as the authors' public code does it"):
  1. HotFlip trigger search: k trigger tokens right after <|startoftext|>, initialised to "the";
     positions filled left to right; for each, the gradient of the batch loss with respect to the
     trigger token embeddings ranks the whole embedding matrix (-grad . E^T), the top 16
     candidates are tried one by one, and each try re-runs the FULL CLIP (image tower included)
     on the batch; the candidate with the lowest batch loss is kept (beam size 1).
  2. 8 PGD steps on the noise: delta <- clip(delta - alpha * sign(grad), +-eps), image kept in
     [0, 1], captions shuffled within the batch at every step while each sample keeps its own
     trigger.
The loss is symmetric InfoNCE with the model's logit scale. The model is OpenAI's CLIP
architecture (tools/parity/reference.py) at the sizes of one of our presets, randomly
initialised: timing does not depend on the weights. Not used by the product or by CI.

    /usr/bin/python3 bench/authors_mem.py --preset tiny --batch 16 --batches 3
"""
import argparse
import importlib.util
import math
import os
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("reference", os.path.join(HERE, "..", "tools", "parity", "reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

VOCAB, SOT, EOT, THE = 49408, 49406, 49407, 518   # CLIP's BPE: <|startoftext|>, <|endoftext|>, "the</w>"

# Our presets (src/Unlearnable.Clip/Model/ClipPresets.cs), in reference.CLIP's terms.
PRESETS = {
    "tiny": dict(embed_dim=64, vision=dict(kind="resnet", layers=[1, 1, 1, 1], width=16, image_size=64),
                 context_length=32, text_width=128, text_heads=4, text_layers=2),
    "tiny-vit": dict(embed_dim=64, vision=dict(kind="vit", image_size=64, patch=8, width=128, layers=3),
                     context_length=32, text_width=128, text_heads=4, text_layers=2),
    # OpenAI's released sizes (QuickGELU, as those weights need).
    "rn50": dict(embed_dim=1024, vision=dict(kind="resnet", layers=[3, 4, 6, 3], width=64, image_size=224),
                 context_length=77, text_width=512, text_heads=8, text_layers=12, quick_gelu=True),
    "vitb32": dict(embed_dim=512, vision=dict(kind="vit", image_size=224, patch=32, width=768, layers=12),
                   context_length=77, text_width=512, text_heads=8, text_layers=12, quick_gelu=True),
}


def initialise(model):
    """Random weights as CLIP initialises them (normal, std 0.02 for matrices; norms at 1 and 0).
    reference.CLIP leaves some parameters uninitialised (torch.empty), whose stray denormals would
    make the CPU crawl and falsify the timing."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 0:
                p.fill_(math.log(1 / 0.07))
            elif name.endswith("bias"):
                p.zero_()
            elif "ln" in name.split(".")[-2:][0] or "bn" in name or p.dim() == 1:
                p.fill_(1.0)
            else:
                p.normal_(0, 0.02)
    return model


def encode_text_from_embeddings(model, embedded, ids):
    """CLIP's text tower from token embeddings (so HotFlip can take their gradient)."""
    x = embedded + model.positional_embedding
    x = model.ln_final(model.transformer(x, model.attn_mask))
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ model.text_projection


def batch_loss(model, images, ids, embedded=None):
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(model.encode_text(ids) if embedded is None else encode_text_from_embeddings(model, embedded, ids), dim=-1)
    logits = model.logit_scale.exp() * img @ txt.t()
    target = torch.arange(images.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def with_trigger(captions, triggers):
    """[SOT] trigger caption-tokens... : the trigger is written right after <|startoftext|>."""
    ids = captions.clone()
    ids[:, 1:1 + triggers.shape[1]] = triggers
    return ids


def hotflip(model, images, captions, k, top_k):
    n = images.shape[0]
    triggers = torch.full((n, k), THE, dtype=torch.long)
    embedding = model.token_embedding.weight
    for position in range(k):
        ids = with_trigger(captions, triggers)
        embedded = model.token_embedding(ids).detach().requires_grad_(True)
        loss = batch_loss(model, images, ids, embedded)
        grad, = torch.autograd.grad(loss, embedded)
        scores = -grad[:, 1 + position] @ embedding.t()            # [n, vocab]: first-order loss change
        candidates = scores.topk(top_k, dim=-1).indices              # per sample
        best, best_loss = triggers[:, position].clone(), float("inf")
        with torch.no_grad():
            for c in range(top_k):                                   # each candidate: the full CLIP again
                trial = triggers.clone()
                trial[:, position] = candidates[:, c]
                trial_loss = batch_loss(model, images, with_trigger(captions, trial)).item()
                if trial_loss < best_loss:
                    best, best_loss = candidates[:, c].clone(), trial_loss
        triggers[:, position] = best
    return triggers


def pgd(model, clean, delta, captions, triggers, steps, eps, alpha):
    n = clean.shape[0]
    for _ in range(steps):
        shuffled = captions[torch.randperm(n)]                      # S(T): captions permuted, each sample keeps its own trigger
        delta.requires_grad_(True)
        loss = batch_loss(model, (clean + delta).clamp(0, 1), with_trigger(shuffled, triggers))
        grad, = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = (delta - alpha * grad.sign()).clamp(-eps, eps)
            delta = (clean + delta).clamp(0, 1) - clean
    return delta.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--batch", type=int, default=16, help="posts per micro-batch")
    parser.add_argument("--batches", type=int, default=3, help="timed batches (after one warm-up batch)")
    parser.add_argument("--trigger-length", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=16)
    parser.add_argument("--pgd-steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core, as TorchSharp uses)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = PRESETS[args.preset]
    model = initialise(ref.CLIP(cfg["embed_dim"], cfg["vision"], cfg["context_length"], VOCAB, cfg["text_width"], cfg["text_heads"],
                                cfg["text_layers"], quick_gelu=cfg.get("quick_gelu", False))).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    size, n, ctx = cfg["vision"]["image_size"], args.batch, cfg["context_length"]
    hotflip_s = pgd_s = 0.0
    for b in range(args.batches + 1):
        clean = torch.rand(n, 3, size, size)
        captions = torch.zeros(n, ctx, dtype=torch.long)
        captions[:, 0] = SOT
        captions[:, 1 + args.trigger_length:13] = torch.randint(300, 40000, (n, 12 - args.trigger_length))
        captions[:, 13] = EOT
        start = time.perf_counter()
        triggers = hotflip(model, clean, captions, args.trigger_length, args.top_k)
        middle = time.perf_counter()
        pgd(model, clean, torch.zeros_like(clean), captions, triggers, args.pgd_steps, 8 / 255, 1 / 255)
        end = time.perf_counter()
        if b > 0:   # the first batch warms up
            hotflip_s += middle - start
            pgd_s += end - middle
    total = hotflip_s + pgd_s
    print(f"authors' MEM step (PyTorch {torch.__version__}, {torch.get_num_threads()} threads): {args.preset}, batch {n}, "
          f"{args.pgd_steps} PGD steps, trigger k={args.trigger_length} top-{args.top_k}, {args.batches} batches")
    print(f"{n * args.batches / total:.2f} protected posts/s ({total / args.batches:.2f} s per batch)")
    print(f"time split: trigger search {hotflip_s / total:.0%}, PGD {pgd_s / total:.0%}")


if __name__ == "__main__":
    main()
