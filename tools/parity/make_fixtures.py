"""Regenerates the C# parity fixtures in tests/Unlearnable.Clip.Tests/Fixtures/Parity/.

    apt-get install -y python3-torch && /usr/bin/python3 tools/parity/make_fixtures.py

Each model gets seeded random weights (rounded to float16, stored as F16), fixed inputs and
the float32 outputs of reference.py. The script re-reads every file it wrote and checks
that the outputs reproduce exactly.

    /usr/bin/python3 tools/parity/make_fixtures.py --released rn50|rn101|vitb32 FOLDER

writes the same for one of OpenAI's full sizes into FOLDER (hundreds of MB, not committed).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "Unlearnable.Clip.Tests", "Fixtures", "Parity")

DTYPES = {torch.float16: ("F16", np.float16), torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64)}
NP_BY_NAME = {name: np_t for name, np_t in DTYPES.values()}


# ----------------------------------------------------------------------------- safetensors I/O

def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, np_t = DTYPES[t.dtype]
        data = t.numpy().astype(np.dtype(np_t).newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad so the data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=np.dtype(NP_BY_NAME[e["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).reshape(e["shape"])
    return out


# ----------------------------------------------------------------------------- random weights

def randomize(model):
    """Random weights for every parameter/buffer, scaled so activations stay O(1), then rounded to fp16."""
    with torch.no_grad():
        for mod_name, m in model.named_modules():
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10000, ())))
            elif isinstance(m, (nn.Linear, nn.Conv2d)):
                # std 1/sqrt(fan_in): preserves variance through each projection.
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, 1 / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.normal_(0, 0.05)
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0, 0.2)
            elif isinstance(m, ref.SelfAttention):
                m.in_proj_weight.normal_(0, 1 / math.sqrt(m.in_proj_weight.shape[1]))
                m.in_proj_bias.normal_(0, 0.05)
        for name, p in model.named_parameters(recurse=True):
            if name in ("positional_embedding", "visual.positional_embedding", "visual.attnpool.positional_embedding"):
                p.normal_(0, 0.1)
            elif name == "visual.class_embedding":
                p.normal_(0, 0.5)
            elif name in ("text_projection", "visual.proj"):
                p.normal_(0, 1 / math.sqrt(p.shape[0]))
            elif name == "logit_scale":
                p.fill_(math.log(1 / 0.07) + 0.1 * float(torch.randn(())))
            elif name == "cls.predictions.bias":
                p.normal_(0, 0.1)
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())  # the fixture stores F16, so compute with exactly those values
    model.eval()
    return model


def weights_f16(model):
    return {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}


def text_tokens(vocab, ctx, lengths):
    # [start, random tokens..., end, 0...]; end = vocab-1 is the row max, so argmax finds it.
    rows = torch.zeros(len(lengths), ctx, dtype=torch.int64)
    for i, n in enumerate(lengths):
        rows[i, 0] = vocab - 2
        rows[i, 1:n + 1] = torch.randint(1, vocab - 2, (n,))
        rows[i, n + 1] = vocab - 1
    return rows


# ----------------------------------------------------------------------------- cross-checks

def crosscheck_attention():
    """Our hand-written attention vs. torch's nn.MultiheadAttention / F.multi_head_attention_forward."""
    torch.manual_seed(123)
    w, heads = 128, 2
    ours = ref.SelfAttention(w, heads)
    theirs = nn.MultiheadAttention(w, heads, batch_first=True)
    for p in ours.parameters():
        p.data.normal_(0, 0.1)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 7, w)
    mask = torch.full((7, 7), float("-inf")).triu(1)
    a = ours(x, mask)
    b = theirs(x, x, x, attn_mask=mask, need_weights=False)[0]
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()

    pool = ref.AttentionPool2d(2, 256, 4, 32)
    for p in pool.parameters():
        p.data.normal_(0, 0.1)
    fm = torch.randn(2, 256, 2, 2)
    t = fm.flatten(2).permute(2, 0, 1)                       # [hw, b, c] (sequence-first)
    t = torch.cat([t.mean(0, keepdim=True), t]) + pool.positional_embedding[:, None]
    b = F.multi_head_attention_forward(
        t[:1], t, t, 256, 4, None, torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        None, None, False, 0.0, pool.c_proj.weight, pool.c_proj.bias, use_separate_proj_weight=True,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        need_weights=False)[0][0]
    assert torch.allclose(pool(fm), b, atol=1e-5), (pool(fm) - b).abs().max()


