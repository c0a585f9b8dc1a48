using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// <see cref="GlobalMagnitudeThreshold"/> for a prunable span in CUDA device memory: the same
/// selection (three 11/11/9-bit radix passes over |w| bits, k-th smallest exactly, ties pruned
/// lowest position first) run by kernels/radixselect.cu. Only the final keys and counts come back
/// to the host; the span and the mask stay on the device.
/// </summary>
internal static class CudaMagnitudeThreshold
{
    internal static MagnitudeThreshold[] SelectCounts(CudaBackend gpu, Tensor span, long[] pruneCounts, Func<long, string> describe)
    {
        long n = span.Length;
        if (n <= 0) throw new ArgumentException("cannot compute a magnitude threshold over an empty span");
        var ranks = new long[pruneCounts.Length];
        for (int j = 0; j < ranks.Length; j++)
        {
            if (pruneCounts[j] < 0 || pruneCounts[j] > n)
                throw new ArgumentOutOfRangeException(nameof(pruneCounts), pruneCounts[j], $"prune count must lie in [0, {n}]");
            ranks[j] = Math.Max(pruneCounts[j], 1) - 1;
        }
        var sel = gpu.RadixSelect(span, ranks, out long firstBad);
        if (firstBad < n)
        {
            // One float comes back to name the value, as the CPU does.
            var value = new float[1];
            gpu.CopyToHost<float>(span.Slice(firstBad, 1), value);
            throw new ArgumentException($"non-finite weight {value[0]} at {describe(firstBad)}: magnitude pruning needs finite weights");
        }
        var result = new MagnitudeThreshold[ranks.Length];
        for (int j = 0; j < result.Length; j++)
            result[j] = new MagnitudeThreshold((double)pruneCounts[j] / n, n, pruneCounts[j],
                BitConverter.Int32BitsToSingle((int)sel[j].Key), sel[j].Below, sel[j].Equal);
        return result;
    }

    internal static void WriteKeepMask(CudaBackend gpu, Tensor span, in MagnitudeThreshold t, Tensor keep)
    {
        if (!ReferenceEquals(keep.Backend, gpu))
            throw new ArgumentException($"keep: mask {keep} must live on the span's backend {gpu.Name}", nameof(keep));
        gpu.RadixKeepMask(span, keep, t.ThresholdBits, t.Below, t.EqualCount, t.Pruned);
    }
}
