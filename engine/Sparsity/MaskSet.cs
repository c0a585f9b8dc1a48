using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>How a mask was chosen.</summary>
public enum MaskKind
{
    /// <summary>Keeps everything.</summary>
    Dense,
    /// <summary>The paper's one-shot magnitude pruning: smallest |w| over the whole prunable set.</summary>
    GlobalMagnitude,
    /// <summary>The same fraction of smallest |w| removed from every matrix.</summary>
    PerMatrixMagnitude,
    /// <summary>Uniformly random positions over the whole set (a baseline).</summary>
    RandomGlobal,
    /// <summary>Random positions with the same count per matrix as another mask (a baseline).</summary>
    RandomPerMatrix,
    /// <summary>N:M along the input dimension: in every M consecutive weights of a row, the N largest |w| kept.</summary>
    NM,
}

/// <summary>
/// A keep mask over a <see cref="PrunableSet"/>: one byte per weight (1 keep, 0 pruned), aligned
/// with the span, so applying it and masking the optimizer are plain elementwise passes. Bytes
/// rather than bits: the masked AdamW and ApplyMask read one byte per float without unpacking, and
/// 85 MB for bert-base is small beside its 340 MB of weights.
/// </summary>
public sealed unsafe class MaskSet
{
    public MaskSet(PrunableSet set, Tensor keep, MaskKind kind, double requestedSparsity, string description)
    {
        ArgumentNullException.ThrowIfNull(set);
        CheckMaskShape(keep, set.Count, nameof(keep));
        Set = set;
        Keep = keep;
        Kind = kind;
        RequestedSparsity = requestedSparsity;
        Description = description;
    }

    public PrunableSet Set { get; }

    /// <summary>U8 tensor of <see cref="PrunableSet.Count"/> bytes: 1 keep, 0 pruned (any non-zero byte counts as keep).</summary>
    public Tensor Keep { get; }

    public MaskKind Kind { get; }

    /// <summary>The sparsity asked for (for N:M, 1 - N/M).</summary>
    public double RequestedSparsity { get; }

    /// <summary>A short human description, e.g. "global magnitude 50%".</summary>
    public string Description { get; }

    /// <summary>Number of kept weights.</summary>
    public long KeptCount() => MaskCounting.CountNonZero(Keep.U8(), Set.Count);

    public long PrunedCount() => Set.Count - KeptCount();

    /// <summary>Fraction of the set pruned.</summary>
    public double Sparsity() => (double)PrunedCount() / Set.Count;

    /// <summary>Pruned weights per matrix, in the order of <see cref="PrunableSet.Matrices"/>.</summary>
    public long[] PrunedPerMatrix()
    {
        byte* k = Keep.U8();
        var result = new long[Set.Matrices.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var m = Set.Matrices[i];
            result[i] = m.Count - MaskCounting.CountNonZero(k + m.Offset, m.Count);
        }
        return result;
    }

    /// <summary>Zeroes the pruned weights of the span (through the backend that holds it).</summary>
    public void Apply(IBackend backend) => backend.ApplyMask(Set.Span, Keep);

    /// <summary>The view of this mask over one matrix, shaped like it.</summary>
    public Tensor View(PrunableMatrix matrix) => Keep.Slice(matrix.Offset, matrix.Rows, matrix.Cols);

    /// <summary>An all-ones mask over the set.</summary>
    public static MaskSet Dense(PrunableSet set)
    {
        var keep = AllocateFor(set);
        keep.U8Span().Fill(1);
        return new MaskSet(set, keep, MaskKind.Dense, 0, "dense");
    }

    internal static Tensor AllocateFor(PrunableSet set) =>
        set.Span.Backend.Allocate(DType.U8, checked((int)set.Count));

    internal static byte* CheckMaskTensor(Tensor keep, long count, string name)
    {
        CheckMaskShape(keep, count, name);
        return keep.U8();
    }

    /// <summary>Dtype and length only, so a mask in device memory passes too.</summary>
    internal static void CheckMaskShape(Tensor keep, long count, string name)
    {
        ArgumentNullException.ThrowIfNull(keep, name);
        if (keep.DType != DType.U8) throw new ArgumentException($"{name}: mask {keep} must be U8", name);
        if (keep.Length != count) throw new ArgumentException($"{name}: mask {keep} holds {keep.Length} bytes, the prunable set {count} weights", name);
    }
}
