using NativeSparsity.Engine.Random;

namespace NativeSparsity.Models.Vision;

/// <summary>
/// Which patches to hide for masked patch prediction (SimMIM-style): every image of a batch hides
/// exactly <see cref="MaskedPerImage"/> = round(ratio * P) of its P patches (midpoint away from
/// zero), chosen by a partial Fisher-Yates shuffle whose draws are Philox words keyed by
/// (seed, stream = base + step, counter = image * P + draw). The model replaces the hidden patches'
/// embeddings by a learned mask token and regresses <see cref="Targets"/>, their normalised pixels.
/// </summary>
public sealed class PatchMaskPlan
{
    private const ulong StreamBase = 0x5653_0030UL << 32; // + step

    public int BatchSize { get; }
    public int PatchCount { get; }
    public int MaskedPerImage { get; }

    /// <summary>[BatchSize * PatchCount]: 1 where the patch row is hidden, else 0.</summary>
    public byte[] Mask { get; }

    /// <summary>Hidden patch rows (image * PatchCount + patch), ascending; [BatchSize * MaskedPerImage].</summary>
    public int[] MaskedRows { get; }

    public int MaskedCount => MaskedRows.Length;

    private PatchMaskPlan(int batchSize, int patchCount, int maskedPerImage, byte[] mask, int[] maskedRows)
    {
        BatchSize = batchSize; PatchCount = patchCount; MaskedPerImage = maskedPerImage; Mask = mask; MaskedRows = maskedRows;
    }

    /// <summary>round(ratio * patchCount), midpoint away from zero.</summary>
    public static int MaskedCountFor(int patchCount, double ratio)
    {
        if (!(ratio >= 0 && ratio <= 1)) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "expected a mask ratio in [0, 1]");
        return (int)Math.Round(ratio * patchCount, MidpointRounding.AwayFromZero);
    }

    /// <summary>The plan for one step's batch of <paramref name="batchSize"/> images with <paramref name="patchCount"/> patches each.</summary>
    public static PatchMaskPlan Create(int batchSize, int patchCount, double ratio, ulong seed, long step)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "expected batch size > 0");
        if (patchCount <= 0) throw new ArgumentOutOfRangeException(nameof(patchCount), patchCount, "expected patch count > 0");
        int k = MaskedCountFor(patchCount, ratio);
        var mask = new byte[batchSize * patchCount];
        var order = new int[patchCount];
        ulong stream = StreamBase + (ulong)step;
        for (int b = 0; b < batchSize; b++)
        {
            for (int p = 0; p < patchCount; p++) order[p] = p;
            ulong counter = (ulong)b * (ulong)patchCount;
            for (int j = 0; j < k; j++)
            {
                int r = j + (int)(((ulong)Philox.Bits(seed, stream, counter + (ulong)j) * (ulong)(patchCount - j)) >> 32);
                (order[j], order[r]) = (order[r], order[j]);
                mask[b * patchCount + order[j]] = 1;
            }
        }
        var rows = new int[batchSize * k];
        int n = 0;
        for (int row = 0; row < mask.Length; row++)
            if (mask[row] != 0) rows[n++] = row;
        return new PatchMaskPlan(batchSize, patchCount, k, mask, rows);
    }

    /// <summary>The plan for <paramref name="batch"/>'s geometry.</summary>
    public static PatchMaskPlan Create(VisionBatch batch, double ratio, ulong seed, long step) =>
        Create(batch.BatchSize, batch.PatchCount, ratio, seed, step);

    /// <summary>
    /// The regression targets: the rows of <paramref name="patches"/> ([BatchSize * PatchCount, patchDim])
    /// that are hidden, in <see cref="MaskedRows"/> order, as [MaskedCount, patchDim].
    /// </summary>
    public float[] Targets(ReadOnlySpan<float> patches, int patchDim)
    {
        if (patchDim <= 0 || patches.Length != (long)BatchSize * PatchCount * patchDim)
            throw new ArgumentException($"expected patches of {BatchSize} x {PatchCount} x {patchDim} floats, got {patches.Length}", nameof(patches));
        var targets = new float[MaskedRows.Length * patchDim];
        for (int m = 0; m < MaskedRows.Length; m++)
            patches.Slice(MaskedRows[m] * patchDim, patchDim).CopyTo(targets.AsSpan(m * patchDim, patchDim));
        return targets;
    }

    /// <summary>Targets for <paramref name="batch"/> (the plan must have its geometry).</summary>
    public float[] Targets(VisionBatch batch) => Targets(batch.Patches, batch.PatchDim);
}
