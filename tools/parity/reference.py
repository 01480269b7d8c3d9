"""Minimal PyTorch reference of CLIP (OpenAI layout) and BERT masked-LM, used only to
generate parity fixtures for the C# implementation (see make_fixtures.py).

Written from the published architectures. Module attribute names are chosen so that
state_dict() keys match OpenAI's clip/model.py (CLIP) and Hugging Face's
BertForMaskedLM (BERT); the C# loader reads checkpoints with those names.
Internally everything is batch-first: [batch, tokens, width].
"""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    # OpenAI's sigmoid approximation of GELU; the released CLIP weights were trained with it.
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class GELU(nn.Module):
    # Exact (erf) GELU, as used by open_clip's non-OpenAI models and by BERT.
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def split_heads(x, heads):
    # [b, n, w] -> [b, heads, n, w/heads]
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def merge_heads(x):
    # [b, heads, n, d] -> [b, n, heads*d]
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def attention(q, k, v, heads, bias=None):
    """Scaled dot-product attention over heads. q: [b, nq, w], k/v: [b, nk, w].
    bias is added to the scores (broadcast to [b, heads, nq, nk]): -inf / -1e9 masks."""
    q, k, v = split_heads(q, heads), split_heads(k, heads), split_heads(v, heads)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    return merge_heads(scores.softmax(dim=-1) @ v)


# ----------------------------------------------------------------------------- CLIP

class SelfAttention(nn.Module):
    # Same parameter names as nn.MultiheadAttention: one packed [3w, w] in-projection (q, k, v rows).
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, bias=None):
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return self.out_proj(attention(q, k, v, self.heads, bias))


