using System.Diagnostics;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// An <see cref="IBackend"/> that forwards every call to another backend and times it, with a
/// Synchronize on either side, under the op's name (GEMMs also under their shape). Used by
/// `nsparse bench train --profile`; without the flag the bench runs on the bare backend, so the
/// profiler costs nothing when off. Tensors are allocated by (and belong to) the inner backend.
/// </summary>
internal sealed class ProfilingBackend : IBackend
{
    private readonly IBackend _inner;
    private readonly Dictionary<string, (double Seconds, long Calls, double Flops)> _ops = new();

    public ProfilingBackend(IBackend inner) => _inner = inner;

    public string Name => _inner.Name;

    public bool Enabled { get; set; } = true;

    public IReadOnlyDictionary<string, (double Seconds, long Calls, double Flops)> Ops => _ops;

    public void Reset() => _ops.Clear();

    private void Time(string op, Action call, double flops = 0)
    {
        if (!Enabled) { call(); return; }
        _inner.Synchronize();
        long t0 = Stopwatch.GetTimestamp();
        call();
        _inner.Synchronize();
        double s = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        _ops.TryGetValue(op, out var e);
        _ops[op] = (e.Seconds + s, e.Calls + 1, e.Flops + flops);
    }

    private static string Tr(bool a, bool b) => $"{(a ? 'T' : 'N')}{(b ? 'T' : 'N')}";

