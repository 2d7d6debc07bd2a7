"""PyTorch (CPU) peer of recap's captioning benchmark: greedy decoding and beam search of many
images with the exercise's LSTM captioner, float32, written as a PyTorch user would write them.

  greedy  nn.LSTMCell one step at a time, argmax fed back (as ../shared/peers/bench_torch_ref.py),
          stopping once every caption has written <END> (as self-critical.pytorch's sampler)
  beam    batched beam search over all images: (N B) rows of state, log_softmax scores added
          to each beam's, top-B of the B x V candidates per image (torch.topk), the states
          gathered by beam; a finished beam (<END>) keeps its score and extends only by <NULL>;
          stops when every image's beams have ended; returns each image's best beam

One JSON line per measurement (median of the timed reps after a warm-up), like
bench_torch_ref.py. Two ways to run it:

  python torch_sample.py [greedy|beam] [--beam 3] [--images 1000] [--max-length 30]
                         [--reps 5] [--threads T] [--weights DIR]
  python torch_sample.py --serve --weights DIR [...]   # bench/sample_bench.ts drives this one

With --weights DIR the model's parameters are recap's, read from raw float32 files in DIR
(W_proj, b_proj, W_embed, Wx, Wh, b, W_vocab, b_vocab, features: the names and shapes of
model/params.ts; the LSTM gates reordered from recap's i, f, o, g to PyTorch's i, f, g, o), so
both libraries decode the same model. Without it, PyTorch's default initialisation.
In --serve mode each stdin line "greedy T" or "beam T" runs one timed call on T threads (one
untimed warm-up call first for each) and answers one JSON line {"ms": ...}; the call's
captions, (N, L) int32, go to DIR/torch_captions.bin for the benchmark to compare.

Set up (CPU build of PyTorch): python3 -m venv --system-site-packages .venv-torch &&
  .venv-torch/bin/pip install --no-deps "torch==2.13.0+cpu"
"""
import argparse, json, os, sys, time
import numpy as np
import torch
import torch.nn as nn

V, D, W_DIM, H_DIM = 1004, 512, 256, 512
NULL, START, END = 0, 1, 2