class Mlp(nn.Module):
    def __init__(self, width, act):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.act = act
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    # Pre-LN transformer block.
    def __init__(self, width, heads, act):
        super().__init__()
        self.attn = SelfAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = Mlp(width, act)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, bias=None):
        x = x + self.attn(self.ln_1(x), bias)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, act):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, act) for _ in range(layers)])

    def forward(self, x, bias=None):
        for block in self.resblocks:
            x = block(x, bias)
        return x


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        # Anti-aliased ResNet: every conv has stride 1; downsampling is an avgpool before conv3.
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            # The "-1" name keeps the conv/bn at indices 0/1, as in OpenAI's checkpoints.
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * 4)),
            ]))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Single-query attention pooling: the mean of the feature map is the query,
    keys/values are [mean token, every spatial position]."""

    def __init__(self, spacial_dim, embed_dim, heads, output_dim):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.empty(spacial_dim ** 2 + 1, embed_dim))
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.heads = heads

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)                     # [b, hw, c]
        x = torch.cat([x.mean(dim=1, keepdim=True), x], 1)    # [b, hw+1, c]
        x = x + self.positional_embedding
        out = attention(self.q_proj(x[:, :1]), self.k_proj(x), self.v_proj(x), self.heads)
        return self.c_proj(out[:, 0])                         # [b, output_dim]


class ModifiedResNet(nn.Module):
    def __init__(self, layers, output_dim, heads, input_resolution, width):
        super().__init__()
        # 3-conv stem (w/2, w/2, w) then a 2x avgpool: overall stride 4.
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0], 1)
        self.layer2 = self._make_layer(width * 2, layers[1], 2)
        self.layer3 = self._make_layer(width * 4, layers[2], 2)
        self.layer4 = self._make_layer(width * 8, layers[3], 2)
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    def _make_layer(self, planes, blocks, stride):
        # Only the first block of a stage downsamples.
        seq = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        seq += [Bottleneck(self._inplanes, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*seq)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, act):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, output_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)         # [b, grid*grid, width], row-major patches
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim, vision, context_length, vocab_size, text_width, text_heads, text_layers,
                 quick_gelu):
        """vision: dict(kind="resnet", layers, width, image_size) or dict(kind="vit", image_size, patch, width, layers)."""
        super().__init__()
        act = QuickGELU() if quick_gelu else GELU()
        if vision["kind"] == "resnet":
            # OpenAI: attention-pool heads = feature width (32 * width) / 64.
            self.visual = ModifiedResNet(vision["layers"], embed_dim, vision["width"] * 32 // 64,
                                         vision["image_size"], vision["width"])
        else:
            self.visual = VisionTransformer(vision["image_size"], vision["patch"], vision["width"],
                                            vision["layers"], vision["width"] // 64, embed_dim, act)
        self.transformer = Transformer(text_width, text_layers, text_heads, act)
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.empty(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # 0-d, as in OpenAI's state dict
        # Causal mask: position i attends to j <= i only.
        n = context_length
        self.register_buffer("attn_mask", torch.full((n, n), float("-inf")).triu(1), persistent=False)

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.attn_mask))
        # EOT token has the largest id in the vocabulary, so argmax finds its position.
        eot = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        return eot @ self.text_projection

    def forward(self, image, text):
        img = F.normalize(self.encode_image(image), dim=-1)
        txt = F.normalize(self.encode_text(text), dim=-1)
        return self.logit_scale.exp() * img @ txt.t()     # logits_per_image [n_img, n_txt]


# ----------------------------------------------------------------------------- BERT

class Dense(nn.Module):
    # Holder giving the "<name>.dense" / "<name>.LayerNorm" key layout of Hugging Face BERT.
    def __init__(self, n_in, n_out, eps=None):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(n_out, eps=eps)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.heads = heads


class BertAttention(nn.Module):
    def __init__(self, hidden, heads, eps):
        super().__init__()
        self.self = BertSelfAttention(hidden, heads)
        self.output = Dense(hidden, hidden, eps)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate, eps):
        super().__init__()
        self.attention = BertAttention(hidden, heads, eps)
        self.intermediate = Dense(hidden, intermediate)
        self.output = Dense(intermediate, hidden, eps)
        self.act = GELU()

    def forward(self, x, bias):
        # Post-LN: LayerNorm after each residual sum.
        s = self.attention.self
        a = attention(s.query(x), s.key(x), s.value(x), s.heads, bias)
        o = self.attention.output
        x = o.LayerNorm(x + o.dense(a))
        h = self.act(self.intermediate.dense(x))
        return self.output.LayerNorm(x + self.output.dense(h))


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(2, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        # All tokens are segment 0.
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class BertEncoder(nn.Module):
    def __init__(self, hidden, layers, heads, intermediate, eps):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(hidden, heads, intermediate, eps) for _ in range(layers)])


class Bert(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, intermediate, max_pos, eps):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos, eps)
        self.encoder = BertEncoder(hidden, layers, heads, intermediate, eps)


class LmPredictions(nn.Module):
    def __init__(self, vocab, hidden, eps):
        super().__init__()
        self.transform = Dense(hidden, hidden, eps)
        self.bias = nn.Parameter(torch.empty(vocab))


class LmHead(nn.Module):
    def __init__(self, vocab, hidden, eps):
        super().__init__()
        self.predictions = LmPredictions(vocab, hidden, eps)


class BertForMaskedLM(nn.Module):
    """Decoder weight is tied to bert.embeddings.word_embeddings (not a separate key);
    the decoder bias is cls.predictions.bias."""

    def __init__(self, vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
                 max_position_embeddings, layer_norm_eps=1e-12):
        super().__init__()
        self.bert = Bert(vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
                         max_position_embeddings, layer_norm_eps)
        self.cls = LmHead(vocab_size, hidden_size, layer_norm_eps)

    def forward(self, input_ids, attention_mask):
        # Padded keys (mask 0) get -1e9 added to their scores; shape [b, 1, 1, n] broadcasts over heads/queries.
        bias = (1.0 - attention_mask.float())[:, None, None, :] * -1e9
        x = self.bert.embeddings(input_ids)
        for layer in self.bert.encoder.layer:
            x = layer(x, bias)
        t = self.cls.predictions.transform
        h = t.LayerNorm(GELU()(t.dense(x)))
        return h @ self.bert.embeddings.word_embeddings.weight.t() + self.cls.predictions.bias