# ----------------------------------------------------------------------------- fixtures

TEXT = dict(context_length=16, vocab_size=512, text_width=128, text_heads=2, text_layers=2)
CLIP_FIXTURES = {
    "rn-quickgelu": (0, dict(kind="resnet", layers=[1, 2, 1, 1], width=8, image_size=64), True),
    "vit-quickgelu": (1, dict(kind="vit", image_size=32, patch=8, width=128, layers=2), True),
    # One layer per tower here (the activation is what this one tests), to keep the fixtures small.
    "vit-gelu": (2, dict(kind="vit", image_size=32, patch=8, width=128, layers=1), False, dict(TEXT, text_layers=1)),
}
BERT = dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=32)


def clip_outputs(model, image, text):
    with torch.no_grad():
        return {"image_features": model.encode_image(image), "text_features": model.encode_text(text),
                "logits_per_image": model(image, text)}


def bert_outputs(model, ids, mask):
    with torch.no_grad():
        return {"logits": model(ids, mask)}


def fp64_rel_err(model, fn, *inputs):
    # How far float32 is from a float64 evaluation of the same weights: a floor for C# tolerances.
    out32 = fn(model, *inputs)
    m64 = model.double()
    out64 = fn(m64, *[x.double() if x.is_floating_point() else x for x in inputs])
    model.float()
    return {k: float(((out32[k].double() - out64[k]).abs().max() / out64[k].abs().max())) for k in out32}


def report(name, outputs, rel):
    for k, v in outputs.items():
        assert torch.isfinite(v).all(), f"{name}/{k} has NaN/inf"
        print(f"  {name:14s} {k:17s} shape={list(v.shape)} std={v.std():.4f} max|x|={v.abs().max():.4f} "
              f"fp32-vs-fp64 rel={rel[k]:.1e}")


def check_roundtrip(weights_path, io_path, model, fn, input_names):
    fresh_sd = {k: v.float() if v.is_floating_point() else v for k, v in read_safetensors(weights_path).items()}
    assert set(fresh_sd) == set(model.state_dict()), set(fresh_sd) ^ set(model.state_dict())
    model.load_state_dict(fresh_sd)
    io = read_safetensors(io_path)
    got = fn(model, *[io[n] for n in input_names])
    for k, v in got.items():
        assert torch.equal(v, io[k]), f"{io_path}: {k} does not reproduce"


def make_clip(name, seed, vision, quick_gelu, text_config=TEXT):
    torch.manual_seed(seed)
    model = randomize(ref.CLIP(32, vision, quick_gelu=quick_gelu, **text_config))
    s = vision["image_size"]
    image = torch.randn(2, 3, s, s)
    text = text_tokens(TEXT["vocab_size"], TEXT["context_length"], [3 + seed % 3, 9 - seed % 2])
    out = clip_outputs(model, image, text)
    report(name, out, fp64_rel_err(model, clip_outputs, image, text))
    w_path, io_path = os.path.join(OUT, name + ".safetensors"), os.path.join(OUT, name + ".io.safetensors")
    write_safetensors(w_path, weights_f16(model))  # no metadata: the C# loader infers the architecture
    write_safetensors(io_path, {"image": image, "text": text, **out})
    check_roundtrip(w_path, io_path, ref.CLIP(32, vision, quick_gelu=quick_gelu, **text_config).eval(),
                    clip_outputs, ["image", "text"])


def make_bert(seed):
    torch.manual_seed(seed)
    model = randomize(ref.BertForMaskedLM(**BERT))
    ids = torch.randint(1, BERT["vocab_size"], (2, 12))
    mask = torch.ones(2, 12, dtype=torch.int64)
    ids[1, 8:] = 0    # pad id 0 ...
    mask[1, 8:] = 0   # ... masked out as attention keys
    out = bert_outputs(model, ids, mask)
    report("bert", out, fp64_rel_err(model, bert_outputs, ids, mask))
    d = os.path.join(OUT, "bert")
    os.makedirs(d, exist_ok=True)
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
              "layer_norm_eps": 1e-12, "type_vocab_size": 2, **BERT}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), weights_f16(model), {"format": "pt"})
    write_safetensors(os.path.join(d, "io.safetensors"), {"input_ids": ids, "attention_mask": mask, **out})
    check_roundtrip(os.path.join(d, "model.safetensors"), os.path.join(d, "io.safetensors"),
                    ref.BertForMaskedLM(**BERT).eval(), bert_outputs, ["input_ids", "attention_mask"])


