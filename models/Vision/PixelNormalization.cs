namespace NativeSparsity.Models.Vision;

/// <summary>
/// Pixel scaling: a byte v becomes (v / 255 - Mean) / Std. Mean and Std are over all pixels (and
/// channels) of the training split, computed in double, and stored so that validation, test and
/// every later run use the same numbers.
/// </summary>
public readonly record struct PixelNormalization(float Mean, float Std)
{
    /// <summary>Plain [0, 1] scaling with no centring.</summary>
    public static PixelNormalization UnitScale => new(0f, 1f);

    /// <summary>Mean and standard deviation of v / 255 over every pixel of <paramref name="images"/>.</summary>
    public static PixelNormalization FromImages(LabeledImages images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Pixels.Length == 0) throw new ArgumentException("cannot compute pixel statistics of an empty image set", nameof(images));
        var histogram = new long[256];
        foreach (byte v in images.Pixels) histogram[v]++;
        double n = images.Pixels.LongLength, sum = 0, sumSquares = 0;
        for (int v = 0; v < 256; v++) sum += histogram[v] * (v / 255.0);
        double mean = sum / n;
        for (int v = 0; v < 256; v++) sumSquares += histogram[v] * (v / 255.0 - mean) * (v / 255.0 - mean);
        double std = Math.Sqrt(sumSquares / n);
        if (std == 0) throw new ArgumentException("every pixel has the same value; the standard deviation is zero", nameof(images));
        return new PixelNormalization((float)mean, (float)std);
    }

    /// <summary>The normalised value of pixel byte <paramref name="v"/>.</summary>
    public float Apply(byte v) => (float)((v / 255.0 - Mean) / Std);

    /// <summary>The normalised value of every byte 0..255 (what the batchers index into).</summary>
    public float[] Table()
    {
        if (!(Std > 0) || !float.IsFinite(Mean)) throw new InvalidOperationException($"invalid normalisation: mean {Mean}, std {Std}");
        var table = new float[256];
        for (int v = 0; v < 256; v++) table[v] = Apply((byte)v);
        return table;
    }

    /// <summary>All images, normalised, flat [Count, Height * Width * Channels] (no augmentation, no patching).</summary>
    public float[] Normalize(LabeledImages images)
    {
        var table = Table();
        var result = new float[images.Pixels.LongLength];
        var pixels = images.Pixels;
        for (long i = 0; i < pixels.LongLength; i++) result[i] = table[pixels[i]];
        return result;
    }
}
