using System.Globalization;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Backends.Cpu;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>What to measure; the defaults follow the paper's open question of "zero" vs "small".</summary>
public sealed record SparsityStatisticsOptions
{
    /// <summary>Count |w| strictly below each of these.</summary>
    public IReadOnlyList<double> AbsoluteThresholds { get; init; } = new[] { 1e-4, 1e-3, 1e-2 };

    /// <summary>Count |w| strictly below factor × (the matrix's standard deviation) for each factor.</summary>
    public IReadOnlyList<double> RelativeToStd { get; init; } = new[] { 0.01 };

    /// <summary>Log-spaced |w| histogram from here (smaller non-zero |w| go to the underflow count)...</summary>
    public double HistogramMin { get; init; } = 1e-8;

    /// <summary>...to here (larger go to overflow), with this many bins per decade.</summary>
    public double HistogramMax { get; init; } = 10;

    public int BinsPerDecade { get; init; } = 10;

    /// <summary>Sparsities for the global thresholds; null skips them.</summary>
    public IReadOnlyList<double>? SweepSparsities { get; init; } = GlobalMagnitudeThreshold.DefaultSweep;
}

/// <summary>One count over one scope: a matrix, a layer (all its matrices) or the whole set.</summary>
/// <param name="Scope">"matrix", "layer" or "total".</param>
/// <param name="Name">Matrix name, "layer.N" (or "other" for matrices outside any layer), or "all".</param>
/// <param name="Layer">Encoder layer, -1 when none.</param>
/// <param name="Criterion">"exact_zero", "abs_below" (|w| &lt; Threshold) or "rel_std_below" (|w| &lt; Factor × std).</param>
/// <param name="Factor">The relative factor for "rel_std_below", else 0.</param>
/// <param name="Threshold">The absolute threshold (for a layer or total relative row: NaN, each matrix used its own).</param>
public sealed record SparsityCountRow(string Scope, string Name, int Layer, string Criterion, double Factor,
                                     double Threshold, long Count, long Total)
{
    public double Fraction => Total == 0 ? 0 : (double)Count / Total;

    public const string CsvHeader = "scope,name,layer,criterion,factor,threshold,count,total,fraction";

    public string ToCsv() => string.Join(",", Csv.Quote(Scope), Csv.Quote(Name), Csv.Int(Layer), Criterion,
        Csv.Num(Factor), Csv.Num(Threshold), Csv.Int(Count), Csv.Int(Total), Csv.Num(Fraction));
}

/// <summary>Moments of one matrix.</summary>
public sealed record MatrixMoments(string Name, int Layer, long Count, double Mean, double Std, double MaxAbs, long NonFinite)
{
    public const string CsvHeader = "name,layer,count,mean,std,max_abs,non_finite";

    public string ToCsv() => string.Join(",", Csv.Quote(Name), Csv.Int(Layer), Csv.Int(Count), Csv.Num(Mean),
        Csv.Num(Std), Csv.Num(MaxAbs), Csv.Int(NonFinite));
}

/// <summary>
/// |w| histogram of one matrix with log-spaced bins: bin b counts Edges[b] &lt;= |w| &lt; Edges[b+1]
/// (edges rounded to float, so the comparison is exact). Zeros, non-zero |w| below the first
/// edge and |w| at or above the last are counted apart.
/// </summary>
public sealed record MagnitudeHistogram(string Name, int Layer, double[] Edges, long[] Counts, long Zeros, long Underflow, long Overflow)
{
    public const string CsvHeader = "name,layer,low,high,count";

    /// <summary>Rows: zeros as [0,0], underflow as [0, first edge), the bins, overflow as [last edge, inf).</summary>
    public IEnumerable<string> ToCsvRows()
    {
        string n = Csv.Quote(Name), l = Csv.Int(Layer);
        yield return $"{n},{l},0,0,{Zeros}";
        yield return $"{n},{l},0,{Csv.Num(Edges[0])},{Underflow}";
        for (int b = 0; b < Counts.Length; b++) yield return $"{n},{l},{Csv.Num(Edges[b])},{Csv.Num(Edges[b + 1])},{Counts[b]}";
        yield return $"{n},{l},{Csv.Num(Edges[^1])},inf,{Overflow}";
    }
}