class Captioner(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(D, H_DIM)
        self.embed = nn.Embedding(V, W_DIM)
        self.cell = nn.LSTMCell(W_DIM, H_DIM)
        self.vocab = nn.Linear(H_DIM, V)

    def load_recap(self, weights):
        """recap's parameters (x . W layout) into the torch modules (x . W^T layout)."""
        def read(name, shape):
            return torch.from_numpy(np.fromfile(os.path.join(weights, name), np.float32).reshape(shape))
        h = H_DIM
        # recap's gate blocks are i, f, o, g; PyTorch's i, f, g, o.
        order = torch.cat([torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)])
        self.proj.weight.copy_(read('W_proj', (D, h)).T)
        self.proj.bias.copy_(read('b_proj', (h,)))
        self.embed.weight.copy_(read('W_embed', (V, W_DIM)))
        self.cell.weight_ih.copy_(read('Wx', (W_DIM, 4 * h))[:, order].T)
        self.cell.weight_hh.copy_(read('Wh', (h, 4 * h))[:, order].T)
        self.cell.bias_ih.copy_(read('b', (4 * h,))[order])
        self.cell.bias_hh.zero_()
        self.vocab.weight.copy_(read('W_vocab', (h, V)).T)
        self.vocab.bias.copy_(read('b_vocab', (V,)))

    def greedy(self, feats, max_length):
        h = self.proj(feats)
        c = torch.zeros_like(h)
        word = torch.full((feats.shape[0],), START, dtype=torch.long)
        out = torch.full((feats.shape[0], max_length), NULL, dtype=torch.long)
        done = torch.zeros(feats.shape[0], dtype=torch.bool)
        for t in range(max_length):
            h, c = self.cell(self.embed(word), (h, c))
            word = self.vocab(h).argmax(1)
            out[:, t] = word
            done = done | (word == END)
            if bool(done.all()):  # as self-critical.pytorch's sampler: stop once all have ended
                break
        return out

    def beam(self, feats, max_length, beam):
        n, b = feats.shape[0], beam
        h = self.proj(feats).repeat_interleave(b, 0)  # (N B, H)
        c = torch.zeros_like(h)
        scores = torch.full((n, b), float('-inf'))
        scores[:, 0] = 0  # one live beam per image at the start
        words = torch.full((n * b,), START, dtype=torch.long)
        done = torch.zeros(n * b, dtype=torch.bool)
        out = torch.full((n * b, max_length), NULL, dtype=torch.long)
        base = (torch.arange(n) * b).unsqueeze(1)  # each image's first row
        only_null = torch.full((V,), float('-inf'))
        only_null[NULL] = 0
        for t in range(max_length):
            h, c = self.cell(self.embed(words), (h, c))
            logp = torch.log_softmax(self.vocab(h), dim=1)
            logp[done] = only_null  # a finished beam extends by <NULL> at no cost
            cand = (scores.reshape(-1, 1) + logp).reshape(n, b * V)
            scores, idx = cand.topk(b, dim=1)
            rows = (base + idx // V).reshape(-1)
            words = (idx % V).reshape(-1)
            h, c, out, done = h[rows], c[rows], out[rows], done[rows]
            out[:, t] = words
            done = done | (words == END)
            if bool(done.all()):
                break
        best = scores.argmax(1)
        return out.reshape(n, b, max_length)[torch.arange(n), best]


def make(args):
    torch.manual_seed(0)
    model = Captioner().eval()
    with torch.no_grad():
        if args.weights:
            model.load_recap(args.weights)
            feats = torch.from_numpy(np.fromfile(os.path.join(args.weights, 'features'), np.float32)
                                     .reshape(-1, D)[:args.images].copy())
        else:
            feats = torch.randn(args.images, D)
    return model, feats


@torch.no_grad()
def run(model, feats, args, decoder):
    if decoder == 'greedy':
        return model.greedy(feats, args.max_length)
    return model.beam(feats, args.max_length, args.beam)


def line(args, decoder, threads, ms):
    return {'impl': 'torch', 'torch': torch.__version__, 'threads': threads, 'cell': 'lstm',
            'decoder': decoder if decoder == 'greedy' else f'beam {args.beam}',
            'images': args.images, 'max_length': args.max_length, 'ms': round(ms, 1),
            'captions_per_s': round(args.images / ms * 1e3, 1)}


def serve(model, feats, args):
    warm = set()
    for request in sys.stdin:
        if not request.strip():
            continue
        decoder, threads = request.split()
        torch.set_num_threads(int(threads))
        if (decoder, threads) not in warm:
            run(model, feats[:100], args, decoder)
            warm.add((decoder, threads))
        t0 = time.perf_counter()
        captions = run(model, feats, args, decoder)
        ms = (time.perf_counter() - t0) * 1e3
        captions.to(torch.int32).numpy().tofile(os.path.join(args.weights, 'torch_captions.bin'))
        print(json.dumps(line(args, decoder, int(threads), ms)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('decoder', nargs='?', choices=['greedy', 'beam'], default='greedy')
    p.add_argument('--beam', type=int, default=3)
    p.add_argument('--images', type=int, default=1000)
    p.add_argument('--max-length', type=int, default=30)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--weights', default=None)
    p.add_argument('--serve', action='store_true')
    args = p.parse_args()
    model, feats = make(args)
    if args.serve:
        if not args.weights:
            p.error('--serve needs --weights')
        return serve(model, feats, args)
    torch.set_num_threads(args.threads)
    run(model, feats[:100], args, args.decoder)  # warm-up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        run(model, feats, args, args.decoder)
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps(line(args, args.decoder, args.threads, float(np.median(times)))), flush=True)


if __name__ == '__main__':
    main()
