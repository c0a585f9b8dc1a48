using NativeSparsity.Engine.Random;

namespace NativeSparsity.Models.Vision;

/// <summary>
/// Deterministic index selection over a labelled set: Philox permutations, a class-stratified
/// train/validation split, and per-class subsampling. Every result is a pure function of its
/// arguments (the seed included), sorted ascending so it does not depend on how it was drawn.
/// </summary>
public static class DatasetSplit
{
    private const ulong SplitStreamBase = 0x5653_0001UL << 32;     // + class
    private const ulong SubsampleStreamBase = 0x5653_0002UL << 32; // + class

    /// <summary>
    /// A uniformly random permutation of [0, <paramref name="n"/>): Fisher-Yates where step i draws
    /// Philox word (seed, stream, i) and maps it to [0, i] by multiply-shift (bias below 2^-32 * n).
    /// </summary>
    public static int[] Permutation(int n, ulong seed, ulong stream)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "expected a non-negative length");
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(((ulong)Philox.Bits(seed, stream, (ulong)i) * (ulong)(i + 1)) >> 32);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <summary>
    /// Splits indices [0, labels.Length) into train and validation, stratified by class: class c
    /// gives floor(n_c * V / N) validation images plus one more for the classes with the largest
    /// remainders (ties to the lower class) so the total is exactly <paramref name="validationSize"/>.
    /// Which images of a class go to validation is a Philox permutation of that class keyed by
    /// (seed, class). Both lists are sorted ascending, disjoint, and together cover every index.
    /// </summary>
    public static (int[] Train, int[] Validation) Stratified(ReadOnlySpan<int> labels, int classCount, int validationSize, ulong seed)
    {
        int n = labels.Length;
        if (validationSize < 0 || validationSize > n)
            throw new ArgumentOutOfRangeException(nameof(validationSize), validationSize, $"expected a validation size in [0, {n}]");
        var byClass = IndicesByClass(labels, classCount);

        var quota = new int[classCount];
        var remainder = new long[classCount];
        int assigned = 0;
        for (int c = 0; c < classCount; c++)
        {
            long scaled = (long)byClass[c].Count * validationSize;
            quota[c] = n == 0 ? 0 : (int)(scaled / n);
            remainder[c] = n == 0 ? 0 : scaled % n;
            assigned += quota[c];
        }
        var order = Enumerable.Range(0, classCount).OrderByDescending(c => remainder[c]).ThenBy(c => c).ToArray();
        for (int k = 0; assigned < validationSize; k++, assigned++) quota[order[k % classCount]]++;

        var train = new List<int>(n - validationSize);
        var validation = new List<int>(validationSize);
        for (int c = 0; c < classCount; c++)
        {
            var members = byClass[c];
            var perm = Permutation(members.Count, seed, SplitStreamBase + (ulong)c);
            for (int k = 0; k < perm.Length; k++)
                (k < quota[c] ? validation : train).Add(members[perm[k]]);
        }
        train.Sort();
        validation.Sort();
        return (train.ToArray(), validation.ToArray());
    }

    /// <summary>
    /// Exactly <paramref name="perClass"/> of the given <paramref name="indices"/> from each class
    /// (chosen by a Philox permutation keyed by (seed, class)), sorted ascending. Throws when a
    /// class has fewer than <paramref name="perClass"/> images among <paramref name="indices"/>.
    /// </summary>
    public static int[] SubsamplePerClass(ReadOnlySpan<int> indices, ReadOnlySpan<int> labels, int classCount, int perClass, ulong seed)
    {
        if (perClass < 0) throw new ArgumentOutOfRangeException(nameof(perClass), perClass, "expected a non-negative count per class");
        var byClass = new List<int>[classCount];
        for (int c = 0; c < classCount; c++) byClass[c] = new List<int>();
        foreach (int i in indices)
        {
            if ((uint)i >= (uint)labels.Length) throw new ArgumentOutOfRangeException(nameof(indices), i, $"expected indices in [0, {labels.Length})");
            int label = labels[i];
            if ((uint)label >= (uint)classCount) throw new ArgumentException($"labels[{i}] = {label} is outside [0, {classCount})", nameof(labels));
            byClass[label].Add(i);
        }
        var result = new List<int>(perClass * classCount);
        for (int c = 0; c < classCount; c++)
        {
            var members = byClass[c];
            if (members.Count < perClass)
                throw new ArgumentException($"class {c} has {members.Count} images among the {indices.Length} given, fewer than the {perClass} per class asked for");
            members.Sort();
            var perm = Permutation(members.Count, seed, SubsampleStreamBase + (ulong)c);
            for (int k = 0; k < perClass; k++) result.Add(members[perm[k]]);
        }
        result.Sort();
        return result.ToArray();
    }

    private static List<int>[] IndicesByClass(ReadOnlySpan<int> labels, int classCount)
    {
        if (classCount <= 0) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "expected at least one class");
        var byClass = new List<int>[classCount];
        for (int c = 0; c < classCount; c++) byClass[c] = new List<int>();
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount) throw new ArgumentException($"labels[{i}] = {labels[i]} is outside [0, {classCount})", nameof(labels));
            byClass[labels[i]].Add(i);
        }
        return byClass;
    }
}