/// <summary>Everything <see cref="SparsityStatistics.Compute"/> measures, as rows a report writes to CSV.</summary>
public sealed record SparsityReport(
    IReadOnlyList<MatrixMoments> Moments,
    IReadOnlyList<SparsityCountRow> Counts,
    IReadOnlyList<MagnitudeHistogram> Histograms,
    IReadOnlyList<MagnitudeThreshold> GlobalThresholds)
{
    public const string ThresholdCsvHeader = "sparsity,pruned,count,threshold,below,equal";

    public IEnumerable<string> ThresholdCsvRows() => GlobalThresholds.Select(t => string.Join(",",
        Csv.Num(t.Sparsity), Csv.Int(t.Pruned), Csv.Int(t.Count), Csv.Num(t.Threshold), Csv.Int(t.Below), Csv.Int(t.EqualCount)));
}

/// <summary>
/// Sparsity of the prunable set as the paper measures it: exact zeros, counts under absolute and
/// std-relative magnitude thresholds per matrix, per layer and in total, |w| histograms per matrix
/// and the global magnitude thresholds of the sweep.
/// </summary>
public static unsafe class SparsityStatistics
{
    private const int Chunk = 1 << 16;

    public static SparsityReport Compute(PrunableSet set, SparsityStatisticsOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(set);
        options ??= new SparsityStatisticsOptions();
        if (!(options.HistogramMin > 0 && options.HistogramMax > options.HistogramMin && options.BinsPerDecade > 0))
            throw new ArgumentException(
                $"histogram needs 0 < HistogramMin < HistogramMax and BinsPerDecade > 0, got {options.HistogramMin}, {options.HistogramMax}, {options.BinsPerDecade}");
        float[] abs = options.AbsoluteThresholds.Select(t => (float)t).ToArray();
        float[] edges = Edges(options);
        var moments = new List<MatrixMoments>();
        var counts = new List<SparsityCountRow>();
        var histograms = new List<MagnitudeHistogram>();
        foreach (var m in set.Matrices)
        {
            float* w = set.Pointer + m.Offset;
            var pass = MatrixPass(w, m.Count, abs, edges);
            double mean = pass.Sum / m.Count;
            double std = Math.Sqrt(Math.Max(0, pass.SumSquares / m.Count - mean * mean));
            moments.Add(new MatrixMoments(m.Name, m.Layer, m.Count, mean, std, pass.MaxAbs, pass.NonFinite));
            counts.Add(new SparsityCountRow("matrix", m.Name, m.Layer, "exact_zero", 0, 0, pass.Zeros, m.Count));
            for (int t = 0; t < abs.Length; t++)
                counts.Add(new SparsityCountRow("matrix", m.Name, m.Layer, "abs_below", 0, abs[t], pass.BelowAbs[t], m.Count));
            foreach (double factor in options.RelativeToStd)
            {
                float threshold = (float)(factor * std);
                counts.Add(new SparsityCountRow("matrix", m.Name, m.Layer, "rel_std_below", factor, threshold,
                    CountBelow(w, m.Count, threshold), m.Count));
            }
            histograms.Add(new MagnitudeHistogram(m.Name, m.Layer, edges.Select(e => (double)e).ToArray(),
                pass.Bins, pass.Zeros, pass.Underflow, pass.Overflow));
        }
        counts.AddRange(Aggregate(counts, set));
        var thresholds = options.SweepSparsities == null
            ? Array.Empty<MagnitudeThreshold>()
            : GlobalMagnitudeThreshold.Sweep(set, options.SweepSparsities);
        return new SparsityReport(moments, counts, histograms, thresholds);
    }

    /// <summary>Per-layer and total rows: sums of the matrix rows with the same criterion.</summary>
    private static IEnumerable<SparsityCountRow> Aggregate(List<SparsityCountRow> matrixRows, PrunableSet set)
    {
        var keyed = matrixRows.GroupBy(r => (r.Criterion, r.Factor, Threshold: r.Criterion == "rel_std_below" ? double.NaN : r.Threshold));
        var layers = set.Matrices.Select(m => m.Layer).Distinct().OrderBy(l => l).ToArray();
        var result = new List<SparsityCountRow>();
        foreach (int layer in layers)
            foreach (var g in keyed)
            {
                var rows = g.Where(r => r.Layer == layer).ToArray();
                result.Add(new SparsityCountRow("layer", layer >= 0 ? $"layer.{layer}" : "other", layer, g.Key.Criterion,
                    g.Key.Factor, g.Key.Threshold, rows.Sum(r => r.Count), rows.Sum(r => r.Total)));
            }
        foreach (var g in keyed)
            result.Add(new SparsityCountRow("total", "all", -1, g.Key.Criterion, g.Key.Factor, g.Key.Threshold,
                g.Sum(r => r.Count), g.Sum(r => r.Total)));
        return result;
    }