# OpenAI's released sizes: too large to commit as weights, so their state-dict keys and shapes are
# committed instead (the models are built briefly on the CPU), and the C# test checks its models
# against them name by name and infers each preset back from the shapes.
RELEASED = {
    "rn50": dict(embed_dim=1024, vision=dict(kind="resnet", layers=[3, 4, 6, 3], width=64, image_size=224)),
    "rn101": dict(embed_dim=512, vision=dict(kind="resnet", layers=[3, 4, 23, 3], width=64, image_size=224)),
    "vitb32": dict(embed_dim=512, vision=dict(kind="vit", image_size=224, patch=32, width=768, layers=12)),
}
RELEASED_TEXT = dict(context_length=77, vocab_size=49408, text_width=512, text_heads=8, text_layers=12)


def make_released_shapes():
    shapes = {}
    for name, cfg in RELEASED.items():
        model = ref.CLIP(cfg["embed_dim"], cfg["vision"], quick_gelu=True, **RELEASED_TEXT)
        shapes[name] = {k: list(v.shape) for k, v in model.state_dict().items()}
    with open(os.path.join(OUT, "released-shapes.json"), "w") as f:
        json.dump(shapes, f, indent=0, sort_keys=True)
        f.write("\n")


# The same small CLIP in the three files PyTorch users hold: OpenAI's TorchScript archive (weights
# in float16, as OpenAI ships them), open_clip's pickled state dict (torch.save) and safetensors,
# all three in float16 to keep them small.
# The C# test checks that all three give the same tensors; parity of the math is tested above.
FORMATS_TEXT = dict(context_length=8, vocab_size=64, text_width=64, text_heads=1, text_layers=1)


def make_formats():
    torch.manual_seed(4)
    vision = dict(kind="resnet", layers=[1, 1, 1, 1], width=4, image_size=32)
    model = randomize(ref.CLIP(16, vision, quick_gelu=True, **FORMATS_TEXT)).eval()
    d = os.path.join(OUT, "formats")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "weights.safetensors"), weights_f16(model))
    model.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    torch.save(model.half().state_dict(), os.path.join(d, "open_clip.bin"))
    model.float()
    traced = torch.jit.trace_module(model, {"encode_image": torch.randn(1, 3, 32, 32)})
    traced.half().save(os.path.join(d, "openai.pt"))


def make_released(name, folder):
    """A full-size parity pair for one of OpenAI's sizes, written outside the repository (hundreds of MB)."""
    global OUT
    OUT = folder
    os.makedirs(folder, exist_ok=True)
    cfg = RELEASED[name]
    torch.manual_seed(5)
    model = randomize(ref.CLIP(cfg["embed_dim"], cfg["vision"], quick_gelu=True, **RELEASED_TEXT)).eval()
    image = torch.randn(2, 3, 224, 224)
    text = text_tokens(RELEASED_TEXT["vocab_size"], RELEASED_TEXT["context_length"], [5, 9])
    out = clip_outputs(model, image, text)
    for k, v in out.items():
        print(f"  {name:14s} {k:17s} shape={list(v.shape)} std={v.std():.4f} max|x|={v.abs().max():.4f}")
    write_safetensors(os.path.join(folder, name + ".safetensors"), weights_f16(model))
    write_safetensors(os.path.join(folder, name + ".io.safetensors"), {"image": image, "text": text, **out})


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--released":
        # make_fixtures.py --released rn50|rn101|vitb32 FOLDER
        return make_released(sys.argv[2], sys.argv[3])
    torch.set_num_threads(1)  # deterministic single-threaded reductions
    crosscheck_attention()
    os.makedirs(OUT, exist_ok=True)
    for name, (seed, vision, quick_gelu, *text_config) in CLIP_FIXTURES.items():
        make_clip(name, seed, vision, quick_gelu, *text_config)
    make_bert(3)
    make_released_shapes()
    make_formats()
    for dirpath, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            print(f"  {os.path.relpath(p, OUT):32s} {os.path.getsize(p):>9,d} bytes")


if __name__ == "__main__":
    main()