    public Tensor Allocate(DType dtype, params int[] shape) => _inner.Allocate(dtype, shape);
    public void CopyFromHost<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        // A span cannot enter a lambda: time inline.
        if (!Enabled) { _inner.CopyFromHost(src, dst); return; }
        long t0 = Stopwatch.GetTimestamp();
        _inner.CopyFromHost(src, dst);
        _inner.Synchronize();
        double s = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        _ops.TryGetValue("CopyFromHost", out var e);
        _ops["CopyFromHost"] = (e.Seconds + s, e.Calls + 1, 0);
    }
    public void CopyToHost<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        if (!Enabled) { _inner.CopyToHost(src, dst); return; }
        _inner.Synchronize();
        long t0 = Stopwatch.GetTimestamp();
        _inner.CopyToHost(src, dst);
        double s = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        _ops.TryGetValue("CopyToHost", out var e);
        _ops["CopyToHost"] = (e.Seconds + s, e.Calls + 1, 0);
    }
    public void Synchronize() => _inner.Synchronize();
    public void Copy(Tensor src, Tensor dst) => Time("Copy", () => _inner.Copy(src, dst));
    public void Fill(Tensor dst, float value) => Time("Fill", () => _inner.Fill(dst, value));

    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, Tensor b, int ldb,
                     float beta, Tensor c, int ldc) =>
        Time($"Gemm {Tr(transA, transB)} {m}x{n}x{k}", () => _inner.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
             2.0 * m * n * k);

    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, long strideA,
                                   Tensor b, int ldb, long strideB, float beta, Tensor c, int ldc, long strideC, int batch) =>
        Time($"GemmBatched {Tr(transA, transB)} {batch} x {m}x{n}x{k}",
             () => _inner.GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch),
             2.0 * m * n * k * batch);

    public void AddBias(Tensor y, Tensor bias, int rows, int cols) => Time($"AddBias {rows}x{cols}", () => _inner.AddBias(y, bias, rows, cols));
    public void BiasGradient(Tensor dy, Tensor dbias, int rows, int cols) => Time($"BiasGradient {rows}x{cols}", () => _inner.BiasGradient(dy, dbias, rows, cols));
    public void GeluForward(Tensor x, Tensor y) => Time($"GeluForward n={x.Length}", () => _inner.GeluForward(x, y));
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) => Time($"GeluBackward n={x.Length}", () => _inner.GeluBackward(x, dy, dx));
    public void TanhForward(Tensor x, Tensor y) => Time("TanhForward", () => _inner.TanhForward(x, y));
    public void TanhBackward(Tensor y, Tensor dy, Tensor dx) => Time("TanhBackward", () => _inner.TanhBackward(y, dy, dx));

    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, int rows, int cols, float eps) =>
        Time("LayerNormForward", () => _inner.LayerNormForward(x, gamma, beta, y, mean, rstd, rows, cols, eps));
    public void AddLayerNormForward(Tensor a, Tensor b, Tensor sum, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd,
                                    int rows, int cols, float eps) =>
        Time("AddLayerNormForward", () => _inner.AddLayerNormForward(a, b, sum, gamma, beta, y, mean, rstd, rows, cols, eps));
    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta,
                                  int rows, int cols) =>
        Time($"LayerNormBackward {rows}x{cols}", () => _inner.LayerNormBackward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols));

    public void SplitQkvHeads(Tensor qkv, Tensor q, Tensor k, Tensor v, int batch, int seq, int heads, int headDim) =>
        Time("SplitQkvHeads", () => _inner.SplitQkvHeads(qkv, q, k, v, batch, seq, heads, headDim));
    public void SplitQkvHeadsBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dqkv, int batch, int seq, int heads, int headDim) =>
        Time("SplitQkvHeadsBackward", () => _inner.SplitQkvHeadsBackward(dq, dk, dv, dqkv, batch, seq, heads, headDim));
    public void MergeHeads(Tensor x, Tensor y, int batch, int seq, int heads, int headDim) =>
        Time("MergeHeads", () => _inner.MergeHeads(x, y, batch, seq, heads, headDim));
    public void MergeHeadsBackward(Tensor dy, Tensor dx, int batch, int seq, int heads, int headDim) =>
        Time("MergeHeadsBackward", () => _inner.MergeHeadsBackward(dy, dx, batch, seq, heads, headDim));
    public void AttentionSoftmaxForward(Tensor scores, Tensor keyMask, Tensor probs, float scale, int batch, int heads, int seqQ, int seqK) =>
        Time("AttentionSoftmaxForward", () => _inner.AttentionSoftmaxForward(scores, keyMask, probs, scale, batch, heads, seqQ, seqK));
    public void AttentionSoftmaxBackward(Tensor probs, Tensor dprobs, Tensor dscores, float scale, int rows, int seqK) =>
        Time("AttentionSoftmaxBackward", () => _inner.AttentionSoftmaxBackward(probs, dprobs, dscores, scale, rows, seqK));

    public void EmbeddingForward(Tensor ids, Tensor table, Tensor output, int count, int dim, bool accumulate) =>
        Time("EmbeddingForward", () => _inner.EmbeddingForward(ids, table, output, count, dim, accumulate));
    public void EmbeddingBackward(Tensor ids, Tensor doutput, Tensor dtable, int count, int dim) =>
        Time("EmbeddingBackward", () => _inner.EmbeddingBackward(ids, doutput, dtable, count, dim));

    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter) =>
        Time($"DropoutForward n={x.Length}", () => _inner.DropoutForward(x, y, p, seed, stream, counter));
    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, ulong stream, ulong counter) =>
        Time($"DropoutBackward n={dy.Length}", () => _inner.DropoutBackward(dy, dx, p, seed, stream, counter));

    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int classes, int ignoreIndex) =>
        Time("CrossEntropyForward", () => _inner.CrossEntropyForward(logits, targets, losses, rows, classes, ignoreIndex));
    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor dlogits, int rows, int classes, int ignoreIndex, float scale) =>
        Time("CrossEntropyBackward", () => _inner.CrossEntropyBackward(logits, targets, dlogits, rows, classes, ignoreIndex, scale));

    public void Add(Tensor a, Tensor b, Tensor y) => Time("Add", () => _inner.Add(a, b, y));
    public void Axpy(float alpha, Tensor x, Tensor y) => Time("Axpy", () => _inner.Axpy(alpha, x, y));
    public void Scale(Tensor x, float alpha) => Time("Scale", () => _inner.Scale(x, alpha));
    public void Sum(Tensor x, Tensor result) => Time("Sum", () => _inner.Sum(x, result));
    public void SumOfSquares(Tensor x, Tensor result) => Time("SumOfSquares", () => _inner.SumOfSquares(x, result));

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? mask, Tensor? gradNormSquared, in AdamWParameters p)
    {
        var copy = p;
        Time("AdamW", () => _inner.AdamW(param, grad, m, v, mask, gradNormSquared, copy));
    }

    public void ApplyMask(Tensor x, Tensor mask) => Time("ApplyMask", () => _inner.ApplyMask(x, mask));

    public void Dispose() { }   // the inner backend is disposed by its owner
}