    private static float[] Edges(SparsityStatisticsOptions o)
    {
        int bins = (int)Math.Ceiling(Math.Log10(o.HistogramMax / o.HistogramMin) * o.BinsPerDecade - 1e-9);
        var edges = new float[bins + 1];
        for (int b = 0; b <= bins; b++) edges[b] = (float)(o.HistogramMin * Math.Pow(10, (double)b / o.BinsPerDecade));
        return edges;
    }

    private sealed class PassResult
    {
        public long Zeros, NonFinite, Underflow, Overflow;
        public double Sum, SumSquares, MaxAbs;
        public long[] BelowAbs = Array.Empty<long>();
        public long[] Bins = Array.Empty<long>();
    }

    /// <summary>One pass over a matrix: moments, zeros, absolute counts and the histogram, per chunk then combined in chunk order.</summary>
    private static PassResult MatrixPass(float* w, long n, float[] abs, float[] edges)
    {
        int chunks = (int)((n + Chunk - 1) / Chunk);
        var parts = new PassResult[chunks];
        int bins = edges.Length - 1;
        float log2Min = MathF.Log2(edges[0]);
        // Bins per unit of log2: the first guess of a bin, corrected against the exact edges.
        float binsPerLog2 = (float)(bins / (Math.Log2(edges[^1]) - Math.Log2(edges[0])));
        CpuParallel.For(chunks, c =>
        {
            long start = (long)c * Chunk, end = Math.Min(n, start + Chunk);
            var r = new PassResult { BelowAbs = new long[abs.Length], Bins = new long[bins] };
            double sum = 0, sumSq = 0;
            float maxAbs = 0;
            for (long i = start; i < end; i++)
            {
                float x = w[i], a = MathF.Abs(x);
                if (!float.IsFinite(x)) { r.NonFinite++; continue; }
                sum += x; sumSq += (double)x * x;
                if (a > maxAbs) maxAbs = a;
                for (int t = 0; t < abs.Length; t++) if (a < abs[t]) r.BelowAbs[t]++;
                if (a == 0) { r.Zeros++; continue; }
                if (a < edges[0]) { r.Underflow++; continue; }
                if (a >= edges[^1]) { r.Overflow++; continue; }
                int b = Math.Clamp((int)((MathF.Log2(a) - log2Min) * binsPerLog2), 0, bins - 1);
                while (b > 0 && a < edges[b]) b--;
                while (b < bins - 1 && a >= edges[b + 1]) b++;
                r.Bins[b]++;
            }
            r.Sum = sum; r.SumSquares = sumSq; r.MaxAbs = maxAbs;
            parts[c] = r;
        }, Chunk);
        var total = new PassResult { BelowAbs = new long[abs.Length], Bins = new long[bins] };
        foreach (var p in parts)
        {
            total.Zeros += p.Zeros; total.NonFinite += p.NonFinite; total.Underflow += p.Underflow; total.Overflow += p.Overflow;
            total.Sum += p.Sum; total.SumSquares += p.SumSquares; total.MaxAbs = Math.Max(total.MaxAbs, p.MaxAbs);
            for (int t = 0; t < abs.Length; t++) total.BelowAbs[t] += p.BelowAbs[t];
            for (int b = 0; b < bins; b++) total.Bins[b] += p.Bins[b];
        }
        return total;
    }

    /// <summary>Number of |w| strictly below <paramref name="threshold"/> (vectorised).</summary>
    internal static long CountBelow(float* w, long n, float threshold)
    {
        int chunks = (int)((n + Chunk - 1) / Chunk);
        var parts = new long[chunks];
        CpuParallel.For(chunks, c =>
        {
            long start = (long)c * Chunk, end = Math.Min(n, start + Chunk), count = 0, i = start;
            if (Vector256.IsHardwareAccelerated)
            {
                var t = Vector256.Create(threshold);
                for (; i + 8 <= end; i += 8)
                    count += System.Numerics.BitOperations.PopCount(
                        Vector256.LessThan(Vector256.Abs(Vector256.Load(w + i)), t).ExtractMostSignificantBits());
            }
            for (; i < end; i++) if (MathF.Abs(w[i]) < threshold) count++;
            parts[c] = count;
        }, Chunk);
        return parts.Sum();
    }
}

/// <summary>Invariant-culture CSV field formatting.</summary>
internal static class Csv
{
    public static string Num(double x) => double.IsNaN(x) ? "" : x.ToString("R", CultureInfo.InvariantCulture);
    public static string Int(long x) => x.ToString(CultureInfo.InvariantCulture);

    public static string Quote(string s) =>
        s.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? s : "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
