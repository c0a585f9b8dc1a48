namespace NativeSparsity.Models.Data.Corpus;

/// <summary>A stream of documents (plain text) for tokenizing into shards or counting a vocabulary.</summary>
public interface IDocumentSource
{
    /// <summary>What the documents are, for manifests and messages.</summary>
    string Description { get; }

    /// <summary>The documents in a fixed order; each call starts from the beginning.</summary>
    IEnumerable<string> Documents();

    /// <summary>How far the current enumeration has come, in [0, 1], or null when unknown.</summary>
    double? Progress { get; }
}

/// <summary>Keeps a deterministic fraction of documents for the data-volume study.</summary>
public static class DataFraction
{
    /// <summary>
    /// True when document <paramref name="index"/> is kept: a SplitMix64 hash of (seed, index)
    /// mapped to [0, 1) falls below <paramref name="fraction"/>. Independent per document, the same
    /// on every run and machine, and nested: with one seed, the documents kept at f are a subset of
    /// those kept at any larger f. The kept count is binomial around f * n.
    /// </summary>
    public static bool Keep(long index, double fraction, ulong seed)
    {
        if (fraction >= 1) return true;
        if (fraction <= 0) return false;
        double u = (Mix(seed ^ Mix((ulong)index + 0x9E3779B97F4A7C15UL)) >> 11) * (1.0 / (1UL << 53));
        return u < fraction;
    }

    public static void Check(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "data fraction must be in (0, 1]");
    }

    /// <summary>The documents of <paramref name="documents"/> that <see cref="Keep"/> keeps, by position.</summary>
    public static IEnumerable<T> Apply<T>(IEnumerable<T> documents, double fraction, ulong seed)
    {
        Check(fraction);
        long index = 0;
        foreach (var d in documents)
        {
            if (Keep(index++, fraction, seed)) yield return d;
        }
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
