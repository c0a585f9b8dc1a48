using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // ---- head layout permutations ------------------------------------------------------------
    // All four are pure permutations of headDim-long runs, parallel over (batch, seq) rows so
    // every chunk writes a disjoint set of runs.

    public void SplitQkvHeads(Tensor qkv, Tensor q, Tensor k, Tensor v, int batch, int seq, int heads, int headDim)
    {
        long n = CheckHeadShape(batch, seq, heads, headDim);
        CpuTensor.ExpectLength(qkv, 3 * n, nameof(qkv));
        CpuTensor.ExpectLength(q, n, nameof(q));
        CpuTensor.ExpectLength(k, n, nameof(k));
        CpuTensor.ExpectLength(v, n, nameof(v));
        float* src = qkv.F32();
        float* dq = q.F32(), dk = k.F32(), dv = v.F32();
        int width = heads * headDim;
        CpuParallel.ForRows(batch * seq, 3L * width, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                int b = row / seq, s = row % seq;
                float* qkvRow = src + (long)row * 3 * width;
                for (int h = 0; h < heads; h++)
                {
                    long headRow = (((long)b * heads + h) * seq + s) * headDim;
                    CopyRun(qkvRow + h * headDim, dq + headRow, headDim);
                    CopyRun(qkvRow + width + h * headDim, dk + headRow, headDim);
                    CopyRun(qkvRow + 2 * width + h * headDim, dv + headRow, headDim);
                }
            }
        });
    }

    public void SplitQkvHeadsBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dqkv, int batch, int seq, int heads, int headDim)
    {
        long n = CheckHeadShape(batch, seq, heads, headDim);
        CpuTensor.ExpectLength(dq, n, nameof(dq));
        CpuTensor.ExpectLength(dk, n, nameof(dk));
        CpuTensor.ExpectLength(dv, n, nameof(dv));
        CpuTensor.ExpectLength(dqkv, 3 * n, nameof(dqkv));
        float* gq = dq.F32(), gk = dk.F32(), gv = dv.F32();
        float* dst = dqkv.F32();
        int width = heads * headDim;
        CpuParallel.ForRows(batch * seq, 3L * width, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                int b = row / seq, s = row % seq;
                float* qkvRow = dst + (long)row * 3 * width;
                for (int h = 0; h < heads; h++)
                {
                    long headRow = (((long)b * heads + h) * seq + s) * headDim;
                    CopyRun(gq + headRow, qkvRow + h * headDim, headDim);
                    CopyRun(gk + headRow, qkvRow + width + h * headDim, headDim);
                    CopyRun(gv + headRow, qkvRow + 2 * width + h * headDim, headDim);
                }
            }
        });
    }

    public void MergeHeads(Tensor x, Tensor y, int batch, int seq, int heads, int headDim)
    {
        long n = CheckHeadShape(batch, seq, heads, headDim);
        CpuTensor.ExpectLength(x, n, nameof(x));
        CpuTensor.ExpectLength(y, n, nameof(y));
        PermuteHeads(x.F32(), y.F32(), batch, seq, heads, headDim, toMerged: true);
    }

    public void MergeHeadsBackward(Tensor dy, Tensor dx, int batch, int seq, int heads, int headDim)
    {
        long n = CheckHeadShape(batch, seq, heads, headDim);
        CpuTensor.ExpectLength(dy, n, nameof(dy));
        CpuTensor.ExpectLength(dx, n, nameof(dx));
        PermuteHeads(dy.F32(), dx.F32(), batch, seq, heads, headDim, toMerged: false);
    }

    /// <summary>[batch, heads, seq, headDim] to [batch, seq, heads*headDim] (toMerged) or back.</summary>
    private static void PermuteHeads(float* src, float* dst, int batch, int seq, int heads, int headDim, bool toMerged)
    {
        int width = heads * headDim;
        CpuParallel.ForRows(batch * seq, width, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                int b = row / seq, s = row % seq;
                long mergedRow = (long)row * width;
                for (int h = 0; h < heads; h++)
                {
                    long headRow = (((long)b * heads + h) * seq + s) * headDim;
                    if (toMerged) CopyRun(src + headRow, dst + mergedRow + h * headDim, headDim);
                    else CopyRun(src + mergedRow + h * headDim, dst + headRow, headDim);
                }
            }
        });
    }

    private static void CopyRun(float* src, float* dst, int count) =>
        new ReadOnlySpan<float>(src, count).CopyTo(new Span<float>(dst, count));

    private static long CheckHeadShape(int batch, int seq, int heads, int headDim)
    {
        if (batch <= 0 || seq <= 0 || heads <= 0 || headDim <= 0)
            throw new ArgumentException(
                $"attention shape must be positive: batch {batch}, seq {seq}, heads {heads}, headDim {headDim}");
        return (long)batch * seq * heads * headDim;
    }

    // ---- masked, scaled softmax over keys ----------------------------------------------------

    public void AttentionSoftmaxForward(Tensor scores, Tensor keyMask, Tensor probs, float scale, int batch, int heads, int seqQ, int seqK)
    {
        if (batch <= 0 || heads <= 0 || seqQ <= 0 || seqK <= 0)
            throw new ArgumentException(
                $"attention softmax shape must be positive: batch {batch}, heads {heads}, seqQ {seqQ}, seqK {seqK}");
        long n = (long)batch * heads * seqQ * seqK;
        CpuTensor.ExpectLength(scores, n, nameof(scores));
        CpuTensor.ExpectLength(keyMask, (long)batch * seqK, nameof(keyMask));
        CpuTensor.ExpectLength(probs, n, nameof(probs));
        float* src = scores.F32(), dst = probs.F32();
        // The mask shifted so its largest entry per batch is 0. Softmax does not change under a
        // shift, but a row whose keys are all masked then adds 0, not -10000, to its scores and so
        // keeps their full float precision (at 10000 one ulp is about 1e-3).
        int maskLength = checked(batch * seqK);
        float* pmask = (float*)NativeMemory.Alloc((nuint)maskLength, sizeof(float));
        var maskSpan = new ReadOnlySpan<float>(keyMask.F32(), maskLength);
        for (int b = 0; b < batch; b++)
        {
            var m = maskSpan.Slice(b * seqK, seqK);
            TensorPrimitives.Subtract(m, TensorPrimitives.Max(m), new Span<float>(pmask + b * seqK, seqK));
        }
        int rowsPerBatch = heads * seqQ;
        try
        {
            CpuParallel.ForRows(batch * rowsPerBatch, 4L * seqK, (start, end) =>
            {
                for (int row = start; row < end; row++)
                {
                    float* x = src + (long)row * seqK, y = dst + (long)row * seqK;
                    // y may be x itself: every step below is element-wise in place.
                    // Subtracting the row maximum keeps exp finite; a fully masked row becomes a
                    // softmax of the plain scores, as the contract's formula gives.
                    float max = ScaleAddMask(x, scale, pmask + (row / rowsPerBatch) * seqK, y, seqK);
                    float sum = (float)VectorExp.ExpShiftedSum(y, max, y, seqK);
                    var ySpan = new Span<float>(y, seqK);
                    TensorPrimitives.Multiply(ySpan, 1f / sum, ySpan);
                }
            });
        }
        finally { NativeMemory.Free(pmask); }
    }

    /// <summary>y = x * scale + mask, returning max(y); y may be x.</summary>
    private static float ScaleAddMask(float* x, float scale, float* mask, float* y, int n)
    {
        var vs = Vector256.Create(scale);
        var vmax = Vector256.Create(float.NegativeInfinity);
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), vs, Vector256.Load(mask + i));
            v.Store(y + i);
            vmax = Vector256.Max(vmax, v);
        }
        float max = float.NegativeInfinity;
        for (int k = 0; k < 8; k++) max = MathF.Max(max, vmax.GetElement(k));
        for (; i < n; i++)
        {
            y[i] = MathF.FusedMultiplyAdd(x[i], scale, mask[i]);
            max = MathF.Max(max, y[i]);
        }
        return max;
    }

    public void AttentionSoftmaxBackward(Tensor probs, Tensor dprobs, Tensor dscores, float scale, int rows, int seqK)
    {
        if (rows <= 0 || seqK <= 0)
            throw new ArgumentException($"attention softmax backward shape must be positive: rows {rows}, seqK {seqK}");
        long n = (long)rows * seqK;
        CpuTensor.ExpectLength(probs, n, nameof(probs));
        CpuTensor.ExpectLength(dprobs, n, nameof(dprobs));
        CpuTensor.ExpectLength(dscores, n, nameof(dscores));
        float* p = probs.F32(), dp = dprobs.F32(), ds = dscores.F32();
        CpuParallel.ForRows(rows, 3L * seqK, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                var pr = new ReadOnlySpan<float>(p + (long)row * seqK, seqK);
                var g = new ReadOnlySpan<float>(dp + (long)row * seqK, seqK);
                float dot = TensorPrimitives.Dot(g, pr);
                // dst may alias g: the dot product is taken before g is overwritten.
                // dscores = (g - dot) * p * scale in one pass.
                float* pg = dp + (long)row * seqK, pp = p + (long)row * seqK, pd = ds + (long)row * seqK;
                var vdot = Vector256.Create(dot);
                var vscale = Vector256.Create(scale);
                int j = 0;
                for (; j + 8 <= seqK; j += 8)
                    ((Vector256.Load(pg + j) - vdot) * Vector256.Load(pp + j) * vscale).Store(pd + j);
                for (; j < seqK; j++) pd[j] = (pg[j] - dot) * pp[j] * scale;
            }
        });
    }
}
