using System.Globalization;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// One prunable weight matrix inside the prunable span: its Hugging Face name, where it starts
/// (elements from the start of the span) and its shape as stored, [out features, in features].
/// </summary>
public sealed record PrunableMatrix(string Name, long Offset, int Rows, int Cols)
{
    public long Count => (long)Rows * Cols;

    /// <summary>Encoder layer index parsed from "...layer.N...", or -1 when the name has none.</summary>
    public int Layer { get; } = ParseLayer(Name);

    internal static int ParseLayer(string name)
    {
        const string marker = "layer.";
        int at = 0;
        while ((at = name.IndexOf(marker, at, StringComparison.Ordinal)) >= 0)
        {
            // Only a whole path component counts ("layer.3." but not "sublayer.3.").
            bool startsComponent = at == 0 || name[at - 1] == '.';
            int digits = at + marker.Length, end = digits;
            while (end < name.Length && char.IsAsciiDigit(name[end])) end++;
            if (startsComponent && end > digits && (end == name.Length || name[end] == '.'))
                return int.Parse(name.AsSpan(digits, end - digits), CultureInfo.InvariantCulture);
            at += marker.Length;
        }
        return -1;
    }
}

/// <summary>
/// The prunable weights of a model: an ordered list of matrices that tile one contiguous F32 view
/// of the flat parameter buffer, so a global threshold is one selection over one span and a mask
/// is one byte array aligned with it. The model builds it; everything in Sparsity reads it.
/// </summary>
public sealed class PrunableSet
{
    private readonly PrunableMatrix[] _matrices;

    /// <param name="span">The F32 view holding every prunable weight, in the order of <paramref name="matrices"/>.</param>
    /// <param name="matrices">Matrices in span order; they must tile the span exactly (no gaps, no overlap).</param>
    public PrunableSet(Tensor span, IEnumerable<PrunableMatrix> matrices)
    {
        ArgumentNullException.ThrowIfNull(span);
        ArgumentNullException.ThrowIfNull(matrices);
        if (span.DType != DType.F32) throw new ArgumentException($"prunable span {span}: expected dtype F32", nameof(span));
        _matrices = matrices.ToArray();
        if (_matrices.Length == 0) throw new ArgumentException("a prunable set needs at least one matrix", nameof(matrices));
        long expected = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in _matrices)
        {
            if (m.Rows <= 0 || m.Cols <= 0)
                throw new ArgumentException($"prunable matrix {m.Name}: shape [{m.Rows}, {m.Cols}] must be positive", nameof(matrices));
            if (m.Offset != expected)
                throw new ArgumentException(
                    $"prunable matrix {m.Name} starts at element {m.Offset} of the span, expected {expected} (matrices must tile the span in order)",
                    nameof(matrices));
            if (!names.Add(m.Name)) throw new ArgumentException($"prunable matrix {m.Name} is listed twice", nameof(matrices));
            expected += m.Count;
        }
        if (expected != span.Length)
            throw new ArgumentException($"prunable matrices hold {expected} weights but the span {span} holds {span.Length}", nameof(span));
        Span = span;
        Count = expected;
    }

    /// <summary>The contiguous F32 view over every prunable weight.</summary>
    public Tensor Span { get; }

    public IReadOnlyList<PrunableMatrix> Matrices => _matrices;

    /// <summary>Total number of prunable weights (the n of a global sparsity).</summary>
    public long Count { get; }

    /// <summary>The view of one matrix, shaped [rows, cols].</summary>
    public Tensor View(PrunableMatrix matrix) => Span.Slice(matrix.Offset, matrix.Rows, matrix.Cols);

    /// <summary>The matrix holding span element <paramref name="index"/>.</summary>
    public PrunableMatrix MatrixAt(long index)
    {
        if ((ulong)index >= (ulong)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"outside the prunable span of {Count} weights");
        int lo = 0, hi = _matrices.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (_matrices[mid].Offset <= index) lo = mid; else hi = mid - 1;
        }
        return _matrices[lo];
    }

    /// <summary>"name[row, col]" for span element <paramref name="index"/>, for error messages.</summary>
    public string Describe(long index)
    {
        var m = MatrixAt(index);
        long local = index - m.Offset;
        return $"{m.Name}[{local / m.Cols}, {local % m.Cols}] (element {index} of the prunable span)";
    }

    /// <summary>
    /// The matrices the paper prunes, in the order of BERT's encoder: per layer query, key, value,
    /// attention output, intermediate, output ([out, in] as torch's Linear stores them). A model
    /// that lays its flat buffer out this way can pass the span here.
    /// </summary>
    public static IReadOnlyList<PrunableMatrix> BertEncoderLayout(int layers, int hidden, int intermediate,
                                                                  string prefix = "bert.encoder.layer")
    {
        if (layers <= 0 || hidden <= 0 || intermediate <= 0)
            throw new ArgumentException($"BERT layout needs positive sizes, got layers {layers}, hidden {hidden}, intermediate {intermediate}");
        var list = new List<PrunableMatrix>(layers * 6);
        long offset = 0;
        void Add(string name, int rows, int cols)
        {
            list.Add(new PrunableMatrix(name, offset, rows, cols));
            offset += (long)rows * cols;
        }
        for (int l = 0; l < layers; l++)
        {
            string p = $"{prefix}.{l}.";
            Add(p + "attention.self.query.weight", hidden, hidden);
            Add(p + "attention.self.key.weight", hidden, hidden);
            Add(p + "attention.self.value.weight", hidden, hidden);
            Add(p + "attention.output.dense.weight", hidden, hidden);
            Add(p + "intermediate.dense.weight", intermediate, hidden);
            Add(p + "output.dense.weight", hidden, intermediate);
        }
        return list;
    }

    internal unsafe float* Pointer => Span.F32();
}
